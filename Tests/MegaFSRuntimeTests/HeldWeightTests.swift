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

/// Dynamic int8: a conv packs its int8 weight when planned; the int8 weight, read only by its
/// DequantizeLinear (which then never runs), is given back, and later plans run on the pack.
@Test func packedInt8WeightIsGivenBackAndLaterPlansRunOnThePack() throws {
    var rng = Rng(5104)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([1, 13, 9, 9]))
    b.graph.inputs[0] = ValueInfo(name: x, type: TensorType(dtype: .float32, shape: nil))
    let q = b.constant(try (0..<(24 * 13 * 9)).map { _ in Int8(rng.int(-127...127)) }
        .withUnsafeBytes { try Tensor(dtype: .int8, shape: [24, 13, 3, 3], bytes: $0) }, "q")
    let scales = (0..<24).map { _ in rng.float() * 0.02 + 0.001 }
    let w = b.node("DequantizeLinear", [q, b.constant(Tensor(scales, shape: [24]), "scale")], ["axis": .int(0)])
    b.output(b.node("Conv", [x, w, b.constant(rng.tensor([24]), "b")], ["pads": .ints([1, 1, 1, 1]), "kernel_shape": .ints([3, 3])]))

    var dynamic = SessionOptions(threads: 2, int8Activations: true)
    let s = try InferenceSession(graph: b.graph, options: dynamic)
    dynamic.keepsOriginalWeights = true
    let kept = try InferenceSession(graph: b.graph, options: dynamic)
    for shape in [[1, 13, 9, 9], [2, 13, 5, 11], [1, 13, 20, 7]] {
        let feeds = ["x": rng.tensor(shape)]
        let got = try #require(try s.run(feeds).values.first), want = try #require(try kept.run(feeds).values.first)
        #expect(got.shape == want.shape && got.floats == want.floats, "\(shape): the held pack gives other values")
        #expect(kernelNames(s).contains { $0.hasSuffix("+int8") }, "\(shape): \(kernelNames(s))")
        #expect(s.graph.initializers[q]?.storage.isReleased == true, "\(shape): the int8 weight is still held")
        #expect(kept.graph.initializers[q]?.storage.isReleased == false)
        // And both stay close to the float32 reference (dynamic int8 activations).
        let reference = try #require(try referenceValues(b.graph, feeds)[b.graph.outputs[0].name])
        expectClose(got, reference, relative: 0.05, "\(shape) against the reference")
    }
}
