import CKernels
import MegaFSGraph
#if canImport(Glibc)
import Glibc
#endif

/// Style modulation of a convolution (StyleGAN2): input channel i of sample n is scaled by
/// s[n][i]; with demodulation, output channel o by d[n][o] = 1/sqrt(sum_i s[n][i]^2 Wsq[o][i] + eps),
/// Wsq[o][i] the sum of the squared constant weight over the kernel window.
struct Modulation {
    let style: Int              // slot of S [1 or N, Cin]
    let styleRows: Int
    let demodulate: Bool
    let eps: Float
    let weightSquares: [Float]  // [Cout][Cin], empty without demodulation

    /// Sample n's style row (nil without modulation) and whether its demodulation d was written
    /// to `demod` (cout values).
    static func sample(_ m: Modulation?, _ ctx: KernelContext, n: Int, cin: Int, cout: Int,
                       demod: UnsafeMutablePointer<Float>) -> (style: UnsafePointer<Float>?, demodulated: Bool) {
        guard let m else { return (nil, false) }
        let s = UnsafePointer(ctx.f32(m.style)) + (m.styleRows == 1 ? 0 : n) * cin
        if m.demodulate { m.demodulation(s, cin: cin, cout: cout, into: demod) }
        return (s, m.demodulate)
    }

    /// d[o] for one style row, into `d` (Cout values).
    func demodulation(_ s: UnsafePointer<Float>, cin: Int, cout: Int, into d: UnsafeMutablePointer<Float>) {
        weightSquares.withUnsafeBufferPointer { wsq in
            let base = wsq.baseAddress!
            var s2 = [Float](repeating: 0, count: cin)
            for i in 0..<cin { s2[i] = s[i] * s[i] }
            for o in 0..<cout {
                var acc: Float = 0
                let row = base + o * cin
                for i in 0..<cin { acc += row[i] * s2[i] }
                d[o] = 1 / (acc + eps).squareRoot()
            }
        }
    }

    /// Wsq from a constant weight laid out [Cout, Cin, KH, KW] (transposed: [Cin, Cout, KH, KW]).
    static func weightSquares(_ w: Tensor, transposed: Bool) -> [Float] {
        let v = w.floats
        let a = w.shape[0], b = w.shape[1], kk = w.shape[2] * w.shape[3]
        let cout = transposed ? b : a, cin = transposed ? a : b
        var out = [Float](repeating: 0, count: cout * cin)
        for i in 0..<a {
            for j in 0..<b {
                var acc: Float = 0
                for k in 0..<kk { let x = v[(i * b + j) * kk + k]; acc += x * x }
                if transposed { out[j * cin + i] = acc } else { out[i * cin + j] = acc }
            }
        }
        return out
    }
}

/// Bytes of im2col buffer a band may use: bands are sized so that no convolution ever
/// builds its full im2col matrix (a 3x3 conv at 1024x1024x32 would need 1.2 GB).
let im2colBudgetBytes = 4 << 20

/// Rows per band for `rows` rows of `rowBytes` each within `budget`, the bands made equal so
/// that no GEMM gets a sliver of columns (16 rows at 13 per band would leave a 3-row GEMM).
func balancedBandRows(rows: Int, rowBytes: Int, budget: Int = im2colBudgetBytes) -> Int {
    let most = max(1, min(rows, budget / max(1, rowBytes)))
    let bands = (rows + most - 1) / most
    return (rows + bands - 1) / bands
}

/// 2-D convolution as GEMM over bands of output rows (im2col per band; none for 1x1 stride-1),
/// with optional style modulation and a fused epilogue.
final class ConvKernel: RuntimeKernel {
    let g: ConvGeometry
    let x: Int, w: Int, y: Int
    let modulation: Modulation?
    let epilogue: ConvEpilogue
    /// Output rows per im2col band (OH when pointwise).
    let bandRows: Int
    let colBytes: Int
    let weightScratchBytes: Int
    let demodBytes: Int
    let name: String
    /// Small outputs of several samples: one GEMM over all samples' columns, so the weights
    /// (the bandwidth-bound part of the encoder's 512->512 convs at 8x8 and below) are read once.
    let mergesBatch: Bool
    let mergedOutBytes: Int
    /// A merged-batch conv with at most `streamedMaxColumns` columns multiplies with
    /// `mfs_sgemm_nt` (each weight row streamed once per pair of columns, no packing; the
    /// columns transposed into scratch) instead of sgemm, which spends most of such a product
    /// packing the weight: the encoder's 512->512 mapping convs at 8x8 output and below.
    let streamsWeights: Bool
    let transposedBytes: Int
    static let streamedMaxColumns = 32
    /// A float streamed conv with at least this many columns multiplies with `mfs_sgemm_rows`
    /// instead (the columns read in place, each weight row once). AVX-512 (8 weight rows x 32
    /// columns per tile, all of K per tile): the encoder's 32-column mapping convs took
    /// 1.06-1.23 ms against 1.64-1.71, its 8-column ones 0.65-0.74 against 0.75-0.91. AVX2 (6 x
    /// 16 tiles, K in blocks of 512): see the measurements beside `mfs_sgemm_rows`. At 2
    /// columns the NT product's dot products stay ahead (the tile would be 2 of 16 lanes).
    static let streamedRowsMinColumns = 8
    let streamsRows: Bool
    /// Weight-only int8: a streamed conv reads its int8 weight rows (scaled per row) directly,
    /// so its DequantizeLinear does not run.
    let streamedInt8: QuantizedConstant?
    /// Columns per GEMM past which repacking a 512x4608 weight costs sgemm little (141 GFLOP/s
    /// at 512 columns against 116 at 128, 2 threads on the Zen 3 VM).
    static let heavyWeightColumns = 512
    /// Set when the conv runs the direct 3x3 kernel (bands of padded input instead of im2col).
    let direct: DirectConvPlan?
    /// Set when the conv runs Winograd (bands of padded input, 16 or 36 GEMMs).
    let winograd: WinogradConvPlan?
    /// Winograd's transformed weight U, computed at build time when the weight is a float
    /// constant (the transform took about 2 % of the 1024 generator when run every call).
    private(set) var winogradWeights: TensorStorage? = nil
    /// The U this conv runs on in place of its float weight, which it then never reads: what
    /// the session may hold while giving the weight back (with the weight squares a modulated
    /// conv's demodulation was planned with).
    var heldTransform: HeldWeights.Winograd? {
        guard let u = winogradWeights, let plan = winograd else { return nil }
        return HeldWeights.Winograd(tile: plan.tile, u: u, weightSquares: modulation?.weightSquares ?? [])
    }
    /// The direct and Winograd kernels read a padded copy of their band, not x.
    var readsPaddedBand: Bool { direct != nil || winograd != nil }
    /// An im2col conv whose output has its input's shape may write over its input (the
    /// planner decides): each band's product goes to `bandOutBytes` of scratch and is stored
    /// only after the next band's im2col has read the rows above it. At 1024 px this saves
    /// the generator a 134 MB plane.
    let writesOverInput: Bool
    let bandOutBytes: Int
    var aliasing: Aliasing { writesOverInput ? .inPlace(input: 0) : .none }

    /// Dynamic int8 mode: the weight as packed int8 (its float slot is not read).
    let int8Weights: PackedInt8Weights?
    var int8ScratchBytes: Int {
        guard int8Weights != nil else { return 0 }
        let cols = mergesBatch ? g.n * g.oh * g.ow : g.isPointwise ? pointwiseBlock : bandRows * g.ow
        return Planner.align(Int8Gemm.packedActivationBytes(k: g.cinG * g.kh * g.kw, n: cols))
    }
    var skipsFloatWeight: Int? { int8Weights == nil && streamedInt8 == nil ? nil : w }
    /// A pointwise conv with float weights and at most 4 output channels per group (the
    /// generator's ToRGB, 3) runs our own few-row product (CKernels/sgemm_smallm.c): sgemm took 10-15 ms per 1024-px
    /// ToRGB, 13-16 GFLOP/s, for a product bound by reading its input once.
    static func takesRowProduct(_ g: ConvGeometry, int8Weights: PackedInt8Weights?) -> Bool {
        g.isPointwise && int8Weights == nil && g.coutG <= 4
    }
    var pointwiseRows: Bool { !mergesBatch && Self.takesRowProduct(g, int8Weights: int8Weights) }

    /// Output columns per GEMM of a pointwise conv.
    var pointwiseBlock: Int { min(g.oh * g.ow, max(256, (1 << 20) / max(1, g.coutG * 4))) }

    var kernelName: String { int8Weights == nil && streamedInt8 == nil ? name : name + "+int8" }
    var flops: Double { g.convFlops }
    var bandOutOffset: Int { colBytes + weightScratchBytes + demodBytes + mergedOutBytes + transposedBytes }
    var floatScratchBytes: Int { bandOutOffset + bandOutBytes }
    var int8ScratchOffset: Int { Planner.align(floatScratchBytes) }
    var scratchBytes: Int { int8Weights == nil ? floatScratchBytes : int8ScratchOffset + int8ScratchBytes }

    init(geometry g: ConvGeometry, x: Int, w: Int, y: Int, modulation: Modulation?, epilogue: ConvEpilogue,
         algorithm: ConvAlgorithm = .auto, bandBudgetBytes: Int = im2colBudgetBytes, int8Weights: PackedInt8Weights? = nil,
         quantizedWeight: QuantizedConstant? = nil, constantWeight: Tensor? = nil, heldWinograd: HeldWeights.Winograd? = nil,
         planningThreads: ThreadPartition = ThreadPartition(threads: 1)) {
        self.g = g; self.x = x; self.w = w; self.y = y
        self.modulation = modulation; self.epilogue = epilogue
        // A modulated pointwise conv scales its (float) weight by the style: no int8 there.
        self.int8Weights = g.isPointwise && modulation != nil ? nil : int8Weights
        let k = g.cinG * g.kh * g.kw
        let p = g.oh * g.ow
        // sgemm repacks the weight on every call: a weight bigger than the band budget gets
        // GEMMs of up to `heavyWeightColumns` columns, its col buffer up to the weight's size.
        // (The direct and Winograd kernels, which read no weight panels, stay faster where they
        // apply: 39-44 ms against 43-49 for the encoder's 1024->512 conv at 16x16.)
        let weightBytes = g.coutG * k * 4
        let heavyWeight = modulation == nil && self.int8Weights == nil && weightBytes > bandBudgetBytes
        let gemmBudget = heavyWeight
            ? max(bandBudgetBytes, min(k * Self.heavyWeightColumns * 4, weightBytes, 5 * bandBudgetBytes))
            : bandBudgetBytes
        // A float32 constant weight is transformed once, here; any other, on every call.
        let floatWeight = constantWeight?.dtype == .float32 ? constantWeight : nil
        // A held U (its weight given back by the session) leaves Winograd as the only way.
        let winogradPlan = self.int8Weights == nil
            ? WinogradConvPlan(g, algorithm: heldWinograd == nil ? algorithm : .winograd,
                               bandBudgetBytes: WinogradConvPlan.bandBudget(im2colBudget: bandBudgetBytes),
                               weightsInScratch: floatWeight == nil && heldWinograd == nil, tile: heldWinograd?.tile)
            : nil
        let directPlan = self.int8Weights == nil && winogradPlan == nil
            ? DirectConvPlan(g, algorithm: algorithm, bandBudgetBytes: DirectConvPlan.bandBudget(im2colBudget: bandBudgetBytes))
            : nil
        let ownKernelApplies = winogradPlan != nil || directPlan != nil
        // One GEMM over all samples' columns when they fit one im2col matrix.
        let fitsOneMatrix = g.groups == 1 && modulation == nil && heldWinograd == nil
            && k * p * g.n * 4 <= (ownKernelApplies ? bandBudgetBytes : gemmBudget)
        let streams = fitsOneMatrix && algorithm != .im2col && self.int8Weights == nil && !g.isPointwise
            && p * g.n <= Self.streamedMaxColumns
        if streams || (fitsOneMatrix && g.n > 1 && p * g.n <= 1024) {
            mergesBatch = true
            streamsWeights = streams
            streamedInt8 = streams ? quantizedWeight.flatMap { $0.scalesRows(g.cout, rowLength: k) ? $0 : nil } : nil
            streamsRows = streams && streamedInt8 == nil && Conv3x3Path.best != .reference && p * g.n >= Self.streamedRowsMinColumns
            bandRows = g.oh
            colBytes = ((k * p * g.n * 4 + 63) / 64) * 64
            mergedOutBytes = ((g.cout * p * g.n * 4 + 63) / 64) * 64
            transposedBytes = streams && !streamsRows ? colBytes : 0
            weightScratchBytes = 0
            demodBytes = 0
            direct = nil
            winograd = nil
            writesOverInput = false
            bandOutBytes = 0
            name = streamsRows ? "conv(streamed-rows)" : streams ? "conv(streamed)" : "conv(batched)"
            return
        }
        mergesBatch = false
        streamsWeights = false
        streamsRows = false
        streamedInt8 = nil
        transposedBytes = 0
        mergedOutBytes = 0
        if g.isPointwise {
            // Columns of the output in blocks (the B operand is read in place).
            bandRows = g.oh
            colBytes = 0
            weightScratchBytes = modulation != nil ? g.cout * g.cin * 4 : 0
            direct = nil
            winograd = nil
            let rows = Self.takesRowProduct(g, int8Weights: self.int8Weights)
            name = (modulation != nil ? "modconv" : "conv") + (rows ? "(pointwise-rows)" : "(pointwise)")
        } else if let plan = winogradPlan {
            // Made here, not before the batch is merged: that path never reads it.
            winogradWeights = heldWinograd?.u
                ?? (plan.transformsWeightsEveryCall ? nil : floatWeight.map { plan.transformedWeights($0, threads: planningThreads) })
            bandRows = plan.rows
            colBytes = plan.scratchBytes
            weightScratchBytes = 0
            direct = nil
            winograd = plan
            name = (modulation != nil ? "modconv" : "conv") + "(\(plan.name))"
        } else if let plan = directPlan {
            bandRows = plan.rows
            colBytes = plan.bandBytes + plan.haloBytes
            weightScratchBytes = 0
            direct = plan
            winograd = nil
            name = (modulation != nil ? "modconv" : "conv") + "(direct3x3-\(plan.path))"
        } else {
            let rowBytes = k * g.ow * 4
            bandRows = balancedBandRows(rows: g.oh, rowBytes: rowBytes, budget: gemmBudget)
            colBytes = k * bandRows * g.ow * 4
            weightScratchBytes = 0
            direct = nil
            winograd = nil
            name = modulation != nil ? "modconv(im2col)" : "conv(im2col)"
        }
        demodBytes = modulation?.demodulate == true ? ((g.cout * 4 + 63) / 64) * 64 : 0
        // The direct and Winograd kernels read their band's padded copy, so they store straight
        // over the input (keeping one halo row); but a residual that is the input itself would
        // be read after its rows were replaced.
        let paddedBand = direct != nil || winograd != nil   // readsPaddedBand, before self is whole
        writesOverInput = !g.isPointwise && g.groups == 1 && g.sh == 1 && g.sw == 1
            && g.cin == g.cout && g.oh == g.h && g.ow == g.w && (!paddedBand || epilogue.addend?.slot != x)
        bandOutBytes = writesOverInput && !paddedBand ? ((g.cout * bandRows * g.ow * 4 + 63) / 64) * 64 : 0
    }

    func run(_ ctx: KernelContext) throws {
        let g = self.g
        let px = UnsafePointer(ctx.f32(x)), pw = UnsafePointer(ctx.f32(w)), py = ctx.f32(y)
        let P = g.oh * g.ow, HW = g.h * g.w
        let K = g.cinG * g.kh * g.kw
        let ep = epilogue.bind(ctx, channels: g.cout, spatial: P)
        let epIdentity = epilogue.isIdentity
        let col = ctx.scratchF32()
        let wScaled = ctx.scratchF32(offset: colBytes)
        let dBuf = ctx.scratchF32(offset: colBytes + weightScratchBytes)
        let bandOut = ctx.scratchF32(offset: bandOutOffset)
        let threads = ctx.threads
        // Set by the planner through `aliasing`: the output is the input's memory.
        let overInput = writesOverInput && UnsafeRawPointer(px) == UnsafeRawPointer(py)
        // An im2col band over its input waits in `bandOut` (see below); the padded-band kernels
        // store straight over it.
        let bandWaits = overInput && !readsPaddedBand

        if mergesBatch {
            let cols = g.n * P
            for n in 0..<g.n {
                im2col(px + n * g.cin * HW, col: col + n * P, rows: 0..<g.oh, scale: nil, threads: threads, colStride: cols)
            }
            let out = ctx.scratchF32(offset: colBytes)
            if streamsRows {
                let path = Conv3x3Path.best.rawValue, cout = g.cout, colIn = UnsafePointer(col)
                threads.forRanges((cout + 7) / 8) { range in
                    mfs_sgemm_rows(path, pw, Int32(K), colIn, cols, Int32(cols), Int32(range.lowerBound * 8),
                                   Int32(min(cout, range.upperBound * 8)), out, cols)
                }
            } else if streamsWeights {
                let bt = ctx.scratchF32(offset: colBytes + mergedOutBytes)
                let colIn = UnsafePointer(col)
                threads.forRanges(cols) { range in
                    for j in range { for kk in 0..<K { bt[j * K + kk] = colIn[kk * cols + j] } }
                }
                let path = Conv3x3Path.best.rawValue, cout = g.cout
                if let q = streamedInt8 {
                    let w8 = UnsafePointer(q.values.storage.pointer.assumingMemoryBound(to: Int8.self))
                    let perRow: Int32 = q.axis == nil ? 0 : 1
                    q.scales.withUnsafeBufferPointer { sp in
                        let scales = UncheckedBox(sp.baseAddress!)
                        threads.forRanges((cout + 3) / 4) { range in
                            mfs_sgemm_nt_i8(path, w8, K, scales.value, perRow, bt, K, Int32(K), Int32(range.lowerBound * 4),
                                            Int32(min(cout, range.upperBound * 4)), Int32(cols), out, cols)
                        }
                    }
                } else {
                    threads.forRanges((cout + 3) / 4) { range in
                        mfs_sgemm_nt(path, pw, K, bt, K, Int32(K), Int32(range.lowerBound * 4), Int32(min(cout, range.upperBound * 4)),
                                     Int32(cols), out, cols)
                    }
                }
            } else {
                multiply(ctx, a: pw, m: g.cout, k: K, b: col, ldb: cols, cols: cols, c: out, ldc: cols)
            }
            threads.forEach(g.cout, minPerThread: max(1, 4096 / cols)) { o in
                for n in 0..<g.n {
                    let dst = py + (n * g.cout + o) * P
                    dst.update(from: out + o * cols + n * P, count: P)
                    if !epIdentity { ep.apply(dst, count: P, n: n, c: o, p0: 0, scale: 1) }
                }
            }
            return
        }

        if winogradWeights == nil { winograd?.transformWeights(pw, scratch: col, threads: threads) }
        let uPrecomputed = winogradWeights.map { UnsafePointer($0.pointer.assumingMemoryBound(to: Float.self)) }
        for n in 0..<g.n {
            let (style, demod) = Modulation.sample(modulation, ctx, n: n, cin: g.cin, cout: g.cout, demod: dBuf)
            let xn = px + n * g.cin * HW, yn = py + n * g.cout * P
            for grp in 0..<g.groups {
                let xg = xn + grp * g.cinG * HW
                let yg = yn + grp * g.coutG * P
                let wg = pw + grp * g.coutG * K
                let sg = style.map { $0 + grp * g.cinG }
                let c0 = grp * g.coutG
                if g.isPointwise {
                    let a = sg.map { scaledPointwiseWeight(wg, style: $0, into: wScaled) } ?? wg
                    // Blocks of output columns keep the epilogue cache-hot.
                    let block = pointwiseBlock
                    var p0 = 0
                    while p0 < P {
                        let cols = min(block, P - p0)
                        if pointwiseRows {
                            rowsProduct(a: a, b: xg + p0, ldb: HW, cols: cols, c: yg + p0, ldc: P, threads: threads)
                        } else {
                            multiply(ctx, a: a, m: g.coutG, k: g.cinG, b: xg + p0, ldb: HW, cols: cols, c: yg + p0, ldc: P)
                        }
                        if !epIdentity || demod {
                            ep.applyPlanes(yg + p0, stride: P, channels: c0..<(c0 + g.coutG), count: cols, n: n, p0: p0,
                                           demod: demod ? UnsafePointer(dBuf) : nil, threads: threads)
                        }
                        p0 += cols
                    }
                } else {
                    // Over its input, a band's output waits in `bandOut` until the next band's
                    // im2col has read the input rows it replaces (a residual that is the input
                    // itself is read before its rows are replaced, too).
                    var pending: (p0: Int, cols: Int)? = nil
                    func store(_ band: (p0: Int, cols: Int)) {
                        threads.forEach(g.coutG, minPerThread: max(1, 8192 / band.cols)) { o in
                            (yg + o * P + band.p0).update(from: bandOut + o * band.cols, count: band.cols)
                        }
                    }
                    var r0 = 0
                    while r0 < g.oh {
                        let rows = min(bandRows, g.oh - r0)
                        let cols = rows * g.ow, pp = r0 * g.ow
                        // Channel o of this band's output: out + o * ldOut.
                        let out = bandWaits ? bandOut : yg + pp
                        let ldOut = bandWaits ? cols : P
                        var epilogueDone = false
                        if let winograd {
                            winograd.run(g: g, x: xg, scale: sg, y: yg, r0: r0, rows: rows, scratch: col, weights: uPrecomputed,
                                         overInput: overInput, threads: threads)
                        } else if let direct {
                            // The kernel applies the epilogue in its store when it can (the
                            // separate pass cost 7-12 ms per 512-1024 px generator layer).
                            let kernelEp = epIdentity && !demod ? nil
                                : ep.kernelEpilogue(n: n, p0: pp, scale: demod ? UnsafePointer(dBuf) : nil)
                            epilogueDone = kernelEp != nil
                            direct.run(g: g, x: xg, weight: wg, scale: sg, y: yg, r0: r0, rows: rows, band: col,
                                       halo: overInput ? col + direct.haloOffset / 4 : nil, epilogue: kernelEp, threads: threads)
                        } else {
                            im2col(xg, col: col, rows: r0..<(r0 + rows), scale: sg, threads: threads)
                            if let band = pending { store(band) }
                            multiply(ctx, a: wg, m: g.coutG, k: K, b: col, ldb: cols, cols: cols, c: out, ldc: ldOut)
                        }
                        if (!epIdentity || demod) && !epilogueDone {
                            ep.applyPlanes(out, stride: ldOut, channels: c0..<(c0 + g.coutG), count: cols, n: n, p0: pp,
                                           demod: demod ? UnsafePointer(dBuf) : nil, threads: threads)
                        }
                        if bandWaits { pending = (pp, cols) }
                        r0 += rows
                    }
                    if let band = pending { store(band) }
                }
            }
        }
    }

    /// A group's pointwise weight [coutG][cinG] with input channel i scaled by style[i], into
    /// `out`: the (tiny for 1x1) weight scaled instead of a copy of the input.
    func scaledPointwiseWeight(_ w: UnsafePointer<Float>, style: UnsafePointer<Float>,
                               into out: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        let cinG = g.cinG
        for o in 0..<g.coutG { for i in 0..<cinG { out[o * cinG + i] = w[o * cinG + i] * style[i] } }
        return UnsafePointer(out)
    }

    /// c[coutG x cols] (row stride ldc) = a[coutG x cinG] * b[cinG x cols] (row stride ldb) with
    /// the few-row product (`pointwiseRows`), split over the threads in 16-column blocks.
    func rowsProduct(a: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int, cols: Int, c: UnsafeMutablePointer<Float>,
                     ldc: Int, threads: ThreadPartition) {
        let m = Int32(g.coutG), k = Int32(g.cinG), path = Conv3x3Path.best.rawValue
        threads.forRanges((cols + 15) / 16) { r in
            mfs_sgemm_small_m(path, m, k, a, b, ldb, Int32(r.lowerBound * 16), Int32(min(cols, r.upperBound * 16)), c, ldc)
        }
    }

    /// c[m x cols] (row stride ldc) = a[m x k] * b[k x cols] (row stride ldb): float32 GEMM, or
    /// with int8 weights the int8 product of b quantized per call.
    @inline(__always)
    func multiply(_ ctx: KernelContext, a: UnsafePointer<Float>, m: Int, k: Int, b: UnsafePointer<Float>, ldb: Int,
                  cols: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if let w8 = int8Weights {
            let scratch = (ctx.scratch + int8ScratchOffset).assumingMemoryBound(to: UInt8.self)
            Int8Gemm.dynamicGemm(w8, x: b, n: cols, ldx: ldb, bias: nil, y: c, ldy: ldc, scratch: scratch, threads: ctx.threads)
        } else {
            ctx.gemm.sgemm(transA: false, transB: false, m: m, n: cols, k: k, alpha: 1,
                           a: a, lda: k, b: b, ldb: ldb, beta: 0, c: c, ldc: ldc)
        }
    }

    /// col[k][r*OW + ow] for k = (c, kh, kw) over the band's output rows; zero where the window
    /// reads padding; input channel c scaled by scale[c] when given.
    func im2col(_ xg: UnsafePointer<Float>, col: UnsafeMutablePointer<Float>, rows: Range<Int>,
                scale: UnsafePointer<Float>?, threads: ThreadPartition, colStride: Int? = nil) {
        let g = self.g
        let kk = g.kh * g.kw
        let K = g.cinG * kk
        let cols = colStride ?? rows.count * g.ow
        threads.forRanges(K, minPerThread: max(1, 16384 / max(1, cols))) { range in
            for k in range {
                let c = k / kk, kh = (k / g.kw) % g.kh, kw = k % g.kw
                mfs_im2col_row(xg + c * g.h * g.w, Int32(g.h), Int32(g.w),
                               Int32(rows.lowerBound * g.sh - g.padTop + kh * g.dh), Int32(g.sh),
                               Int32(kw * g.dw - g.padLeft), Int32(g.sw), Int32(rows.count), Int32(g.ow),
                               scale?[c] ?? 1, col + k * cols)
            }
        }
    }
}

/// Direct convolution for one input and one output channel per group (depthwise, and the
/// single-channel blur convolutions of upfirdn2d written as plain ops). Parallel over planes.
final class DepthwiseConvKernel: RuntimeKernel {
    let g: ConvGeometry
    let x: Int, w: Int, y: Int
    let epilogue: ConvEpilogue
    var kernelName: String { "conv(depthwise)" }
    var flops: Double { g.convFlops }

    init(geometry: ConvGeometry, x: Int, w: Int, y: Int, epilogue: ConvEpilogue) {
        g = geometry; self.x = x; self.w = w; self.y = y; self.epilogue = epilogue
    }

    func run(_ ctx: KernelContext) throws {
        let g = self.g
        let px = UnsafePointer(ctx.f32(x)), pw = UnsafePointer(ctx.f32(w)), py = ctx.f32(y)
        let ep = epilogue.bind(ctx, channels: g.cout, spatial: g.oh * g.ow)
        let identity = epilogue.isIdentity
        let planes = g.n * g.cout
        ctx.threads.forEach(planes) { plane in
            let n = plane / g.cout, c = plane % g.cout
            let src = px + (n * g.cin + c) * g.h * g.w
            let dst = py + plane * g.oh * g.ow
            let k = pw + c * g.kh * g.kw
            for oh in 0..<g.oh {
                let orow = dst + oh * g.ow
                orow.initialize(repeating: 0, count: g.ow)
                for a in 0..<g.kh {
                    let ih = oh * g.sh - g.padTop + a * g.dh
                    if ih < 0 || ih >= g.h { continue }
                    let irow = src + ih * g.w
                    for b in 0..<g.kw {
                        let kv = k[a * g.kw + b]
                        let off = b * g.dw - g.padLeft
                        let lo = off >= 0 ? 0 : min(g.ow, (-off + g.sw - 1) / g.sw)
                        let hi = max(lo, min(g.ow, (g.w - 1 - off) >= 0 ? (g.w - 1 - off) / g.sw + 1 : 0))
                        if g.sw == 1 {
                            let s = irow + off
                            for j in lo..<hi { orow[j] += kv * s[j] }
                        } else {
                            for j in lo..<hi { orow[j] += kv * irow[j * g.sw + off] }
                        }
                    }
                }
            }
            if !identity { ep.apply(dst, count: g.oh * g.ow, n: n, c: c, p0: 0, scale: 1) }
        }
    }
}

/// Transposed 2-D convolution: GEMM (W^T X) per band of input rows, then col2im scatter-add
/// per output channel (threads own channels); or, for StyleGAN2's 3x3 stride-2 case, the
/// direct kernel with input columns in vector lanes (`DirectConvTransposePlan`). Optional
/// modulation (input scaled per band), an upfirdn2d blur on the result (StyleGAN2's
/// upsampling conv), and a fused epilogue.
final class ConvTransposeKernel: RuntimeKernel {
    let g: ConvGeometry
    let x: Int, w: Int, y: Int
    let modulation: Modulation?
    let blur: (geometry: UpFirDnGeometry, kernel: [Float])?
    let blurSeparable: SeparableFilter?
    let epilogue: ConvEpilogue
    let bandRows: Int
    let colBytes: Int
    let xBandBytes: Int
    /// Modulated, GEMM path, with fewer weight values per input channel (9 x cout) than input
    /// pixels: the style scales the weight's rows (into the xBand scratch, once per sample)
    /// instead of a copy of every input band; at 1024 px that is 18 k values instead of 16 M.
    let scalesWeight: Bool
    let tBytes: Int
    let demodBytes: Int
    let name: String
    /// With a blur on the GEMM path: rows per channel of the sliding window that holds the
    /// transposed conv's output until the blur has read it (nil: a whole plane per channel).
    /// At 1024 px the whole planes took 134 MB of scratch; the window takes a few MB.
    let windowRows: Int?
    /// Set when the direct 3x3 stride-2 kernel runs instead of GEMM + col2im (its scratch is
    /// `colBytes`).
    let direct: DirectConvTransposePlan?
    /// The weight is [Cout, Cin, k, k] (see `ConvGeometry.weightIsOutIn`): the direct kernel
    /// packs it per call anyway; the GEMM path first lays it out [Cin][Cout k k] in
    /// `repackBytes` of scratch, once per call (at most 4 and 8 px here, 1.0 ms per 512-channel layer).
    let weightOutIn: Bool
    let repackBytes: Int

    var kernelName: String { name }
    var flops: Double { g.transposedFlops }
    var repackOffset: Int { colBytes + xBandBytes + tBytes + demodBytes }
    var scratchBytes: Int { repackOffset + repackBytes }

    init(geometry g: ConvGeometry, x: Int, w: Int, y: Int, modulation: Modulation?,
         blur: (geometry: UpFirDnGeometry, kernel: [Float])?, epilogue: ConvEpilogue, algorithm: ConvAlgorithm = .auto,
         bandBudgetBytes: Int = im2colBudgetBytes, weightOutIn: Bool = false) {
        self.g = g; self.x = x; self.w = w; self.y = y
        self.modulation = modulation; self.blur = blur; self.epilogue = epilogue
        self.weightOutIn = weightOutIn
        blurSeparable = blur.flatMap { SeparableFilter($0.kernel, kh: $0.geometry.kh, kw: $0.geometry.kw) }
        direct = DirectConvTransposePlan(g, blur: blur?.geometry, algorithm: algorithm)
        repackBytes = weightOutIn && direct == nil ? ((g.cin * g.cout * g.kh * g.kw * 4 + 63) / 64) * 64 : 0
        let m = g.coutG * g.kh * g.kw
        let rowBytes = m * g.w * 4
        bandRows = max(1, min(g.h, bandBudgetBytes / max(1, rowBytes)))
        if let direct {
            colBytes = direct.scratchBytes
            xBandBytes = 0
            scalesWeight = false
        } else {
            colBytes = ((m * bandRows * g.w * 4 + 63) / 64) * 64
            scalesWeight = modulation != nil && g.groups == 1 && m < g.h * g.w
            xBandBytes = modulation == nil ? 0
                : scalesWeight ? ((g.cinG * m * 4 + 63) / 64) * 64 : ((g.cinG * bandRows * g.w * 4 + 63) / 64) * 64
        }
        if let blur, direct == nil, blur.geometry.up == 1 {
            let rows = BlurWindow.rows(conv: g, blur: blur.geometry, bandRows: bandRows)
            windowRows = rows < g.oh ? rows : nil
        } else {
            windowRows = nil
        }
        tBytes = blur != nil && direct == nil ? ((g.cout * (windowRows ?? g.oh) * g.ow * 4 + 63) / 64) * 64 : 0
        demodBytes = modulation?.demodulate == true ? ((g.cout * 4 + 63) / 64) * 64 : 0
        var n = modulation != nil ? "modconvtranspose" : "convtranspose"
        if let direct { n += "(direct-\(direct.path))" }
        if blur != nil { n += "+blur" }
        name = n
    }

    func run(_ ctx: KernelContext) throws {
        let g = self.g
        let px = UnsafePointer(ctx.f32(x)), py = ctx.f32(y)
        var pw = UnsafePointer(ctx.f32(w))
        let HW = g.h * g.w, OP = g.oh * g.ow
        let M = g.coutG * g.kh * g.kw
        if weightOutIn && direct == nil {
            // [Cout][Cin][kk] -> [Cin][Cout kk], the A^T of the GEMM below.
            let repacked = ctx.scratchF32(offset: repackOffset)
            let cin = g.cin, kk = g.kh * g.kw, src = pw
            ctx.threads.forRanges(g.cout, minPerThread: max(1, 16384 / (cin * kk))) { r in
                for co in r {
                    for ci in 0..<cin {
                        let from = src + (co * cin + ci) * kk, to = repacked + ci * M + co * kk
                        for t in 0..<kk { to[t] = from[t] }
                    }
                }
            }
            pw = UnsafePointer(repacked)
        }
        let col = ctx.scratchF32()
        let xBand = ctx.scratchF32(offset: colBytes)
        let tBuf = ctx.scratchF32(offset: colBytes + xBandBytes)
        let dBuf = ctx.scratchF32(offset: colBytes + xBandBytes + tBytes)
        let threads = ctx.threads
        let finalP = blur.map { $0.geometry.oh * $0.geometry.ow } ?? OP
        let ep = epilogue.bind(ctx, channels: g.cout, spatial: finalP)

        for n in 0..<g.n {
            let (style, demod) = Modulation.sample(modulation, ctx, n: n, cin: g.cin, cout: g.cout, demod: dBuf)
            let xn = px + n * g.cin * HW
            if let direct {
                let yn = py + n * g.cout * finalP, dScale = demod ? UnsafePointer(dBuf) : nil
                let scratch = SendablePointer(col), out = SendablePointer(yn)
                let rowLength = blur?.geometry.ow ?? g.ow, finishes = !epilogue.isIdentity || demod
                withBlurKernel { blurArgs in
                    threads.forRanges(g.cout) { channels in
                        direct.run(g: g, x: xn, weight: pw, weightOutIn: weightOutIn, scale: style, blur: blurArgs, y: out.p,
                                   scratch: scratch.p, channels: channels) { c, rows in
                            guard finishes else { return }
                            let p0 = rows.lowerBound * rowLength
                            ep.apply(out.p + c * finalP + p0, count: rows.count * rowLength, n: n, c: c, p0: p0,
                                     scale: dScale?[c] ?? 1)
                        }
                    }
                }
                continue
            }
            let target = blur != nil ? tBuf : py + n * g.cout * OP
            if let window = windowRows, let blur {
                runBlurredInWindow(ctx, n: n, x: xn, weight: pw, style: style, window: tBuf, windowRows: window,
                                   blur: blur, y: py + n * g.cout * finalP, epilogue: ep, demod: demod ? dBuf : nil,
                                   col: col, xBand: xBand)
                continue
            }
            threads.forRanges(g.cout * OP, minPerThread: 65536) { r in
                (target + r.lowerBound).initialize(repeating: 0, count: r.count)
            }
            for grp in 0..<g.groups {
                let xg = xn + grp * g.cinG * HW
                let wg = scalesWeight ? UnsafePointer(scaledWeight(pw, style: style!, into: xBand, threads: threads))
                    : pw + grp * g.cinG * M
                let tg = target + grp * g.coutG * OP
                var r0 = 0
                while r0 < g.h {
                    let rows = min(bandRows, g.h - r0)
                    let cols = rows * g.w
                    var b = xg + r0 * g.w
                    var ldb = HW
                    if let s = style, !scalesWeight {
                        let sg = s + grp * g.cinG
                        let src = b
                        threads.forEach(g.cinG, minPerThread: max(1, 16384 / cols)) { i in
                            let si = sg[i], from = src + i * HW, to = xBand + i * cols
                            for j in 0..<cols { to[j] = from[j] * si }
                        }
                        b = UnsafePointer(xBand); ldb = cols
                    }
                    ctx.gemm.sgemm(transA: true, transB: false, m: M, n: cols, k: g.cinG, alpha: 1,
                                   a: wg, lda: M, b: b, ldb: ldb, beta: 0, c: col, ldc: cols)
                    col2im(col, into: tg, planeStride: OP, rowBase: 0, planeRows: g.oh,
                           inputRows: r0..<(r0 + rows), threads: threads)
                    r0 += rows
                }
            }
            if let blur {
                let bg = blur.geometry
                let yn = py + n * g.cout * finalP
                blur.kernel.withUnsafeBufferPointer { kb in
                    let k = kb.baseAddress!
                    threads.forEach(g.cout) { c in
                        let out = yn + c * finalP
                        upfirdnPlane(tBuf + c * OP, out, k, bg, separable: self.blurSeparable)
                        ep.apply(out, count: finalP, n: n, c: c, p0: 0, scale: demod ? dBuf[c] : 1)
                    }
                }
            } else if !epilogue.isIdentity || demod {
                let yn = py + n * g.cout * OP
                threads.forEach(g.cout) { c in
                    ep.apply(yn + c * OP, count: OP, n: n, c: c, p0: 0, scale: demod ? dBuf[c] : 1)
                }
            }
        }
    }

    private func withBlurKernel<R>(
        _ body: ((geometry: UpFirDnGeometry, kernel: UnsafePointer<Float>, separable: SeparableFilter?)?) -> R) -> R {
        guard let blur else { return body(nil) }
        return blur.kernel.withUnsafeBufferPointer { kb in body((blur.geometry, kb.baseAddress!, blurSeparable)) }
    }

    /// One sample through GEMM + col2im into the window, band by band; after each band the
    /// output rows whose window rows are complete are blurred (with the epilogue) and the
    /// window slides down past the rows no later blur row reads.
    private func runBlurredInWindow(_ ctx: KernelContext, n: Int, x xn: UnsafePointer<Float>, weight pw: UnsafePointer<Float>,
                                    style: UnsafePointer<Float>?, window: UnsafeMutablePointer<Float>, windowRows win: Int,
                                    blur: (geometry: UpFirDnGeometry, kernel: [Float]), y yn: UnsafeMutablePointer<Float>,
                                    epilogue ep: ConvEpilogue.Bound, demod: UnsafeMutablePointer<Float>?,
                                    col: UnsafeMutablePointer<Float>, xBand: UnsafeMutablePointer<Float>) {
        let g = self.g, bg = blur.geometry
        let threads = ctx.threads
        let HW = g.h * g.w, M = g.coutG * g.kh * g.kw
        let planeStride = win * g.ow
        let finalP = bg.oh * bg.ow
        threads.forRanges(g.cout * planeStride, minPerThread: 65536) { r in
            (window + r.lowerBound).initialize(repeating: 0, count: r.count)
        }
        let weight = scalesWeight ? UnsafePointer(scaledWeight(pw, style: style!, into: xBand, threads: threads)) : pw
        var slide = BlurWindow(conv: g, blur: bg)
        var r0 = 0
        while r0 < g.h {
            let rows = min(bandRows, g.h - r0)
            let cols = rows * g.w
            for grp in 0..<g.groups {
                var b = xn + grp * g.cinG * HW + r0 * g.w
                var ldb = HW
                if let s = style, !scalesWeight {
                    let sg = s + grp * g.cinG, src = b
                    threads.forEach(g.cinG, minPerThread: max(1, 16384 / cols)) { i in
                        let si = sg[i], from = src + i * HW, to = xBand + i * cols
                        for j in 0..<cols { to[j] = from[j] * si }
                    }
                    b = UnsafePointer(xBand); ldb = cols
                }
                ctx.gemm.sgemm(transA: true, transB: false, m: M, n: cols, k: g.cinG, alpha: 1,
                               a: weight + grp * g.cinG * M, lda: M, b: b, ldb: ldb, beta: 0, c: col, ldc: cols)
                col2im(col, into: window + grp * g.coutG * planeStride, planeStride: planeStride, rowBase: slide.base,
                       planeRows: win, inputRows: r0..<(r0 + rows), threads: threads)
            }
            let r1 = r0 + rows
            let step = slide.advance(afterInputRows: r1)
            let produce = step.produce
            blur.kernel.withUnsafeBufferPointer { kb in
                let k = kb.baseAddress!
                threads.forEach(g.cout) { c in
                    let wp = window + c * planeStride
                    if !produce.isEmpty {
                        let out = yn + c * finalP
                        upfirdnRows(UnsafePointer(wp - step.oldBase * g.ow), out, k, bg, rows: produce, separable: self.blurSeparable)
                        let p0 = produce.lowerBound * bg.ow
                        ep.apply(out + p0, count: produce.count * bg.ow, n: n, c: c, p0: p0, scale: demod?[c] ?? 1)
                    }
                    step.slide(wp, rows: win, rowLength: g.ow)
                }
            }
            r0 = r1
        }
    }

    /// w[ci][m] * style[ci] for the one group (`scalesWeight`), into `into`; returns it.
    private func scaledWeight(_ w: UnsafePointer<Float>, style: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                              threads: ThreadPartition) -> UnsafeMutablePointer<Float> {
        let m = g.coutG * g.kh * g.kw
        threads.forEach(g.cinG, minPerThread: max(1, 16384 / m)) { i in
            let si = style[i], from = w + i * m, to = out + i * m
            for j in 0..<m { to[j] = from[j] * si }
        }
        return out
    }

    /// out[co][ih*sh - padTop + kh*dh][iw*sw - padLeft + kw*dw] += col[(co,kh,kw)][(ih,iw)], the
    /// planes `planeStride` apart and holding output rows rowBase..<rowBase+planeRows.
    func col2im(_ col: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, planeStride: Int, rowBase: Int,
                planeRows: Int, inputRows: Range<Int>, threads: ThreadPartition) {
        let g = self.g
        let cols = inputRows.count * g.w
        threads.forEach(g.coutG) { co in
            let plane = out + co * planeStride - rowBase * g.ow
            for kh in 0..<g.kh {
                // Taps (kh, 0..<kw) of channel co, each `cols` apart.
                let src = col + (co * g.kh + kh) * g.kw * cols
                for (r, ih) in inputRows.enumerated() {
                    let oh = ih * g.sh - g.padTop + kh * g.dh
                    if oh < 0 || oh >= g.oh { continue }
                    precondition(oh >= rowBase && oh < rowBase + planeRows, "col2im row \(oh) outside its window")
                    mfs_col2im_row(src + r * g.w, cols, Int32(g.kw), Int32(g.w), Int32(g.sw), Int32(g.dw),
                                   Int32(g.padLeft), Int32(g.ow), plane + oh * g.ow)
                }
            }
        }
    }
}

/// upfirdn2d over every channel plane of [N, C, H, W] (StyleGAN2's Blur and Upsample).
final class UpFirDnKernel: RuntimeKernel {
    let geometry: UpFirDnGeometry
    let kernel: [Float]
    let x: Int, y: Int, planes: Int
    let epilogue: ConvEpilogue
    let channels: Int
    let separable: SeparableFilter?
    var kernelName: String { "upfirdn2d" }

    init(geometry: UpFirDnGeometry, kernel: [Float], x: Int, y: Int, planes: Int, channels: Int, epilogue: ConvEpilogue) {
        self.geometry = geometry; self.kernel = kernel; self.x = x; self.y = y; self.planes = planes
        self.channels = channels; self.epilogue = epilogue
        separable = SeparableFilter(kernel, kh: geometry.kh, kw: geometry.kw)
    }

    func run(_ ctx: KernelContext) throws {
        let g = geometry
        let px = UnsafePointer(ctx.f32(x)), py = ctx.f32(y)
        let ip = g.h * g.w, op = g.oh * g.ow
        let ep = epilogue.bind(ctx, channels: channels, spatial: op)
        let identity = epilogue.isIdentity, channels = self.channels
        // Parallel over rows of all planes, not planes: the ToRGB skip has 3 planes for 2 threads.
        kernel.withUnsafeBufferPointer { kb in
            let k = kb.baseAddress!
            ctx.threads.forRanges(planes * g.oh, minPerThread: max(1, 16384 / max(1, g.ow))) { range in
                var i = range.lowerBound
                while i < range.upperBound {
                    let p = i / g.oh, r0 = i % g.oh, r1 = min(g.oh, r0 + (range.upperBound - i))
                    upfirdnRows(px + p * ip, py + p * op, k, g, rows: r0..<r1, separable: self.separable)
                    if !identity {
                        ep.apply(py + p * op + r0 * g.ow, count: (r1 - r0) * g.ow, n: p / channels, c: p % channels,
                                 p0: r0 * g.ow, scale: 1)
                    }
                    i += r1 - r0
                }
            }
        }
    }
}
