import Testing
@testable import MegaFSGraph
@testable import MegaFSRuntime

// A session gives back a float32 weight whose only reader runs Winograd on a U made at
// planning, and runs later plans on that U.

/// One 3x3 conv with a constant weight (and bias) on an input of any shape.
private func winogradConv(_ rng: inout Rng, cin: Int, cout: Int, side: Int, sharedBy convs: Int = 1) -> GraphBuilder {
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([1, cin, side, side]))
    b.graph.inputs[0] = ValueInfo(name: x, type: TensorType(dtype: .float32, shape: nil))
    let w = b.constant(rng.tensor([cout, cin, 3, 3], -0.05, 0.05), "w")
    let bias = b.constant(rng.tensor([cout]), "b")
    for _ in 0..<convs {
        b.output(b.node("Conv", [x, w, bias], ["pads": .ints([1, 1, 1, 1]), "kernel_shape": .ints([3, 3])]))
    }
    return b
}

private func kernelNames(_ s: InferenceSession) -> [String] { (s.lastPlanSummary?.kernels ?? []).map(\.name) }

private func expectOutputsMatchReference(_ s: InferenceSession, _ b: GraphBuilder, _ feeds: [String: Tensor], _ what: String,
                                         sourceLocation: SourceLocation = #_sourceLocation) throws {
    let got = try s.run(feeds)
    let want = try referenceValues(b.graph, feeds)
    for o in b.graph.outputs {
        expectClose(try #require(got[o.name]), try #require(want[o.name]), "\(what) [\(o.name)]", sourceLocation: sourceLocation)
    }
}

@Test func winogradWeightIsGivenBackAndLaterPlansRunOnItsTransform() throws {
    var rng = Rng(5101)
    let side = Int(Double(WinogradConvPlan.autoMinPixelsConstantWeight).squareRoot())
    let wide = WinogradConvPlan.autoMinChannels
    let b = winogradConv(&rng, cin: wide, cout: wide, side: side)
    let weightName = b.graph.nodes[0].inputs[1]
    let s = try InferenceSession(graph: b.graph, options: SessionOptions(threads: 2))
    try expectOutputsMatchReference(s, b, b.feeds, "first shape")
    #expect(kernelNames(s).contains("conv(winograd-f2)"))
    let held = try #require(s.graph.initializers[weightName])
    #expect(held.storage.isReleased, "the session still holds the weight it transformed")
    #expect(held.shape == [wide, wide, 3, 3])
    // The bias (read by the same conv, not transformed) stays.
    #expect(s.graph.initializers[b.graph.nodes[0].inputs[2]]?.storage.isReleased == false)
    // The caller's graph is untouched.
    #expect(b.graph.initializers[weightName]?.storage.isReleased == false)

    // A shape auto would give another kernel (too few pixels for Winograd) runs Winograd on the
    // held U, with its tile.
    for (h, w) in [(3, 5), (side + 3, side - 1)] {
        let feeds = ["x": rng.tensor([1, wide, h, w])]
        try expectOutputsMatchReference(s, b, feeds, "\(h)x\(w) after the weight was given back")
        #expect(kernelNames(s) == ["conv(winograd-f2)"])
    }
}

@Test func aWeightWithOtherReadersOrAskedToBeKeptStays() throws {
    var rng = Rng(5102)
    let side = Int(Double(WinogradConvPlan.autoMinPixelsConstantWeight).squareRoot())
    let wide = WinogradConvPlan.autoMinChannels
    // Two convs read one weight: each makes its own U, so neither may give the weight back.
    let shared = winogradConv(&rng, cin: wide, cout: wide, side: side, sharedBy: 2)
    let s1 = try InferenceSession(graph: shared.graph, options: SessionOptions(threads: 2))
    try expectOutputsMatchReference(s1, shared, shared.feeds, "shared weight")
    #expect(s1.graph.initializers[shared.graph.nodes[0].inputs[1]]?.storage.isReleased == false)

    let b = winogradConv(&rng, cin: wide, cout: wide, side: side)
    var options = SessionOptions(threads: 2)
    options.keepsOriginalWeights = true
    let s2 = try InferenceSession(graph: b.graph, options: options)
    try expectOutputsMatchReference(s2, b, b.feeds, "weight kept as asked")
    #expect(kernelNames(s2).contains("conv(winograd-f2)"))
    #expect(s2.graph.initializers[b.graph.nodes[0].inputs[1]]?.storage.isReleased == false)
    // Without the held U a small input takes another kernel again.
    try expectOutputsMatchReference(s2, b, ["x": rng.tensor([1, wide, 3, 5])], "small input, weight kept")
    #expect(!kernelNames(s2).contains("conv(winograd-f2)"))
}

/// The generator's modulated convs: their weight is a view of the 5-D modulated weight, and
/// the demodulation's weight squares are held with U.
@Test func modulatedWinogradWeightIsGivenBackAndRunsAgain() throws {
    for (algorithm, tile) in [(ConvAlgorithm.winograd, 2), (.winogradF4, 4)] {
        var rng = Rng(5103)
        var b = GraphBuilder()
        let cin = 6, cout = 5, dim = 8
        let latents = b.input("latents", rng.tensor([1, dim]))
        let x = b.input("x", rng.tensor([1, cin, 9, 12]))
        b.graph.inputs[1] = ValueInfo(name: x, type: TensorType(dtype: .float32, shape: nil))
        b.output(modulatedConv(&b, &rng, x: x, latent: latents, cin: cin, cout: cout, k: 3, styleDim: dim,
                               demodulate: true, upsample: false))
        let s = try InferenceSession(graph: b.graph, options: SessionOptions(threads: 2, convAlgorithm: algorithm))
        try expectOutputsMatchReference(s, b, b.feeds, "modulated, \(algorithm)")
        #expect(kernelNames(s).contains("modconv(winograd-f\(tile))"))
        let released = s.graph.initializers.filter { $0.value.storage.isReleased }
        #expect(released.count == 1 && released.first?.value.rank == 5, "\(released.map { ($0.key, $0.value.shape) })")
        // Another shape: planned again from the held U and weight squares.
        var feeds = b.feeds
        feeds["x"] = rng.tensor([1, cin, 14, 7])
        try expectOutputsMatchReference(s, b, feeds, "modulated, \(algorithm), another shape")
        #expect(kernelNames(s).contains("modconv(winograd-f\(tile))"))
    }
}
