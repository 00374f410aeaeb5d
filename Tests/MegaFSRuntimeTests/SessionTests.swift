import Foundation
import Testing
import MegaFSGraph
import MegaFSFormat
@testable import MegaFSRuntime

@Test func unsupportedOperatorsAndAttributesAreRefusedAtLoadNamingAll() throws {
    var b = GraphBuilder()
    let x = b.input("x", Tensor(zeros: .float32, shape: [1, 3, 4, 4]))
    let f1 = b.node("FancyOp", [x])
    let f2 = b.node("FancyOp", [f1])
    let g = b.node("Gelu2", [f2])
    let c = b.node("Conv", [g, b.constant(Tensor(zeros: .float32, shape: [3, 3, 1, 1]))], ["bogus": .int(1)])
    let r = b.node("Resize", [c, "", b.constant(Tensor([Float(1), 1, 2, 2], shape: [4]))], ["mode": .string("lanczos")])
    b.output(r)
    do {
        _ = try InferenceSession(graph: b.graph)
        Issue.record("loaded a model with unknown operators")
    } catch let e as RuntimeError {
        let text = e.description
        for needle in ["FancyOp (2)", "Gelu2 (1)", "Conv attribute 'bogus'", "mode=lanczos"] {
            #expect(text.contains(needle), "\(text) does not name \(needle)")
        }
    }
}

@Test func inputErrorsNameTheInput() throws {
    var b = GraphBuilder()
    let x = b.input("image", Tensor(zeros: .float32, shape: [1, 3, 4, 4]))
    b.output(b.node("Relu", [x]))
    let s = try InferenceSession(graph: b.graph)
    #expect(throws: RuntimeError.unknownInput(name: "img", expected: ["image"])) {
        try s.run(["img": Tensor(zeros: .float32, shape: [1, 3, 4, 4])])
    }
    #expect(throws: RuntimeError.missingInput(name: "image")) { try s.run([:]) }
    #expect(throws: RuntimeError.wrongInputShape(name: "image", expected: "[1, 3, 4, 4]", got: [1, 3, 4, 5])) {
        try s.run(["image": Tensor(zeros: .float32, shape: [1, 3, 4, 5])])
    }
    #expect(throws: RuntimeError.wrongInputType(name: "image", expected: "float32", got: "int64")) {
        try s.run(["image": Tensor(zeros: .int64, shape: [1, 3, 4, 4])])
    }
    let message = RuntimeError.wrongInputShape(name: "image", expected: "[1, 3, 4, 4]", got: [2, 3]).description
    #expect(!message.contains("\n") && message.contains("image"))
}

@Test func symbolicBatchIsPlannedPerShapeAndCached() throws {
    var rng = Rng(40)
    var g = Graph(name: "dyn")
    g.inputs = [ValueInfo(name: "x", type: TensorType(dtype: .float32, shape: [.symbolic("N"), .fixed(3), .fixed(6), .fixed(6)]))]
    g.initializers["w"] = rng.tensor([4, 3, 3, 3])
    g.initializers["b"] = rng.tensor([4])
    g.initializers["shape"] = Tensor([Int64(0), -1], shape: [2])
    g.nodes = [
        Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])]),
        Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["r"]),
        Node(name: "shape", opType: "Shape", inputs: ["r"], outputs: ["s"]),
        Node(name: "flat", opType: "Reshape", inputs: ["r", "shape"], outputs: ["y"]),
    ]
    g.outputs = [ValueInfo(name: "y", type: TensorType(dtype: .float32, shape: nil)), ValueInfo(name: "s", type: TensorType(dtype: .int64, shape: nil))]
    let session = try InferenceSession(graph: g)
    for n in [1, 2, 3, 2, 1] {
        let x = rng.tensor([n, 3, 6, 6])
        let out = try session.run(["x": x])
        let want = try referenceValues(g, ["x": x])
        expectClose(try #require(out["y"]), try #require(want["y"]), "batch \(n)")
        #expect(try #require(out["s"]).int64s == [Int64(n), 4, 6, 6])
        #expect(session.lastPlanSummary?.inputShapes["x"] == [n, 3, 6, 6])
    }
    let a = try session.prepare(inputShapes: ["x": [2, 3, 6, 6]])
    #expect(a.fusions.map(\.name) == ["conv+bias+relu"])
}

@Test func modelFileRoundTripRuns() throws {
    var rng = Rng(41)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([2, 8]))
    let h = b.node("Gemm", [x, b.constant(rng.tensor([16, 8])), b.constant(rng.tensor([16]))], ["transB": .int(1)])
    let y = b.node("Tanh", [h])
    b.output(y)
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("rt-\(UInt32.random(in: 0...UInt32.max)).mfs").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    var graph = b.graph
    try PassPipeline.converter.run(&graph)
    _ = try ModelFileWriter.write(graph, to: path)
    let session = try InferenceSession(modelPath: path)
    let got = try session.run(b.feeds)
    let want = try referenceValues(b.graph, b.feeds)
    expectClose(try #require(got[y]), try #require(want[y]), "round trip")
    #expect(session.fusions.map(\.name) == ["gemm+tanh"])
    #expect(throws: RuntimeError.self) { _ = try InferenceSession(modelPath: path + ".missing") }
}

@Test func referenceOnlyModeAndProfileAgree() throws {
    var rng = Rng(42)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([1, 4, 12, 12]))
    let c = b.node("Conv", [x, b.constant(rng.tensor([6, 4, 3, 3])), b.constant(rng.tensor([6]))], ["pads": .ints([1, 1, 1, 1])])
    let r = b.node("Relu", [c])
    let p = b.node("MaxPool", [r], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])])
    b.output(p)
    let fast = try InferenceSession(graph: b.graph, options: SessionOptions(threads: 2))
    let slow = try InferenceSession(graph: b.graph, options: SessionOptions(threads: 1, fastKernels: false))
    let (fo, profile) = try fast.run(b.feeds, profile: true)
    let so = try slow.run(b.feeds)
    expectClose(try #require(fo[p]), try #require(so[p]), "fast vs reference-only")
    let prof = try #require(profile)
    #expect(prof.operators.count == fast.lastPlanSummary?.nodeCount)
    #expect(prof.operators.allSatisfy { $0.milliseconds >= 0 })
    #expect(prof.arenaBytes == fast.lastPlanSummary?.arenaBytes)
    #expect(slow.lastPlanSummary?.kernels.map(\.name) == ["reference"])
    // The conv (bias and ReLU fused) counts 2 x 6 x 4 x 9 x 12 x 12 flops; MaxPool none.
    let convFlops = Double(2 * 6 * 4 * 9 * 144)
    #expect(prof.operators.map(\.flops) == [convFlops, 0])
    #expect(prof.totalFlops == convFlops)
}

@Test func profileCountsTransposedConvsByInputPixelsAndGemms() throws {
    var rng = Rng(44)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([2, 3, 5, 5]))
    let t = b.node("ConvTranspose", [x, b.constant(rng.tensor([3, 4, 3, 3]))], ["strides": .ints([2, 2])])
    b.output(t)
    let m = b.input("m", rng.tensor([7, 10]))
    let g = b.node("Gemm", [m, b.constant(rng.tensor([10, 6]))])
    b.output(g)
    let (_, profile) = try InferenceSession(graph: b.graph, options: SessionOptions(threads: 1)).run(b.feeds, profile: true)
    let flops = Dictionary(uniqueKeysWithValues: try #require(profile).operators.map { ($0.opType, $0.flops) })
    #expect(flops["ConvTranspose"] == Double(2 * 2 * 3 * 4 * 9 * 25))
    #expect(flops["Gemm"] == Double(2 * 7 * 6 * 10))
    #expect(MachinePeak.current(threads: 2).map { $0.gflopsPerSecond > 0 } ?? true)
}

@Test func gemmBackendIsReplaceable() throws {
    var rng = Rng(43)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([1, 3, 7, 7]))
    let c = b.node("Conv", [x, b.constant(rng.tensor([5, 3, 3, 3]))], ["pads": .ints([1, 1, 1, 1]), "strides": .ints([2, 2])])
    let y = b.node("ConvTranspose", [c, b.constant(rng.tensor([5, 2, 3, 3]))], ["strides": .ints([2, 2])])
    b.output(y)
    let blas = try InferenceSession(graph: b.graph)
    let loops = try InferenceSession(graph: b.graph, options: SessionOptions(threads: 1, gemm: ReferenceGemm()))
    expectClose(try #require(try blas.run(b.feeds)[y]), try #require(try loops.run(b.feeds)[y]), relative: 1e-5, "openblas vs loops")
}

/// A run reuses the previous run's output buffer once the caller has let go of it, and never
/// one the caller still holds; either way every output value is the new run's.
@Test func outputBuffersAreReusedOnlyWhenReleased() throws {
    var rng = Rng(77)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([1, 3, 9, 11]))
    b.output(b.node("Conv", [x, b.constant(rng.tensor([4, 3, 3, 3]), "w")], ["pads": .ints([1, 1, 1, 1])]))
    let session = try InferenceSession(graph: b.graph, options: SessionOptions(threads: 2))
    let name = b.graph.outputs[0].name
    let feeds = (0..<3).map { _ in ["x": rng.tensor([1, 3, 9, 11])] }
    let wants = try feeds.map { try referenceValues(b.graph, $0)[name]! }

    var firstAddress: UnsafeMutableRawPointer? = nil
    do {
        let first = try #require(try session.run(feeds[0])[name])
        firstAddress = first.storage.pointer
        expectClose(first, wants[0], relative: 1e-4, "first run")
    }
    // The first output was released: the second run writes into its buffer.
    let second = try #require(try session.run(feeds[1])[name])
    #expect(second.storage.pointer == firstAddress)
    expectClose(second, wants[1], relative: 1e-4, "second run, reused buffer")
    // `second` is still held: the third run takes a fresh buffer and leaves it alone.
    let kept = second.floats
    let third = try #require(try session.run(feeds[2])[name])
    #expect(third.storage.pointer != second.storage.pointer)
    #expect(second.floats == kept)
    expectClose(third, wants[2], relative: 1e-4, "third run")
}
