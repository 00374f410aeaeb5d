import Testing
import MegaFSGraph
@testable import MegaFSRuntime

// Winograd F(2x2, 3x3) and F(4x4, 3x3) (CKernels/winograd.c + WinogradConvPlan) against the
// reference evaluator: odd and even sizes (tiles hanging over the right and bottom edges),
// 1-pixel planes, batch 2, several bands, modulation with demodulation, and auto's choice of
// it by channel count.

@Test func winogradConvsMatchTheReference() throws {
    var rng = Rng(4242)
    // (cin, cout, h, w, batch), each with more than 32 outputs per sample and more than 1024
    // over the batch, so that the conv does not take the merged-batch GEMM.
    for (algorithm, tile) in [(ConvAlgorithm.winograd, 2), (.winogradF4, 4)] {
        for (cin, cout, h, w, n) in [(5, 7, 9, 11, 1), (6, 6, 23, 24, 2), (4, 3, 1, 40, 1), (3, 5, 33, 1, 1), (8, 4, 13, 6, 1),
                                     (3, 2, 14, 18, 1),   // rows and columns 2 past a multiple of 4
                                     (9, 19, 17, 21, 1),  // two 8-row blocks of the product and a tail
                                     (2, 3, 3, 1030, 1),  // 258 (515) tiles a row: two chunks of the input transform
                                     (131, 3, 9, 7, 1)] {  // the weight transform's 128-channel runs and a short one
            var b = GraphBuilder()
            let x = b.input("x", rng.tensor([n, cin, h, w]))
            var y = b.node("Conv", [x, b.constant(rng.tensor([cout, cin, 3, 3]), "w"), b.constant(rng.tensor([cout]), "b")],
                           ["pads": .ints([1, 1, 1, 1]), "kernel_shape": .ints([3, 3])])
            y = b.node("Relu", [y])
            b.output(y)
            let what = "\(algorithm): \(cin)->\(cout) \(h)x\(w) batch \(n)"
            let s = try expectMatchesReference(b, conv: algorithm, what)
            let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
            #expect(names.contains("conv(winograd-f\(tile))"), "\(what): \(names)")
        }
    }
}

/// Bands of tile rows: a band budget of a few rows' worth splits the output into several
/// bands (the last one shorter), over its input (the halo row) and not.
@Test func winogradBandsMatchOneBand() throws {
    var rng = Rng(4245)
    var g = ConvGeometry()
    g.n = 1; g.cin = 3; g.h = 23; g.w = 19; g.cout = 4; g.kh = 3; g.kw = 3; g.oh = 23; g.ow = 19
    g.padTop = 1; g.padLeft = 1; g.padBottom = 1; g.padRight = 1
    let x = (0..<(g.cin * g.h * g.w)).map { _ in rng.float() }
    let weight = (0..<(g.cout * g.cin * 9)).map { _ in rng.float() }
    for algorithm in [ConvAlgorithm.winograd, .winogradF4] {
        let whole = try #require(WinogradConvPlan(g, algorithm: algorithm, bandBudgetBytes: 1 << 30))
        let banded = try #require(WinogradConvPlan(g, algorithm: algorithm, bandBudgetBytes: 1))
        #expect(whole.rows >= g.oh && banded.rows == banded.tile, "\(algorithm)")
        var outputs: [[Float]] = []
        for plan in [whole, banded] {
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: plan.scratchBytes / 4)
            defer { scratch.deallocate() }
            var y = [Float](repeating: .nan, count: g.cout * g.oh * g.ow)
            x.withUnsafeBufferPointer { xb in
                weight.withUnsafeBufferPointer { wb in
                    y.withUnsafeMutableBufferPointer { yb in
                        plan.transformWeights(wb.baseAddress!, scratch: scratch, threads: ThreadPartition(threads: 2))
                        var r0 = 0
                        while r0 < g.oh {
                            let rows = min(plan.rows, g.oh - r0)
                            plan.run(g: g, x: xb.baseAddress!, scale: nil, y: yb.baseAddress!, r0: r0, rows: rows, scratch: scratch,
                                     overInput: false, threads: ThreadPartition(threads: 2))
                            r0 += rows
                        }
                    }
                }
            }
            #expect(!y.contains { $0.isNaN }, "\(algorithm): every output written")
            outputs.append(y)
        }
        #expect(zip(outputs[0], outputs[1]).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(algorithm): bands change nothing")
    }
}

/// The products' code paths (AVX-512, AVX2, scalar) give the same bits, with output channels
/// around the 8-row blocks of the AVX-512 tile and tile counts around its 32 columns.
@Test func winogradProductPathsGiveTheSameBits() throws {
    var rng = Rng(4246)
    let paths = Conv3x3Path.allCases.filter(\.isAvailable)
    for (cin, cout, side) in [(9, 17, 30), (3, 8, 9), (70, 24, 16)] {
        var g = ConvGeometry()
        g.n = 1; g.cin = cin; g.h = side; g.w = side; g.cout = cout; g.kh = 3; g.kw = 3; g.oh = side; g.ow = side
        g.padTop = 1; g.padLeft = 1; g.padBottom = 1; g.padRight = 1
        let x = (0..<(cin * side * side)).map { _ in rng.float() }
        let weight = (0..<(cout * cin * 9)).map { _ in rng.float() }
        for algorithm in [ConvAlgorithm.winograd, .winogradF4] {
            var outputs: [[Float]] = []
            for path in paths {
                let plan = try #require(WinogradConvPlan(g, algorithm: algorithm, path: path))
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: plan.scratchBytes / 4)
                defer { scratch.deallocate() }
                var y = [Float](repeating: .nan, count: cout * side * side)
                x.withUnsafeBufferPointer { xb in
                    weight.withUnsafeBufferPointer { wb in
                        y.withUnsafeMutableBufferPointer { yb in
                            plan.transformWeights(wb.baseAddress!, scratch: scratch, threads: ThreadPartition(threads: 2))
                            plan.run(g: g, x: xb.baseAddress!, scale: nil, y: yb.baseAddress!, r0: 0, rows: side, scratch: scratch,
                                     overInput: false, threads: ThreadPartition(threads: 2))
                        }
                    }
                }
                #expect(!y.contains { $0.isNaN }, "\(algorithm) \(path): every output written")
                outputs.append(y)
            }
            for (i, y) in outputs.enumerated().dropFirst() {
                #expect(zip(y, outputs[0]).allSatisfy { $0.bitPattern == $1.bitPattern },
                        "\(algorithm) \(cin)->\(cout) \(side)px: \(paths[i]) differs from \(paths[0])")
            }
        }
    }
}

/// F(4x4, 3x3) from `WinogradConvPlan.f4MinPixels` output pixels up, and from
/// `f4WideMinPixels` for wide convs (then with U made on every call); F(2x2, 3x3) below.
@Test func winogradTileFollowsTheOutputSize() throws {
    let wide = WinogradConvPlan.f4WideMinChannels, wideSide = Int(Double(WinogradConvPlan.f4WideMinPixels).squareRoot())
    for (side, channels, tile) in [(128, 128, 4), (127, 128, 2), (64, 128, 2), (512, 128, 4),
                                   (wideSide, wide, 4), (wideSide - 1, wide, 2), (wideSide, wide / 2, 2), (128, wide, 4)] {
        var g = ConvGeometry()
        g.n = 1; g.cin = channels; g.cout = channels; g.h = side; g.w = side; g.oh = side; g.ow = side; g.kh = 3; g.kw = 3
        g.padTop = 1; g.padLeft = 1; g.padBottom = 1; g.padRight = 1
        let what = "\(side)x\(side) x \(channels)"
        let held = WinogradConvPlan(g, algorithm: .winograd, weightsInScratch: false)
        #expect(held?.tile == tile, "\(what)")
        // A constant weight's U is held, except for the wide F4 below f4MinPixels.
        let everyCall = tile == 4 && side * side < WinogradConvPlan.f4MinPixels
        #expect(held?.transformsWeightsEveryCall == everyCall, "\(what)")
        #expect((held?.weightBytes ?? -1 > 0) == everyCall, "\(what)")
        #expect(WinogradConvPlan(g, algorithm: .winograd)?.transformsWeightsEveryCall == true, "\(what)")
        let forced = WinogradConvPlan(g, algorithm: .winogradF4, weightsInScratch: false)
        #expect(forced?.tile == 4 && forced?.transformsWeightsEveryCall == false, "\(what), forced F4")
    }
}

/// A wide conv at 64x64 with a constant weight: F4 with U made on every call, the weight kept
/// by the session (not given back), the same values on a second call and against the reference.
@Test func wideF4BelowItsBoundTransformsTheWeightOnEveryCall() throws {
    var rng = Rng(4247)
    let c = WinogradConvPlan.f4WideMinChannels, side = Int(Double(WinogradConvPlan.f4WideMinPixels).squareRoot())
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([1, c, side, side]))
    let w = b.constant(rng.tensor([c, c, 3, 3], -0.05, 0.05), "w")
    b.output(b.node("Conv", [x, w, b.constant(rng.tensor([c]), "b")], ["pads": .ints([1, 1, 1, 1]), "kernel_shape": .ints([3, 3])]))
    let s = try expectMatchesReference(b, conv: .auto, "wide conv at \(side)x\(side)")
    let convs = s.lastPlanSteps.compactMap { $0.kernel as? ConvKernel }
    #expect(convs.count == 1 && convs.allSatisfy { $0.winograd?.tile == 4 && $0.winogradWeights == nil })
    #expect(s.graph.initializers[b.graph.nodes[0].inputs[1]]?.storage.isReleased == false)
    let name = b.graph.outputs[0].name
    let first = try #require(try s.run(b.feeds)[name]).floats, second = try #require(try s.run(b.feeds)[name]).floats
    let diff = zip(first, second).map { abs($0 - $1) }.max() ?? 0
    #expect(first == second, "\(diff)")
}

@Test func modulatedConvForcedWinogradRunsIt() throws {
    for (algorithm, tile) in [(ConvAlgorithm.winograd, 2), (.winogradF4, 4)] {
        let b = modulatedConvLayer(seed: 4243, h: 17)
        let s = try expectMatchesReference(b, conv: algorithm, "modulated Winograd conv, \(algorithm)")
        let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
        #expect(names.contains("modconv(winograd-f\(tile))"), "\(names)")
    }
}

@Test func autoTakesWinogradForWideConvsOnly() throws {
    var rng = Rng(4244)
    let wide = WinogradConvPlan.autoMinChannels
    let direct = "conv(direct3x3-\(Conv3x3Path.best))"
    // Not Winograd: the direct kernel, or a GEMM path ("" matches any) when too narrow for it.
    func narrowKernel(_ side: Int) -> String { side >= DirectConvPlan.autoMinWidth ? direct : "" }
    // The smallest square output Winograd takes: a weight fed at run time is transformed on
    // every call (16x16 on AVX2, 32x32 where the AVX-512 direct kernel runs); a constant one
    // once (8x8 with AVX-512), which also lifts the channel-product bound.
    for constant in [true, false] {
        let side = Int(Double(constant ? WinogradConvPlan.autoMinPixelsConstantWeight : WinogradConvPlan.autoMinPixels).squareRoot())
        // (cin, cout, side, kernel auto takes): wide enough; too few output channels; too few
        // pixels for Winograd.
        var cases = [(wide, wide, side, "conv(winograd-f2)"), (wide, wide / 2, side, narrowKernel(side)),
                     (wide, wide, side / 2, narrowKernel(side / 2))]
        // Past the channel product a per-call transform's scratch would set the arena (at the
        // constant weight's smallest side, so that the reference stays quick).
        let small = Int(Double(WinogradConvPlan.autoMinPixelsConstantWeight).squareRoot())
        cases.append((1024, WinogradConvPlan.autoMaxChannelProduct / 1024 + 16, small,
                      constant ? "conv(winograd-f2)" : narrowKernel(small)))
        for (cin, cout, side, expected) in cases {
            var b = GraphBuilder()
            let x = b.input("x", rng.tensor([1, cin, side, side]))
            let wt = rng.tensor([cout, cin, 3, 3], -0.05, 0.05)
            let w = constant ? b.constant(wt, "w") : b.input("w", wt)
            b.output(b.node("Conv", [x, w], ["pads": .ints([1, 1, 1, 1]), "kernel_shape": .ints([3, 3])]))
            let what = "\(cin)->\(cout) at \(side)x\(side), constant weight \(constant)"
            let s = try expectMatchesReference(b, conv: .auto, "\(what), auto")
            let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
            #expect(expected.isEmpty ? !names.contains { $0.contains("winograd") } : names.contains(expected), "\(what): \(names)")
        }
    }
}

/// A constant weight is transformed once, when the plan is built; a weight fed at run time is
/// transformed on every call. Both match the reference.
@Test func winogradTransformsAConstantWeightOnce() throws {
    var rng = Rng(4246)
    for constant in [true, false] {
        var b = GraphBuilder()
        let x = b.input("x", rng.tensor([1, 6, 13, 17]))
        let w = constant ? b.constant(rng.tensor([5, 6, 3, 3]), "w") : b.input("w", rng.tensor([5, 6, 3, 3]))
        b.output(b.node("Conv", [x, w], ["pads": .ints([1, 1, 1, 1]), "kernel_shape": .ints([3, 3])]))
        let s = try expectMatchesReference(b, conv: .winograd, "Winograd, constant weight \(constant)")
        let convs = s.lastPlanSteps.compactMap { $0.kernel as? ConvKernel }
        #expect(convs.count == 1 && convs.allSatisfy { $0.winograd != nil })
        #expect(convs.allSatisfy { ($0.winogradWeights != nil) == constant }, "constant \(constant)")
        // The transformed weight is not in the scratch when it is held.
        #expect(convs.allSatisfy { ($0.winograd!.weightBytes == 0) == constant })
    }
}
