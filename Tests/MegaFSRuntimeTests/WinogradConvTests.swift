import Testing
import MegaFSGraph
@testable import MegaFSRuntime

// Winograd F(2x2, 3x3) (CKernels/winograd.c + WinogradConvPlan) against the reference
// evaluator: odd and even sizes (tiles hanging over the right and bottom edges), 1-pixel
// planes, batch 2, modulation with demodulation, and auto's choice of it by channel count.

@Test func winogradConvsMatchTheReference() throws {
    var rng = Rng(4242)
    // (cin, cout, h, w, batch), each with more than 32 outputs per sample and more than 1024
    // over the batch, so that the conv does not take the merged-batch GEMM.
    for (cin, cout, h, w, n) in [(5, 7, 9, 11, 1), (6, 6, 23, 24, 2), (4, 3, 1, 40, 1), (3, 5, 33, 1, 1), (8, 4, 13, 6, 1),
                                 (2, 3, 3, 515, 1)] {  // 258 tiles a row: two chunks of the input transform
        var b = GraphBuilder()
        let x = b.input("x", rng.tensor([n, cin, h, w]))
        var y = b.node("Conv", [x, b.constant(rng.tensor([cout, cin, 3, 3]), "w"), b.constant(rng.tensor([cout]), "b")],
                       ["pads": .ints([1, 1, 1, 1]), "kernel_shape": .ints([3, 3])])
        y = b.node("Relu", [y])
        b.output(y)
        let what = "\(cin)->\(cout) \(h)x\(w) batch \(n)"
        let s = try expectMatchesReference(b, conv: .winograd, what)
        let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
        #expect(names.contains("conv(winograd-f2)"), "\(what): \(names)")
    }
}

@Test func modulatedConvForcedWinogradRunsIt() throws {
    let b = modulatedConvLayer(seed: 4243, h: 17)
    let s = try expectMatchesReference(b, conv: .winograd, "modulated Winograd conv")
    let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
    #expect(names.contains("modconv(winograd-f2)"), "\(names)")
}

@Test func autoTakesWinogradForWideConvsOnly() throws {
    var rng = Rng(4244)
    let wide = WinogradConvPlan.autoMinChannels
    let direct = "conv(direct3x3-\(Conv3x3Path.best))"
    // The smallest square output Winograd takes (16x16 on AVX2, 32x32 where the AVX-512
    // direct kernel runs).
    let side = Int(Double(WinogradConvPlan.autoMinPixels).squareRoot())
    // (cin, cout, side, kernel auto takes): wide enough; too few output channels; too few
    // pixels for Winograd (the direct kernel, or im2col when too narrow for it too).
    var cases = [(wide, wide, side, "conv(winograd-f2)"), (wide, wide / 2, side, direct), (wide, wide, 8, "conv(im2col)")]
    if side / 2 >= DirectConvPlan.autoMinWidth { cases.append((wide, wide, side / 2, direct)) }
    for (cin, cout, side, expected) in cases {
        var b = GraphBuilder()
        let x = b.input("x", rng.tensor([1, cin, side, side]))
        b.output(b.node("Conv", [x, b.constant(rng.tensor([cout, cin, 3, 3], -0.05, 0.05), "w")],
                        ["pads": .ints([1, 1, 1, 1])]))
        let s = try expectMatchesReference(b, conv: .auto, "\(cin)->\(cout) at \(side)x\(side), auto")
        let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
        #expect(names.contains(expected), "\(cin)->\(cout) at \(side)x\(side): \(names)")
    }
}
