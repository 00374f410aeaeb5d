import Testing
import MegaFSGraph
@testable import MegaFSRuntime

// The sub-pixel transposed convolution (SubPixelConvTranspose.swift, CKernels/convtaps.c):
// every path this CPU has against a float64 transposed convolution, the paths against each
// other bit for bit, and whole graphs against the reference evaluator.

/// ConvTranspose 3x3, stride 2, no padding, of one sample ([cin][h][w], weight [cin][cout][3][3])
/// in float64: [cout][2h+1][2w+1].
private func naiveConvTranspose(_ x: [Float], cin: Int, h: Int, w: Int, weight: [Float], cout: Int,
                                scale: [Float]?) -> [Double] {
    let oh = 2 * h + 1, ow = 2 * w + 1
    var y = [Double](repeating: 0, count: cout * oh * ow)
    for ci in 0..<cin {
        for ih in 0..<h {
            for iw in 0..<w {
                // The kernel scales the input in float32 first, as the band copy does.
                let xv = Double(x[(ci * h + ih) * w + iw] * (scale?[ci] ?? 1))
                for co in 0..<cout {
                    for kh in 0..<3 {
                        for kw in 0..<3 {
                            y[(co * oh + 2 * ih + kh) * ow + 2 * iw + kw] += xv * Double(weight[((ci * cout + co) * 3 + kh) * 3 + kw])
                        }
                    }
                }
            }
        }
    }
    return y
}

@Test func subPixelPathsMatchFloat64AndEachOther() throws {
    var rng = Rng(101)
    let paths = Conv3x3Path.allCases.filter(\.isAvailable)
    #expect(paths.contains(.reference))
    for trial in 0..<30 {
        // Phase widths (w and w + 1) around the 32-, 16- and 8-column blocks and their tails;
        // channel counts that are and are not multiples of the 4- and 8-channel blocks; more
        // than 64 input channels (a second pass over the partial sums) in some.
        let w = [1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 31, 33, 40, 47][trial % 14]
        let h = rng.int(1...6), cout = rng.int(1...20)
        let cin = trial % 5 == 4 ? rng.int(65...70) : rng.int(1...9)
        let x = (0..<(cin * h * w)).map { _ in rng.float() }
        let weight = (0..<(cin * cout * 9)).map { _ in rng.float() }
        let scale: [Float]? = trial % 3 == 0 ? (0..<cin).map { _ in rng.float(0.5, 2) } : nil
        let want = naiveConvTranspose(x, cin: cin, h: h, w: w, weight: weight, cout: cout, scale: scale)
        var g = ConvGeometry()
        g.n = 1; g.cin = cin; g.h = h; g.w = w; g.cout = cout; g.kh = 3; g.kw = 3; g.sh = 2; g.sw = 2
        g.oh = 2 * h + 1; g.ow = 2 * w + 1
        let wt = Tensor(weight, shape: [cin, cout, 3, 3])
        var outputs: [[Float]] = []
        for path in paths {
            let plan = try #require(SubPixelConvTransposePlan(g, weight: wt, algorithm: .direct, path: path))
            var y = [Float](repeating: .nan, count: cout * g.oh * g.ow)
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: plan.scratchBytes / 4)
            defer { scratch.deallocate() }
            x.withUnsafeBufferPointer { xb in
                y.withUnsafeMutableBufferPointer { yb in
                    (scale ?? []).withUnsafeBufferPointer { sb in
                        plan.run(g: g, x: xb.baseAddress!, scale: scale == nil ? nil : sb.baseAddress!, out: yb.baseAddress!,
                                 scratch: scratch, threads: ThreadPartition(threads: 2))
                    }
                }
            }
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

/// Bands smaller than the image: a wide input with many channels, so the 1 MiB band budget
/// splits the phase rows.
@Test func subPixelBandsSplitTheImage() throws {
    var rng = Rng(102)
    let cin = 800, cout = 5, h = 9, w = 60
    var g = ConvGeometry()
    g.n = 1; g.cin = cin; g.h = h; g.w = w; g.cout = cout; g.kh = 3; g.kw = 3; g.sh = 2; g.sw = 2
    g.oh = 2 * h + 1; g.ow = 2 * w + 1
    let x = (0..<(cin * h * w)).map { _ in rng.float() }
    let weight = (0..<(cin * cout * 9)).map { _ in rng.float() }
    let plan = try #require(SubPixelConvTransposePlan(g, weight: Tensor(weight, shape: [cin, cout, 3, 3]), algorithm: .direct))
    #expect(plan.rows < h + 1, "one band: \(plan.rows) rows")
    let want = naiveConvTranspose(x, cin: cin, h: h, w: w, weight: weight, cout: cout, scale: nil)
    var y = [Float](repeating: .nan, count: cout * g.oh * g.ow)
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: plan.scratchBytes / 4)
    defer { scratch.deallocate() }
    x.withUnsafeBufferPointer { xb in
        y.withUnsafeMutableBufferPointer { yb in
            plan.run(g: g, x: xb.baseAddress!, scale: nil, out: yb.baseAddress!, scratch: scratch, threads: ThreadPartition(threads: 2))
        }
    }
    let bound = 1e-5 * Double(cin * 4).squareRoot() * 4
    let worst = zip(y, want).map { abs(Double($0) - $1) / bound }.max() ?? .nan
    #expect(worst <= 1, "error \(worst) of the bound")
}

@Test func subPixelOnlyForTheStride2Kernel3Case() {
    var g = ConvGeometry()
    g.n = 1; g.cin = 4; g.h = 16; g.w = 256; g.cout = 4; g.kh = 3; g.kw = 3; g.sh = 2; g.sw = 2; g.oh = 33; g.ow = 513
    let wt = Tensor([Float](repeating: 1, count: 4 * 4 * 9), shape: [4, 4, 3, 3])
    #expect(SubPixelConvTransposePlan(g, weight: wt, algorithm: .direct) != nil)
    // auto is GEMM + col2im (see ConvAlgorithm).
    #expect(SubPixelConvTransposePlan(g, weight: wt, algorithm: .auto) == nil)
    #expect(SubPixelConvTransposePlan(g, weight: wt, algorithm: .im2col) == nil)
    #expect(SubPixelConvTransposePlan(g, weight: nil, algorithm: .direct) == nil)
    var padded = g
    padded.padTop = 1; padded.padLeft = 1; padded.padBottom = 1; padded.padRight = 1; padded.oh = 31; padded.ow = 511
    #expect(SubPixelConvTransposePlan(padded, weight: wt, algorithm: .direct) == nil)
}

@Test func plainConvTransposeRunsSubPixel() throws {
    var rng = Rng(103)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([2, 6, 3, 259]))
    let y = b.node("ConvTranspose", [x, b.constant(rng.tensor([6, 7, 3, 3]), "w"), b.constant(rng.tensor([7]), "b")],
                   ["strides": .ints([2, 2]), "kernel_shape": .ints([3, 3])])
    b.output(y)
    let s = try expectMatchesReference(b, conv: .direct, "sub-pixel convtranspose + bias")
    let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
    #expect(names.contains { $0.hasPrefix("convtranspose(subpixel") }, "\(names)")
}

/// StyleGAN2's upsampling StyledConv (modulated transposed conv, blur, noise, bias, leaky
/// ReLU) fused into one kernel that runs the sub-pixel phases.
@Test func modulatedUpsamplingConvRunsSubPixel() throws {
    var rng = Rng(104)
    var b = GraphBuilder()
    let cin = 6, cout = 5, dim = 8, h = 3, w = 256
    let latents = b.input("latents", rng.tensor([1, dim]))
    let x = b.input("x", rng.tensor([1, cin, h, w]))
    var u = modulatedConv(&b, &rng, x: x, latent: latents, cin: cin, cout: cout, k: 3, styleDim: dim,
                          demodulate: true, upsample: true)
    u = upfirdn(&b, x: u, n: 1, c: cout, h: 2 * h + 1, w: 2 * w + 1, up: 1, pad: (1, 1))
    u = b.node("Add", [u, b.constant(rng.tensor([1, 1, 2 * h, 2 * w]))])
    u = b.node("Add", [u, b.constant(rng.tensor([1, cout, 1, 1]))])
    u = b.node("LeakyRelu", [u], ["alpha": .float(0.2)])
    b.output(u)
    let s = try expectMatchesReference(b, conv: .direct, "modulated sub-pixel convtranspose + blur")
    let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
    #expect(names.contains { $0.hasPrefix("modconvtranspose(subpixel") && $0.hasSuffix("+blur") }, "\(names)")
}
