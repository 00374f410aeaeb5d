import Testing
@testable import MegaFSGraph

/// Seeded pseudo-random floats (xorshift), so tests are reproducible.
struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E3779B97F4A7C15 | 1 }
    mutating func next() -> Float {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Float(state >> 40) / Float(1 << 24) * 2 - 1
    }
    mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in next() * scale } }
}

private func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
    zip(a.floats, b.floats).map { abs($0 - $1) }.max() ?? 0
}

@Suite struct PassesTests {
    /// x (1,4,2,2) -> Shape -> Gather(0) -> Unsqueeze -> Concat with [-1] -> Reshape(x, shape)
    func reshapeChainGraph(batch: Dim) -> Graph {
        Graph(
            name: "chain",
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .float32, shape: [batch, .fixed(4), .fixed(2), .fixed(2)]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .float32, shape: nil))],
            initializers: [
                "zero": Tensor(scalar: Int64(0)),
                "axes": Tensor([Int64(0)], shape: [1]),
                "minus_one": Tensor([Int64(-1)], shape: [1]),
            ],
            nodes: [
                Node(name: "shape", opType: "Shape", inputs: ["x"], outputs: ["s"]),
                Node(name: "gather", opType: "Gather", inputs: ["s", "zero"], outputs: ["n"], attributes: ["axis": .int(0)]),
                Node(name: "unsqueeze", opType: "Unsqueeze", inputs: ["n", "axes"], outputs: ["n1"]),
                Node(name: "concat", opType: "Concat", inputs: ["n1", "minus_one"], outputs: ["target"], attributes: ["axis": .int(0)]),
                Node(name: "reshape", opType: "Reshape", inputs: ["x", "target"], outputs: ["y"]),
            ])
    }

    @Test func shapeArithmeticFoldsAway() throws {
        var graph = reshapeChainGraph(batch: .fixed(1))
        try PassPipeline.converter.run(&graph)
        #expect(graph.nodes.map(\.opType) == ["Reshape"])
        let target = try #require(graph.initializers[graph.nodes[0].inputs[1]])
        #expect(target.int64s == [1, -1])
        #expect(graph.outputs[0].type.concreteShape == [1, 16])
        // Only the folded shape survives: the helper constants are dead.
        #expect(graph.initializers.count == 1)
    }

    @Test func symbolicBatchKeepsShapeComputation() throws {
        var graph = reshapeChainGraph(batch: .symbolic("N"))
        try PassPipeline.converter.run(&graph)
        #expect(graph.nodes.map(\.opType) == ["Shape", "Gather", "Unsqueeze", "Concat", "Reshape"])
        // The folded graph still computes the same thing.
        var rng = SeededRandom(seed: 1)
        let x = Tensor(rng.floats(2 * 16), shape: [2, 4, 2, 2])
        let y = try #require(try ReferenceEvaluator.run(graph, inputs: ["x": x])["y"])
        #expect(y.shape == [2, 16])
    }

    @Test func batchNormFoldsIntoConvAndKeepsTheMath() throws {
        var rng = SeededRandom(seed: 7)
        let cIn = 3, cOut = 5
        let original = Graph(
            name: "conv-bn",
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [1, cIn, 6, 6]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .float32, shape: nil))],
            initializers: [
                "w": Tensor(rng.floats(cOut * cIn * 9, scale: 0.5), shape: [cOut, cIn, 3, 3]),
                "b": Tensor(rng.floats(cOut), shape: [cOut]),
                "gamma": Tensor(rng.floats(cOut).map { 1 + 0.5 * $0 }, shape: [cOut]),
                "beta": Tensor(rng.floats(cOut), shape: [cOut]),
                "mean": Tensor(rng.floats(cOut), shape: [cOut]),
                "var": Tensor(rng.floats(cOut).map { 1.2 + $0 }, shape: [cOut]),
            ],
            nodes: [
                Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["c"],
                     attributes: ["pads": .ints([1, 1, 1, 1])]),
                Node(name: "bn", opType: "BatchNormalization", inputs: ["c", "gamma", "beta", "mean", "var"],
                     outputs: ["bn"], attributes: ["epsilon": .float(1e-5)]),
                Node(name: "relu", opType: "Relu", inputs: ["bn"], outputs: ["y"]),
            ])
        var folded = original
        let report = try PassPipeline.converter.run(&folded)
        #expect(folded.nodes.map(\.opType) == ["Conv", "Relu"])
        #expect(report.first { $0.0 == "batchnorm-folding" }?.1 == 1)
        #expect(folded.initializers["gamma"] == nil, "BN statistics should be dead after folding")
        let x = Tensor(rng.floats(cIn * 36), shape: [1, cIn, 6, 6])
        let expected = try #require(try ReferenceEvaluator.run(original, inputs: ["x": x])["y"])
        let actual = try #require(try ReferenceEvaluator.run(folded, inputs: ["x": x])["y"])
        #expect(actual.shape == [1, cOut, 6, 6])
        #expect(maxAbsDifference(expected, actual) < 1e-5)
    }

    /// One Conv (weights w, bias b) on x of `size`, with `attributes`.
    func convGraph(cin: Int, cout: Int, kernel: Int, size: (Int, Int), batch: Dim = .fixed(2),
                   attributes: [String: Attribute], seed: UInt64) -> Graph {
        var rng = SeededRandom(seed: seed)
        return Graph(
            name: "conv",
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .float32, shape: [batch, .fixed(cin), .fixed(size.0), .fixed(size.1)]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .float32, shape: nil))],
            initializers: [
                "w": Tensor(rng.floats(cout * cin * kernel * kernel), shape: [cout, cin, kernel, kernel]),
                "b": Tensor(rng.floats(cout), shape: [cout]),
            ],
            nodes: [Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"], attributes: attributes)])
    }

    @Test(arguments: [
        // The encoder's last mapping convs: 3x3 stride 2 pad 1 on 2x2 -> 1x1 keeps the bottom-right 2x2.
        (3, (2, 2), ["strides": Attribute.ints([2, 2]), "pads": .ints([1, 1, 1, 1])], [2, 2], [0, 0, 1, 1]),
        // One input row: only the middle kernel row meets it.
        (3, (1, 5), ["pads": .ints([1, 1, 1, 1])], [1, 3], [0, 1, 0, 1]),
        // Dilation 2 on 2x2 with pad 2: only the centre tap reads pixels.
        (3, (2, 2), ["dilations": .ints([2, 2]), "pads": .ints([2, 2, 2, 2])], [1, 1], [0, 0, 0, 0]),
        // Uneven pads, 5x5 on 3x3 input, stride 3 -> 1x1: taps 1..3 of 5 in rows, 2..4 in columns.
        (5, (3, 3), ["strides": .ints([3, 3]), "pads": .ints([1, 2, 3, 0])], [3, 3], [0, 0, 2, 0]),
    ] as [(Int, (Int, Int), [String: Attribute], [Int], [Int])])
    func convTapsThatOnlyMeetPaddingAreCropped(kernel: Int, size: (Int, Int), attributes: [String: Attribute],
                                                 croppedKernel: [Int], croppedPads: [Int]) throws {
        let original = convGraph(cin: 3, cout: 4, kernel: kernel, size: size, attributes: attributes, seed: 11)
        var graph = original
        let report = try PassPipeline.converter.run(&graph)
        #expect(report.first { $0.0 == "conv-tap-cropping" }?.1 == 1)
        let conv = try #require(graph.nodes.first)
        let weight = try #require(graph.initializers[conv.inputs[1]])
        #expect(Array(weight.shape[2...]) == croppedKernel)
        #expect(conv.attributes["pads"]?.isIdentical(to: .ints(croppedPads)) == true)
        #expect(graph.initializers["w"] == nil, "the uncropped weight should be gone")
        var rng = SeededRandom(seed: 5)
        let x = Tensor(rng.floats(2 * 3 * size.0 * size.1), shape: [2, 3, size.0, size.1])
        let expected = try #require(try ReferenceEvaluator.run(original, inputs: ["x": x])["y"])
        let actual = try #require(try ReferenceEvaluator.run(graph, inputs: ["x": x])["y"])
        #expect(actual.shape == expected.shape)
        #expect(maxAbsDifference(expected, actual) < 1e-5)
    }

    @Test func convsWhoseTapsAllReadPixelsOrWhoseSizeIsUnknownAreKept() throws {
        // 3x3 pad 1 on 4x4: every tap reads some pixel.
        var full = convGraph(cin: 2, cout: 2, kernel: 3, size: (4, 4), attributes: ["pads": .ints([1, 1, 1, 1])], seed: 3)
        #expect(try PassPipeline.converter.run(&full).first { $0.0 == "conv-tap-cropping" }?.1 == 0)
        #expect(full.initializers["w"]?.shape == [2, 2, 3, 3])
        // A weight shared with a second conv on a larger input stays for that one.
        var shared = convGraph(cin: 2, cout: 2, kernel: 3, size: (2, 2),
                               attributes: ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])], seed: 4)
        shared.inputs.append(ValueInfo(name: "x2", type: TensorType(dtype: .float32, dims: [1, 2, 6, 6])))
        shared.outputs.append(ValueInfo(name: "y2", type: TensorType(dtype: .float32, shape: nil)))
        shared.nodes.append(Node(name: "conv2", opType: "Conv", inputs: ["x2", "w", "b"], outputs: ["y2"],
                                 attributes: ["pads": .ints([1, 1, 1, 1])]))
        #expect(try PassPipeline.converter.run(&shared).first { $0.0 == "conv-tap-cropping" }?.1 == 1)
        #expect(shared.initializers["w"]?.shape == [2, 2, 3, 3])
        #expect(shared.nodes[1].inputs[1] == "w")
        // auto_pad SAME is left alone (its pads depend on the sizes).
        var same = convGraph(cin: 1, cout: 1, kernel: 3, size: (1, 1), attributes: ["auto_pad": .string("SAME_UPPER")], seed: 6)
        #expect(try PassPipeline.converter.run(&same).first { $0.0 == "conv-tap-cropping" }?.1 == 0)
        // A symbolic height: the taps a row meets are unknown.
        var symbolic = convGraph(cin: 2, cout: 2, kernel: 3, size: (2, 2),
                                 attributes: ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])], seed: 8)
        symbolic.inputs[0].type = TensorType(dtype: .float32, shape: [.fixed(1), .fixed(2), .symbolic("H"), .fixed(2)])
        #expect(try PassPipeline.converter.run(&symbolic).first { $0.0 == "conv-tap-cropping" }?.1 == 0)
    }

    @Test func batchNormWithSharedConvOutputIsLeftAlone() throws {
        var graph = Graph(
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [1, 1, 3, 3]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .float32, shape: nil)),
                      ValueInfo(name: "c", type: TensorType(dtype: .float32, shape: nil))],
            initializers: ["w": Tensor([Float(1)], shape: [1, 1, 1, 1]), "s": Tensor([Float(2)], shape: [1]),
                           "z": Tensor([Float(0)], shape: [1]), "o": Tensor([Float(1)], shape: [1])],
            nodes: [
                Node(opType: "Conv", inputs: ["x", "w"], outputs: ["c"]),
                Node(opType: "BatchNormalization", inputs: ["c", "s", "z", "z", "o"], outputs: ["y"]),
            ])
        try PassPipeline.converter.run(&graph)
        #expect(graph.nodes.map(\.opType) == ["Conv", "BatchNormalization"])
    }

    @Test func deadNodesAndIdentitiesGo() throws {
        var graph = Graph(
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [2, 3]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .float32, shape: nil))],
            initializers: ["unused": Tensor([Float](arrayLiteral: 1, 2, 3), shape: [3])],
            nodes: [
                Node(opType: "Identity", inputs: ["x"], outputs: ["x1"]),
                Node(opType: "Relu", inputs: ["x1"], outputs: ["y"]),
                Node(opType: "Sigmoid", inputs: ["x"], outputs: ["dead"]),
                Node(opType: "Add", inputs: ["dead", "unused"], outputs: ["dead2"]),
            ])
        try PassPipeline.converter.run(&graph)
        #expect(graph.nodes.map(\.opType) == ["Relu"])
        #expect(graph.nodes[0].inputs == ["x"])
        #expect(graph.initializers.isEmpty)
        #expect(graph.outputs[0].type.concreteShape == [2, 3])
    }

    @Test func foldingDoesNotBloatTheModel() throws {
        var graph = Graph(
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [1, 1024, 1024]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .float32, shape: nil))],
            initializers: ["shape": Tensor([Int64(1), 1024, 1024], shape: [3])],
            nodes: [
                Node(opType: "ConstantOfShape", inputs: ["shape"], outputs: ["zeros"],
                     attributes: ["value": .tensor(Tensor([Float(0.5)], shape: [1]))]),
                Node(opType: "Add", inputs: ["x", "zeros"], outputs: ["y"]),
            ])
        try PassPipeline.converter.run(&graph)
        #expect(graph.nodes.map(\.opType) == ["ConstantOfShape", "Add"])
        #expect(graph.parameterBytes < 1024)
    }

    @Test func constantNodesBecomeInitializers() throws {
        var graph = Graph(
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [4]))],
            outputs: [ValueInfo(name: "y", type: TensorType(dtype: .float32, shape: nil))],
            nodes: [
                Node(opType: "Constant", inputs: [], outputs: ["c"], attributes: ["value": .tensor(Tensor([Float](repeating: 2, count: 4), shape: [4]))]),
                Node(opType: "Mul", inputs: ["x", "c"], outputs: ["y"]),
            ])
        try PassPipeline.converter.run(&graph)
        #expect(graph.nodes.map(\.opType) == ["Mul"])
        #expect(graph.initializers["c"]?.floats == [2, 2, 2, 2])
    }

    @Test func unsupportedOperatorsAreListedWithCounts() throws {
        var graph = Graph(
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [4]))],
            outputs: [ValueInfo(name: "z", type: TensorType(dtype: .float32, shape: nil))],
            nodes: [
                Node(opType: "FancyOp", inputs: ["x"], outputs: ["a"]),
                Node(opType: "FancyOp", inputs: ["a"], outputs: ["b"]),
                Node(opType: "OtherOp", inputs: ["b"], outputs: ["z"]),
            ])
        #expect(throws: GraphError.unsupportedOperator("FancyOp (2), OtherOp (1)")) {
            try ShapeInference().run(&graph)
        }
    }

    @Test func cyclesAndMissingValuesAreRejected() throws {
        var cyclic = Graph(
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [1]))],
            outputs: [ValueInfo(name: "b", type: TensorType(dtype: .float32, shape: nil))],
            nodes: [
                Node(name: "first", opType: "Add", inputs: ["x", "b"], outputs: ["a"]),
                Node(name: "second", opType: "Relu", inputs: ["a"], outputs: ["b"]),
            ])
        #expect(throws: GraphError.self) { try cyclic.sortTopologically() }
        var missing = Graph(
            outputs: [ValueInfo(name: "a", type: TensorType(dtype: .float32, shape: nil))],
            nodes: [Node(name: "lonely", opType: "Relu", inputs: ["nowhere"], outputs: ["a"])])
        do {
            try missing.sortTopologically()
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("nowhere"))
        }
    }

    @Test func topologicalSortOrdersNodes() throws {
        var graph = Graph(
            inputs: [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [1]))],
            outputs: [ValueInfo(name: "b", type: TensorType(dtype: .float32, shape: nil))],
            nodes: [
                Node(name: "second", opType: "Relu", inputs: ["a"], outputs: ["b"]),
                Node(name: "first", opType: "Neg", inputs: ["x"], outputs: ["a"]),
            ])
        try graph.sortTopologically()
        #expect(graph.nodes.map(\.name) == ["first", "second"])
    }

    @Test func modelKindsAreRecognised() {
        func graph(_ ins: [(String, Int)], _ outs: [(String, Int)]) -> Graph {
            Graph(inputs: ins.map { ValueInfo(name: $0.0, type: TensorType(dtype: .float32, dims: Array(repeating: 1, count: $0.1))) },
                  outputs: outs.map { ValueInfo(name: $0.0, type: TensorType(dtype: .float32, dims: Array(repeating: 1, count: $0.1))) })
        }
        #expect(ModelKind.recognise(graph([("image", 4)], [("latents", 3), ("struct", 4)]))?.kind == .encoder)
        #expect(ModelKind.recognise(graph([("struct", 4), ("latents", 3)], [("image", 4)]))?.kind == .generator)
        let lcr = ModelKind.recognise(graph([("idd", 3), ("att", 3)], [("swapped_latents", 3)]))
        #expect(lcr?.kind == .swapper && lcr?.variant == "lcr")
        #expect(ModelKind.recognise(graph([("a", 2)], [("b", 2)])) == nil)
    }
}
