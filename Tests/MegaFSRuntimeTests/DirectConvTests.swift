import Testing
import MegaFSGraph
@testable import MegaFSRuntime

// The direct 3x3 convolution (CKernels/conv3x3.c): every path this CPU has against a
// float64 convolution, and the paths against each other bit for bit.

/// y[co][r][x] of a 3x3 stride-1 pad-1 conv of one sample, in float64.
private func naiveConv3x3(_ x: [Float], cin: Int, h: Int, w: Int, weight: [Float], cout: Int,
                          scale: [Float]?) -> [Double] {
    var y = [Double](repeating: 0, count: cout * h * w)
    for co in 0..<cout {
        for r in 0..<h {
            for c in 0..<w {
                var acc = 0.0
                for ci in 0..<cin {
                    let s = Double(scale?[ci] ?? 1)
                    for ky in 0..<3 {
                        let ih = r + ky - 1
                        if ih < 0 || ih >= h { continue }
                        for kx in 0..<3 {
                            let iw = c + kx - 1
                            if iw < 0 || iw >= w { continue }
                            // The kernel scales the input in float32 first, as the band copy does.
                            let xv = scale == nil ? Double(x[(ci * h + ih) * w + iw])
                                                  : Double(x[(ci * h + ih) * w + iw] * Float(s))
                            acc += Double(weight[((co * cin + ci) * 3 + ky) * 3 + kx]) * xv
                        }
                    }
                }
                y[(co * h + r) * w + c] = acc
            }
        }
    }
    return y
}

@Test func directConv3x3PathsMatchFloat64AndEachOther() throws {
    var rng = Rng(91)
    let paths = Conv3x3Path.allCases.filter(\.isAvailable)
    #expect(paths.contains(.reference))
    for trial in 0..<40 {
        // Widths around the 24- and 8-column blocks and their tails; channel counts that are
        // and are not multiples of the 4-channel block.
        let w = [1, 2, 7, 8, 9, 16, 23, 24, 25, 31, 33, 47, 48, 50][trial % 14]
        let h = rng.int(1...9), cin = rng.int(1...9), cout = rng.int(1...11)
        let x = (0..<(cin * h * w)).map { _ in rng.float() }
        let weight = (0..<(cout * cin * 9)).map { _ in rng.float() }
        let scale: [Float]? = trial % 3 == 0 ? (0..<cin).map { _ in rng.float(0.5, 2) } : nil
        let want = naiveConv3x3(x, cin: cin, h: h, w: w, weight: weight, cout: cout, scale: scale)
        var g = ConvGeometry()
        g.n = 1; g.cin = cin; g.h = h; g.w = w; g.cout = cout; g.kh = 3; g.kw = 3; g.oh = h; g.ow = w
        g.padTop = 1; g.padLeft = 1; g.padBottom = 1; g.padRight = 1
        var outputs: [[Float]] = []
        for path in paths {
            let plan = try #require(DirectConvPlan(g, algorithm: .direct, path: path))
            var y = [Float](repeating: .nan, count: cout * h * w)
            let band = UnsafeMutablePointer<Float>.allocate(capacity: plan.bandBytes / 4)
            defer { band.deallocate() }
            x.withUnsafeBufferPointer { xb in
                weight.withUnsafeBufferPointer { wb in
                    y.withUnsafeMutableBufferPointer { yb in
                        (scale ?? []).withUnsafeBufferPointer { sb in
                            let s = scale == nil ? nil : sb.baseAddress
                            // Bands of at most 3 rows, so band edges fall inside the image too.
                            var r0 = 0
                            while r0 < h {
                                let rows = min(3, plan.rows, h - r0)
                                plan.run(g: g, x: xb.baseAddress!, weight: wb.baseAddress!, scale: s,
                                         y: yb.baseAddress!, r0: r0, rows: rows, band: band, threads: ThreadPartition(threads: 2))
                                r0 += rows
                            }
                        }
                    }
                }
            }
            var worst = 0.0
            for i in 0..<y.count {
                let bound = 1e-5 * Double(cin * 9).squareRoot() * 4
                worst = max(worst, abs(Double(y[i]) - want[i]) / bound)
            }
            #expect(worst <= 1, "trial \(trial) \(path) \(cin)->\(cout) \(h)x\(w): error \(worst) of the bound")
            outputs.append(y)
        }
        for (i, y) in outputs.enumerated().dropFirst() {
            #expect(y == outputs[0], "trial \(trial): \(paths[i]) differs from \(paths[0]) in bits")
        }
    }
}

/// y from `plan` for one sample of g, in bands of at most `bandRows` rows, 2 threads.
private func runDirect(_ plan: DirectConvPlan, _ g: ConvGeometry, x: [Float], weight: [Float], bandRows: Int) -> [Float] {
    var y = [Float](repeating: .nan, count: g.cout * g.oh * g.ow)
    let band = UnsafeMutablePointer<Float>.allocate(capacity: plan.bandBytes / 4)
    defer { band.deallocate() }
    x.withUnsafeBufferPointer { xb in
        weight.withUnsafeBufferPointer { wb in
            y.withUnsafeMutableBufferPointer { yb in
                var r0 = 0
                while r0 < g.h {
                    let rows = min(bandRows, plan.rows, g.h - r0)
                    plan.run(g: g, x: xb.baseAddress!, weight: wb.baseAddress!, scale: nil, y: yb.baseAddress!,
                             r0: r0, rows: rows, band: band, threads: ThreadPartition(threads: 2))
                    r0 += rows
                }
            }
        }
    }
    return y
}

// The 8-channel AVX-512 tiles, their masked row tails, both loop orders (weights of one pass
// above 384 kB take the channel-block-outer order) and input channels in two passes of 64.
@Test func directConv3x3WideChannelBlocksAgreeAcrossPaths() throws {
    var rng = Rng(93)
    let paths = Conv3x3Path.allCases.filter(\.isAvailable)
    for (cin, cout, h, w) in [(70, 20, 3, 61), (9, 13, 2, 70), (64, 180, 2, 40), (3, 8, 4, 17), (66, 178, 1, 5)] {
        let x = (0..<(cin * h * w)).map { _ in rng.float() }
        let weight = (0..<(cout * cin * 9)).map { _ in rng.float() }
        var g = ConvGeometry()
        g.n = 1; g.cin = cin; g.h = h; g.w = w; g.cout = cout; g.kh = 3; g.kw = 3; g.oh = h; g.ow = w
        g.padTop = 1; g.padLeft = 1; g.padBottom = 1; g.padRight = 1
        let want = naiveConv3x3(x, cin: cin, h: h, w: w, weight: weight, cout: cout, scale: nil)
        var outputs: [[Float]] = []
        for path in paths {
            let plan = try #require(DirectConvPlan(g, algorithm: .direct, path: path))
            let y = runDirect(plan, g, x: x, weight: weight, bandRows: 2)
            var worst = 0.0
            for i in 0..<y.count {
                worst = max(worst, abs(Double(y[i]) - want[i]) / (1e-5 * Double(cin * 9).squareRoot() * 4))
            }
            #expect(worst <= 1, "\(path) \(cin)->\(cout) \(h)x\(w): error \(worst) of the bound")
            outputs.append(y)
        }
        for (i, y) in outputs.enumerated().dropFirst() {
            #expect(y == outputs[0], "\(cin)->\(cout) \(h)x\(w): \(paths[i]) differs from \(paths[0]) in bits")
        }
    }
}

// The epilogue the kernel applies in its store (CKernels/conv3x3.h) against ConvEpilogue's own
// pass, bit for bit, on every path: demodulation scale, bias, a per-channel and a broadcast
// addend, each activation the kernel takes, with and without gain; channel counts with a
// remainder after the 8-channel blocks, and rows with masked tails.
@Test func kernelEpilogueMatchesTheSeparatePassBitForBit() throws {
    var rng = Rng(94)
    let paths = Conv3x3Path.allCases.filter(\.isAvailable)
    let (cin, cout, h, w) = (5, 13, 3, 37)
    var g = ConvGeometry()
    g.n = 1; g.cin = cin; g.h = h; g.w = w; g.cout = cout; g.kh = 3; g.kw = 3; g.oh = h; g.ow = w
    g.padTop = 1; g.padLeft = 1; g.padBottom = 1; g.padRight = 1
    let x = (0..<(cin * h * w)).map { _ in rng.float() }
    let weight = (0..<(cout * cin * 9)).map { _ in rng.float() }
    let scale = (0..<cout).map { i in i % 3 == 0 ? Float(1) : rng.float(0.5, 2) }
    let bias = (0..<cout).map { i in i % 4 == 0 ? Float(0) : rng.float() }
    let addend = (0..<(cout * h * w)).map { _ in rng.float() }
    let activations: [Activation] = [.none, .relu, .leakyRelu(0.2)]
    for path in paths {
        let plan = try #require(DirectConvPlan(g, algorithm: .direct, path: path))
        let plain = runDirect(plan, g, x: x, weight: weight, bandRows: h)
        for activation in activations {
            for gain: Float in [1, 1.4142135] {
                for (perChannel, withScale, withBias) in [(true, true, true), (false, false, true), (false, true, false),
                                                          (nil as Bool?, false, false), (nil, true, true)] {
                    let channelStride = perChannel == nil ? 0 : (perChannel! ? h * w : 0)
                    try scale.withUnsafeBufferPointer { sb in
                        try bias.withUnsafeBufferPointer { bb in
                            try addend.withUnsafeBufferPointer { ab in
                                let bound = ConvEpilogue.Bound(bias: withBias ? bb.baseAddress : nil,
                                                               addend: perChannel == nil ? nil : ab.baseAddress,
                                                               addendSampleStride: 0, addendChannelStride: channelStride,
                                                               activation: activation, gain: gain)
                                var want = plain
                                want.withUnsafeMutableBufferPointer { yb in
                                    for c in 0..<cout {
                                        bound.apply(yb.baseAddress! + c * h * w, count: h * w, n: 0, c: c, p0: 0,
                                                    scale: withScale ? scale[c] : 1)
                                    }
                                }
                                let e = try #require(bound.kernelEpilogue(n: 0, p0: 0, scale: withScale ? sb.baseAddress : nil))
                                var got = [Float](repeating: .nan, count: cout * h * w)
                                let band = UnsafeMutablePointer<Float>.allocate(capacity: plan.bandBytes / 4)
                                defer { band.deallocate() }
                                x.withUnsafeBufferPointer { xb in
                                    weight.withUnsafeBufferPointer { wb in
                                        got.withUnsafeMutableBufferPointer { yb in
                                            plan.run(g: g, x: xb.baseAddress!, weight: wb.baseAddress!, scale: nil,
                                                     y: yb.baseAddress!, r0: 0, rows: h, band: band, epilogue: e,
                                                     threads: ThreadPartition(threads: 2))
                                        }
                                    }
                                }
                                let same = zip(got, want).allSatisfy { $0.bitPattern == $1.bitPattern }
                                #expect(same, "\(path) \(activation) gain \(gain) addend \(String(describing: perChannel)) scale \(withScale) bias \(withBias)")
                            }
                        }
                    }
                }
            }
        }
    }
}

@Test func convsForcedDirectRunItAndMatchTheReference() throws {
    var rng = Rng(92)
    var b = GraphBuilder()
    // Batch 2, an output channel count that is not a multiple of 4, a width with a tail; large
    // enough (2 x 21 x 37 outputs) that the conv does not take the merged-batch GEMM.
    let x = b.input("x", rng.tensor([2, 5, 21, 37]))
    var y = b.node("Conv", [x, b.constant(rng.tensor([7, 5, 3, 3]), "w"), b.constant(rng.tensor([7]), "b")],
                   ["pads": .ints([1, 1, 1, 1]), "kernel_shape": .ints([3, 3])])
    y = b.node("Relu", [y])
    b.output(y)
    let s = try expectMatchesReference(b, conv: .direct, "direct conv + bias + relu")
    let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
    #expect(names.contains { $0.hasPrefix("conv(direct3x3") }, "\(names)")
    // auto takes the direct kernel too (see ConvAlgorithm); im2col takes im2col + sgemm.
    for (algorithm, kernel) in [(ConvAlgorithm.auto, "conv(direct3x3-\(Conv3x3Path.best))"), (.im2col, "conv(im2col)")] {
        let s = try expectMatchesReference(b, conv: algorithm, "conv + bias + relu, \(algorithm)")
        let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
        #expect(names.contains(kernel), "\(algorithm): \(names)")
    }
}

/// A modulated 3x3 conv (6 -> 5 channels, demodulated) + noise + bias + leaky relu on an
/// h x 20 input: StyleGAN2's layer, small.
func modulatedConvLayer(seed: UInt64, h: Int) -> GraphBuilder {
    var rng = Rng(seed)
    var b = GraphBuilder()
    let cin = 6, cout = 5, dim = 8
    let latents = b.input("latents", rng.tensor([1, dim]))
    let x = b.input("x", rng.tensor([1, cin, h, 20]))
    var y = modulatedConv(&b, &rng, x: x, latent: latents, cin: cin, cout: cout, k: 3, styleDim: dim,
                          demodulate: true, upsample: false)
    y = b.node("Add", [y, b.constant(rng.tensor([1, 1, h, 20]))])
    y = b.node("Add", [y, b.constant(rng.tensor([1, cout, 1, 1]))])
    y = b.node("LeakyRelu", [y], ["alpha": .float(0.2)])
    b.output(y)
    return b
}

@Test func modulatedConvForcedDirectRunsIt() throws {
    let b = modulatedConvLayer(seed: 93, h: 18)
    let s = try expectMatchesReference(b, conv: .direct, "modulated direct conv")
    let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
    #expect(names.contains { $0.hasPrefix("modconv(direct3x3") }, "\(names)")
}
