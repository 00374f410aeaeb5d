import Testing
import MegaFSGraph
@testable import MegaFSRuntime

// The direct 3x3 stride-2 transposed convolution (DirectConvTranspose.swift,
// CKernels/convtranspose.c): every path this CPU has against a float64 transposed convolution,
// the paths against each other bit for bit, the blur window against whole planes, and whole
// graphs against the reference evaluator.

/// ConvTranspose 3x3, stride 2, no padding, of one sample ([cin][h][w], weight [cin][cout][3][3])
/// in float64: [cout][2h+1][2w+1].
private func naiveConvTranspose(_ x: [Float], cin: Int, h: Int, w: Int, weight: [Float], cout: Int,
                                scale: [Float]?) -> [Double] {
    let oh = 2 * h + 1, ow = 2 * w + 1
    var y = [Double](repeating: 0, count: cout * oh * ow)
    for ci in 0..<cin {
        for ih in 0..<h {
            for iw in 0..<w {
                let xv = Double(x[(ci * h + ih) * w + iw])
                for co in 0..<cout {
                    for kh in 0..<3 {
                        for kw in 0..<3 {
                            // The kernel scales the weight in float32 first, as its packing does.
                            let wv = weight[((ci * cout + co) * 3 + kh) * 3 + kw] * (scale?[ci] ?? 1)
                            y[(co * oh + 2 * ih + kh) * ow + 2 * iw + kw] += xv * Double(wv)
                        }
                    }
                }
            }
        }
    }
    return y
}

private func geometry(cin: Int, cout: Int, h: Int, w: Int) -> ConvGeometry {
    var g = ConvGeometry()
    g.n = 1; g.cin = cin; g.h = h; g.w = w; g.cout = cout; g.kh = 3; g.kw = 3; g.sh = 2; g.sw = 2
    g.oh = 2 * h + 1; g.ow = 2 * w + 1
    return g
}

/// Runs `plan` on one sample, the output channels split at `splits` (one call per part, as the
/// threads do); y starts as NaN so that a pixel left unwritten shows.
private func runPlan(_ plan: DirectConvTransposePlan, _ g: ConvGeometry, x: [Float], weight: [Float], scale: [Float]?,
                     blur: (UpFirDnGeometry, [Float])? = nil, splits: [Int] = []) -> [Float] {
    let outPlane = blur.map { $0.0.oh * $0.0.ow } ?? g.oh * g.ow
    var y = [Float](repeating: .nan, count: g.cout * outPlane)
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: plan.scratchBytes / 4)
    defer { scratch.deallocate() }
    let bounds = [0] + splits + [g.cout]
    let kernel = blur?.1 ?? []
    let separable = blur.flatMap { SeparableFilter($0.1, kh: $0.0.kh, kw: $0.0.kw) }
    x.withUnsafeBufferPointer { xb in
        weight.withUnsafeBufferPointer { wb in
            y.withUnsafeMutableBufferPointer { yb in
                (scale ?? []).withUnsafeBufferPointer { sb in
                    kernel.withUnsafeBufferPointer { kb in
                        for p in 0..<(bounds.count - 1) {
                            plan.run(g: g, x: xb.baseAddress!, weight: wb.baseAddress!, scale: scale == nil ? nil : sb.baseAddress!,
                                     blur: blur.map { ($0.0, kb.baseAddress!, separable) }, y: yb.baseAddress!, scratch: scratch,
                                     channels: bounds[p]..<bounds[p + 1]) { _, _ in }
                        }
                    }
                }
            }
        }
    }
    return y
}

@Test func directConvTransposePathsMatchFloat64AndEachOther() throws {
    var rng = Rng(101)
    let paths = Conv3x3Path.allCases.filter(\.isAvailable)
    #expect(paths.contains(.reference))
    for trial in 0..<36 {
        // Widths around the 8-column (AVX2) and 16- and 32-column (AVX-512) tiles and their
        // tails, including whole tiles (the last column's kw = 2 tap then lands past them).
        let w = [1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 31, 32, 33, 40, 47, 48, 64, 65][trial % 18]
        let h = rng.int(1...5), cout = rng.int(1...9)
        let cin = trial % 6 == 5 ? rng.int(65...80) : rng.int(1...9)
        let x = (0..<(cin * h * w)).map { _ in rng.float() }
        let weight = (0..<(cin * cout * 9)).map { _ in rng.float() }
        let scale: [Float]? = trial % 3 == 0 ? (0..<cin).map { _ in rng.float(0.5, 2) } : nil
        let want = naiveConvTranspose(x, cin: cin, h: h, w: w, weight: weight, cout: cout, scale: scale)
        let g = geometry(cin: cin, cout: cout, h: h, w: w)
        var outputs: [[Float]] = []
        for path in paths {
            let plan = try #require(DirectConvTransposePlan(g, blur: nil, algorithm: .direct, path: path))
            let y = runPlan(plan, g, x: x, weight: weight, scale: scale, splits: cout > 2 ? [cout / 2] : [])
            var worst = 0.0
            for i in 0..<y.count {
                let bound = 1e-5 * Double(cin * 4).squareRoot() * 4
                worst = max(worst, abs(Double(y[i]) - want[i]) / bound)
            }
            #expect(worst <= 1, "trial \(trial) \(path) \(cin)->\(cout) \(h)x\(w): error \(worst) of the bound (NaN: a pixel not written)")
            outputs.append(y)
        }
        for (i, y) in outputs.enumerated().dropFirst() {
            #expect(y == outputs[0], "trial \(trial): \(paths[i]) differs from \(paths[0]) in bits")
        }
    }
}

/// StyleGAN2's blur after the transposed conv: the sliding window of 4-row bands gives the
/// bits of blurring whole planes, for windows as tall as the plane and shorter.
@Test func directConvTransposeWindowMatchesWholePlanes() throws {
    var rng = Rng(102)
    let k1: [Float] = [1, 3, 3, 1]
    var kernel: [Float] = []
    for i in 0..<4 { for j in 0..<4 { kernel.append(k1[i] * k1[j] / 64 * 4) } }
    for (h, w) in [(1, 16), (3, 17), (4, 20), (5, 33), (9, 16), (13, 40)] {
        let cin = rng.int(1...12), cout = rng.int(1...6)
        let g = geometry(cin: cin, cout: cout, h: h, w: w)
        var bg = UpFirDnGeometry()
        bg.padTop = 1; bg.padLeft = 1; bg.padBottom = 1; bg.padRight = 1; bg.kh = 4; bg.kw = 4; bg.h = g.oh; bg.w = g.ow
        let x = (0..<(cin * h * w)).map { _ in rng.float() }
        let weight = (0..<(cin * cout * 9)).map { _ in rng.float() }
        let scale = (0..<cin).map { _ in rng.float(0.5, 2) }
        let windowed = try #require(DirectConvTransposePlan(g, blur: bg, algorithm: .auto))
        // From 9 rows (19 conv rows) the window is shorter than the plane and slides.
        #expect(h < 9 || windowed.windowRows < g.oh, "\(h)x\(w): no sliding")
        let got = runPlan(windowed, g, x: x, weight: weight, scale: scale, blur: (bg, kernel), splits: cout > 1 ? [1] : [])
        let plain = try #require(DirectConvTransposePlan(g, blur: nil, algorithm: .auto))
        let t = runPlan(plain, g, x: x, weight: weight, scale: scale)
        var want = [Float](repeating: 0, count: cout * bg.oh * bg.ow)
        let separable = SeparableFilter(kernel, kh: 4, kw: 4)
        t.withUnsafeBufferPointer { tb in
            want.withUnsafeMutableBufferPointer { wb in
                kernel.withUnsafeBufferPointer { kb in
                    for c in 0..<cout {
                        upfirdnPlane(tb.baseAddress! + c * g.oh * g.ow, wb.baseAddress! + c * bg.oh * bg.ow, kb.baseAddress!, bg,
                                     separable: separable)
                    }
                }
            }
        }
        #expect(got == want, "\(cin)->\(cout) \(h)x\(w): the window's blur differs from whole planes")
    }
}

@Test func directConvTransposeOnlyForItsCase() {
    let g = geometry(cin: 4, cout: 4, h: 16, w: 256)
    #expect(DirectConvTransposePlan(g, blur: nil, algorithm: .auto) != nil)
    #expect(DirectConvTransposePlan(g, blur: nil, algorithm: .direct) != nil)
    #expect(DirectConvTransposePlan(g, blur: nil, algorithm: .im2col) == nil)
    // Narrow rows stay on GEMM + col2im unless forced.
    let narrow = geometry(cin: 4, cout: 4, h: 16, w: DirectConvTransposePlan.minWidth - 1)
    #expect(DirectConvTransposePlan(narrow, blur: nil, algorithm: .auto) == nil)
    #expect(DirectConvTransposePlan(narrow, blur: nil, algorithm: .direct) != nil)
    var padded = g
    padded.padTop = 1; padded.padLeft = 1; padded.padBottom = 1; padded.padRight = 1; padded.oh = 31; padded.ow = 511
    #expect(DirectConvTransposePlan(padded, blur: nil, algorithm: .direct) == nil)
    var grouped = g
    grouped.groups = 2
    #expect(DirectConvTransposePlan(grouped, blur: nil, algorithm: .direct) == nil)
    var upsampling = UpFirDnGeometry()
    upsampling.up = 2; upsampling.kh = 4; upsampling.kw = 4; upsampling.h = g.oh; upsampling.w = g.ow
    #expect(DirectConvTransposePlan(g, blur: upsampling, algorithm: .direct) == nil)
}

@Test func plainConvTransposeRunsDirect() throws {
    var rng = Rng(103)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([2, 6, 3, 259]))
    let y = b.node("ConvTranspose", [x, b.constant(rng.tensor([6, 7, 3, 3]), "w"), b.constant(rng.tensor([7]), "b")],
                   ["strides": .ints([2, 2]), "kernel_shape": .ints([3, 3])])
    b.output(y)
    let s = try expectMatchesReference(b, "direct convtranspose + bias")
    let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
    #expect(names.contains { $0.hasPrefix("convtranspose(direct") }, "\(names)")
}

/// StyleGAN2's upsampling StyledConv (modulated transposed conv, blur, noise, bias, leaky
/// ReLU) fused into one kernel on the direct path, taller than a band so the window slides.
@Test func modulatedUpsamplingConvRunsDirect() throws {
    for algorithm in [ConvAlgorithm.auto, .direct] {
        var rng = Rng(104)
        var b = GraphBuilder()
        let cin = 6, cout = 5, dim = 8, h = 11, w = 40
        let latents = b.input("latents", rng.tensor([1, dim]))
        let x = b.input("x", rng.tensor([1, cin, h, w]))
        var u = modulatedConv(&b, &rng, x: x, latent: latents, cin: cin, cout: cout, k: 3, styleDim: dim,
                              demodulate: true, upsample: true)
        u = upfirdn(&b, x: u, n: 1, c: cout, h: 2 * h + 1, w: 2 * w + 1, up: 1, pad: (1, 1))
        u = b.node("Add", [u, b.constant(rng.tensor([1, 1, 2 * h, 2 * w]))])
        u = b.node("Add", [u, b.constant(rng.tensor([1, cout, 1, 1]))])
        u = b.node("LeakyRelu", [u], ["alpha": .float(0.2)])
        b.output(u)
        let s = try expectMatchesReference(b, conv: algorithm, "modulated direct convtranspose + blur (\(algorithm))")
        let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
        #expect(names.contains { $0.hasPrefix("modconvtranspose(direct") && $0.hasSuffix("+blur") }, "\(names)")
    }
}
