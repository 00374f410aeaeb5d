import CKernels
import MegaFSGraph
#if canImport(Glibc)
import Glibc
#endif

/// StyleGAN2's last block as one step in bands of output rows: the upsampling conv (modulated
/// transposed conv on the direct kernel, blur, noise, bias, leaky ReLU), the 3x3 conv after it
/// (Winograd) and the ToRGB (1x1, few rows, bias, the upsampled skip added). One node after the
/// other, the 1024 generator holds the upsampling conv's 67 MB input and its 134 MB output at
/// once (the peak of its arena), then the 134 MB conv output; here the transposed conv's blurred
/// rows go to a window of a few tens of rows, each band of the 3x3 conv reads them from there
/// into a band buffer, and the ToRGB writes the band's rows of the image. The same kernels run
/// on the same rows in the same order, so the same bits as the three steps.
///
/// The planner builds it (`Planner.plan`, `SessionOptions.bandsUpsamplingTail`) where the
/// transposed conv's output is read by the 3x3 conv alone and that conv's by the ToRGB alone.
final class UpsamplingTailKernel: RuntimeKernel {
    let up: ConvTransposeKernel
    let upPlan: DirectConvTransposePlan
    let blur: (geometry: UpFirDnGeometry, kernel: [Float])
    let conv: ConvKernel
    let winograd: WinogradConvPlan
    let toRGB: ConvKernel
    /// Output rows per band (the Winograd plan's band).
    let bandRows: Int
    /// Rows per channel of the window that holds the upsampling conv's finished rows.
    let windowRows: Int

    /// One band: first, when `slide` is set, the window moves up so that its row 0 becomes image
    /// row `slide.to` (it was `slide.from`), keeping the rows made so far (up to `slide.filled`);
    /// then the input bands `steps` add their blurred rows (window row 0 is image row `base`),
    /// and the 3x3 conv and the ToRGB make output rows `rows`.
    struct Band {
        let rows: Range<Int>
        let slide: (from: Int, to: Int, filled: Int)?
        let base: Int
        let steps: [(inputRows: Range<Int>, step: BlurWindow.Step)]
    }
    let bands: [Band]

    let upDemodOffset: Int, convScratchOffset: Int, convDemodOffset: Int, rgbWeightOffset: Int, rgbDemodOffset: Int
    let windowOffset: Int, bandOffset: Int
    let scratchBytes: Int

    /// Rows per band at least (whole Winograd bands). At 1024 px, 12 (one Winograd band) and the
    /// three separate steps came out even (generate stage of `megafs swap --pairs`, medians
    /// 528-704 against 526-716 ms, five alternations on a busy host); 48 was slower (563-626
    /// against 512-546 ms): its 6 MB band buffer no longer stays in cache for the ToRGB.
    static let minBandRows = 12
    /// Rows the window holds beyond one band's needs: it moves up about once per this many rows.
    static let windowSlack = 32
    /// Whether the planner builds it (`MEGAFS_BANDED_TAIL=off`: the three nodes stay separate steps).
    static let enabled: Bool = getenv("MEGAFS_BANDED_TAIL").map { let v = String(cString: $0); return v != "off" && v != "0" } ?? true

    var kernelName: String { "upsampling-tail(\(up.kernelName) > \(conv.kernelName) > \(toRGB.kernelName))" }
    var flops: Double { up.flops + conv.flops + toRGB.flops }

    /// The three kernels if they make such a tail (shapes, kernels and slots; not who else
    /// reads the intermediate values: the planner checks that).
    init?(up upKernel: RuntimeKernel, conv convKernel: RuntimeKernel, toRGB rgbKernel: RuntimeKernel) {
        guard let up = upKernel as? ConvTransposeKernel, let upPlan = up.direct, let blur = up.blur, up.g.groups == 1,
              blur.geometry.up == 1,
              let conv = convKernel as? ConvKernel, let winograd = conv.winograd, !conv.mergesBatch, conv.int8Weights == nil,
              conv.g.groups == 1, conv.x == up.y, conv.g.n == up.g.n, conv.g.cin == up.g.cout,
              conv.g.h == blur.geometry.oh, conv.g.w == blur.geometry.ow, conv.g.oh == conv.g.h, conv.g.ow == conv.g.w,
              let toRGB = rgbKernel as? ConvKernel, toRGB.pointwiseRows, toRGB.g.groups == 1, toRGB.x == conv.y,
              toRGB.g.n == conv.g.n, toRGB.g.cin == conv.g.cout, toRGB.g.oh == conv.g.oh, toRGB.g.ow == conv.g.ow,
              conv.epilogue.addend.map({ $0.slot != up.y }) ?? true,
              toRGB.epilogue.addend.map({ $0.slot != up.y && $0.slot != conv.y }) ?? true
        else { return nil }
        self.up = up; self.upPlan = upPlan; self.blur = blur; self.conv = conv; self.winograd = winograd; self.toRGB = toRGB
        let height = conv.g.oh, width = conv.g.ow
        // Bands of whole Winograd bands (so that its tiles fall where the separate conv's do),
        // at least `minBandRows` rows.
        bandRows = winograd.rows * max(1, (Self.minBandRows + winograd.rows - 1) / winograd.rows)

        // The schedule, fixed by the shapes: how far the transposed conv must get for each band
        // (the rows the 3x3 conv reads, one below it), and when the window must move up.
        // (Room for 32 rows beyond one band's needs: the window moves up about once in 32 rows.)
        let capacity = min(height, bandRows + 2 * upPlan.bandRows + 2 + Self.windowSlack)
        var slideState = BlurWindow(conv: up.g, blur: blur.geometry)
        var inputRow = 0, filled = 0, base = 0
        var bands: [Band] = []
        var r0 = 0
        while r0 < height {
            let rows = r0..<min(height, r0 + bandRows)
            let need = min(height, rows.upperBound + 1)
            var steps: [(inputRows: Range<Int>, step: BlurWindow.Step)] = []
            var reach = filled
            var probe = slideState
            var probeRow = inputRow
            while reach < need && probeRow < up.g.h {
                let r1 = min(up.g.h, probeRow + upPlan.bandRows)
                let step = probe.advance(afterInputRows: r1)
                steps.append((probeRow..<r1, step))
                reach = max(reach, step.produce.upperBound)
                probeRow = r1
            }
            guard reach >= need else { return nil }
            var slide: (from: Int, to: Int, filled: Int)? = nil
            if reach - base > capacity {
                let to = max(0, rows.lowerBound - 1)
                guard reach - to <= capacity else { return nil }
                slide = (base, to, filled)
                base = to
            }
            bands.append(Band(rows: rows, slide: slide, base: base, steps: steps))
            slideState = probe; inputRow = probeRow; filled = reach
            r0 = rows.upperBound
        }
        self.bands = bands
        windowRows = capacity

        var offset = Planner.align(upPlan.scratchBytes)
        upDemodOffset = offset; offset += Planner.align(up.g.cout * 4)
        convScratchOffset = offset; offset += Planner.align(winograd.scratchBytes)
        convDemodOffset = offset; offset += Planner.align(conv.g.cout * 4)
        rgbWeightOffset = offset; offset += Planner.align(toRGB.g.cout * toRGB.g.cin * 4)
        rgbDemodOffset = offset; offset += Planner.align(toRGB.g.cout * 4)
        windowOffset = offset; offset += Planner.align(conv.g.cin * capacity * width * 4)
        bandOffset = offset; offset += Planner.align(conv.g.cout * bandRows * width * 4)
        scratchBytes = offset
    }

    func run(_ ctx: KernelContext) throws {
        let threads = ctx.threads
        let ug = up.g, cg = conv.g, rg = toRGB.g
        let width = cg.ow, plane = cg.oh * cg.ow
        let scratch = ctx.scratchF32()
        let upDemod = ctx.scratchF32(offset: upDemodOffset), convDemod = ctx.scratchF32(offset: convDemodOffset)
        let convScratch = ctx.scratchF32(offset: convScratchOffset)
        let rgbWeight = ctx.scratchF32(offset: rgbWeightOffset), rgbDemod = ctx.scratchF32(offset: rgbDemodOffset)
        let window = ctx.scratchF32(offset: windowOffset), band = ctx.scratchF32(offset: bandOffset)
        let windowStride = windowRows * width, bandStride = bandRows * width
        let upEp = up.epilogue.bind(ctx, channels: ug.cout, spatial: plane)
        let convEp = conv.epilogue.bind(ctx, channels: cg.cout, spatial: plane)
        let rgbEp = toRGB.epilogue.bind(ctx, channels: rg.cout, spatial: plane)
        let upWeight = UnsafePointer(ctx.f32(up.w)), rgbSource = UnsafePointer(ctx.f32(toRGB.w))
        if conv.winogradWeights == nil { winograd.transformWeights(UnsafePointer(ctx.f32(conv.w)), scratch: convScratch, threads: threads) }
        let u = conv.winogradWeights.map { UnsafePointer($0.pointer.assumingMemoryBound(to: Float.self)) }

        for n in 0..<cg.n {
            let (upStyle, upDemodulates) = Modulation.sample(up.modulation, ctx, n: n, cin: ug.cin, cout: ug.cout, demod: upDemod)
            let (convStyle, convDemodulates) = Modulation.sample(conv.modulation, ctx, n: n, cin: cg.cin, cout: cg.cout,
                                                                 demod: convDemod)
            let (rgbStyle, rgbDemodulates) = Modulation.sample(toRGB.modulation, ctx, n: n, cin: rg.cin, cout: rg.cout,
                                                               demod: rgbDemod)
            let xn = UnsafePointer(ctx.f32(up.x)) + n * ug.cin * ug.h * ug.w
            let yn = ctx.f32(toRGB.y) + n * rg.cout * plane
            let rgbA = rgbStyle.map { toRGB.scaledPointwiseWeight(rgbSource, style: $0, into: rgbWeight) } ?? rgbSource
            let upFinishes = !up.epilogue.isIdentity || upDemodulates
            threads.forRanges(ug.cout) { channels in
                upPlan.pack(g: ug, weight: upWeight, weightOutIn: up.weightOutIn, scale: upStyle, scratch: scratch, channels: channels)
                upPlan.clearWindow(g: ug, scratch: scratch, channels: channels)
            }
            blur.kernel.withUnsafeBufferPointer { kb in
                let blurArgs = (geometry: blur.geometry, kernel: kb.baseAddress!, separable: up.blurSeparable)
                for b in bands {
                    if let s = b.slide {
                        let shift = (s.to - s.from) * width, keep = (s.filled - s.to) * width
                        threads.forEach(ug.cout) { c in
                            let wp = window + c * windowStride
                            if keep > 0 { memmove(wp, wp + shift, keep * 4) }
                        }
                    }
                    // The upsampling conv's rows, its epilogue on each finished row.
                    let out = window - b.base * width
                    if !b.steps.isEmpty {
                        threads.forRanges(ug.cout) { channels in
                            for (inputRows, step) in b.steps {
                                upPlan.blurredRows(g: ug, x: xn, inputRows: inputRows, step: step, blur: blurArgs, out: out,
                                                   outChannelStride: windowStride, scratch: scratch, channels: channels) { c, rows in
                                    guard upFinishes else { return }
                                    let p0 = rows.lowerBound * width
                                    upEp.apply(out + c * windowStride + p0, count: rows.count * width, n: n, c: c, p0: p0,
                                               scale: upDemodulates ? upDemod[c] : 1)
                                }
                            }
                        }
                    }
                    // The 3x3 conv's band, from the window.
                    let r0 = b.rows.lowerBound, cols = b.rows.count * width, p0 = r0 * width
                    var w0 = r0
                    while w0 < b.rows.upperBound {
                        let rows = min(winograd.rows, b.rows.upperBound - w0)
                        winograd.run(g: cg, x: UnsafePointer(window), scale: convStyle, y: band, r0: w0, rows: rows,
                                     scratch: convScratch, weights: u, overInput: false,
                                     source: BandSource(channelStride: windowStride, firstRow: b.base),
                                     band: (band + (w0 - r0) * width, bandStride), threads: threads)
                        w0 += rows
                    }
                    if !conv.epilogue.isIdentity || convDemodulates {
                        convEp.applyPlanes(band, stride: bandStride, channels: 0..<cg.cout, count: cols, n: n, p0: p0,
                                           demod: convDemodulates ? UnsafePointer(convDemod) : nil, threads: threads)
                    }
                    // The ToRGB's rows of the image.
                    toRGB.rowsProduct(a: rgbA, b: UnsafePointer(band), ldb: bandStride, cols: cols, c: yn + p0, ldc: plane,
                                      threads: threads)
                    if !toRGB.epilogue.isIdentity || rgbDemodulates {
                        rgbEp.applyPlanes(yn + p0, stride: plane, channels: 0..<rg.cout, count: cols, n: n, p0: p0,
                                          demod: rgbDemodulates ? UnsafePointer(rgbDemod) : nil, threads: threads)
                    }
                }
            }
        }
    }
}
