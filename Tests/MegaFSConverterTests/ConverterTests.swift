import Foundation
import Testing
@testable import MegaFSConverter
import MegaFSFormat
import MegaFSGraph
import MegaFSONNX

private func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "megafs-converter-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A tiny generator-shaped graph: struct (1,4,2,2) and latents (1,3,4) -> image.
/// Conv + BatchNormalization + a Shape/Reshape chain, so every converter pass has work.
private func tinyGraph() -> Graph {
    var w: [Float] = []
    for i in 0..<(3 * 4 * 9) { w.append(Float((i * 37) % 17) / 17 - 0.5) }
    return Graph(
        name: "tiny",
        inputs: [
            ValueInfo(name: "struct", type: TensorType(dtype: .float32, dims: [1, 4, 2, 2])),
            ValueInfo(name: "latents", type: TensorType(dtype: .float32, dims: [1, 3, 4])),
        ],
        outputs: [ValueInfo(name: "image", type: TensorType(dtype: .float32, shape: nil))],
        initializers: [
            "w": Tensor(w, shape: [3, 4, 3, 3]),
            "gamma": Tensor([1.5, 0.5, 2], shape: [3]), "beta": Tensor([0.1, 0.2, 0.3], shape: [3]),
            "mean": Tensor([0.0, 0.1, -0.1], shape: [3]), "var": Tensor([1, 2, 0.5], shape: [3]),
            "axes": Tensor([Int64(2), 3], shape: [2]),
        ],
        nodes: [
            Node(name: "conv", opType: "Conv", inputs: ["struct", "w"], outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])]),
            Node(name: "bn", opType: "BatchNormalization", inputs: ["c", "gamma", "beta", "mean", "var"], outputs: ["n"]),
            Node(name: "mean_latent", opType: "ReduceMean", inputs: ["latents"], outputs: ["m"], attributes: ["axes": .ints([2]), "keepdims": .int(0)]),
            Node(name: "unsq", opType: "Unsqueeze", inputs: ["m", "axes"], outputs: ["m4"]),
            Node(name: "shape", opType: "Shape", inputs: ["n"], outputs: ["s"]),
            Node(name: "add", opType: "Add", inputs: ["n", "m4"], outputs: ["sum"]),
            Node(name: "reshape", opType: "Reshape", inputs: ["sum", "s"], outputs: ["image"]),
        ],
        opsets: ["": 13])
}

@Suite struct ConverterTests {
    @Test func convertsAndReadsBackTheSameMath() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let onnx = dir + "/tiny.onnx", mfs = dir + "/tiny.mfs"
        let original = tinyGraph()
        try ONNXWriter().write(original, to: onnx)

        let report = try Converter.convert(onnxPath: onnx, outputPath: mfs)
        #expect(report.kind == "generator")
        #expect(report.nodesBefore == 7)
        #expect(report.nodesAfter == 5, "BN folded into Conv, Shape folded into a constant")
        #expect(report.sourceSHA256 == SHA256.hash(Array(try Data(contentsOf: URL(fileURLWithPath: onnx)))).hex)

        let converted = try ModelFileReader.read(mfs)
        #expect(converted.metadata[ModelMetadataKey.sourceSHA256] == report.sourceSHA256)
        #expect(converted.metadata[ModelMetadataKey.modelKind] == "generator")
        #expect(converted.outputs[0].type.concreteShape == [1, 3, 2, 2])

        var rng = (0..<16).map { Float($0) / 8 - 1 }
        let inputs = ["struct": Tensor(rng, shape: [1, 4, 2, 2]),
                      "latents": Tensor((0..<12).map { Float($0) / 12 }, shape: [1, 3, 4])]
        rng.removeAll()
        let expected = try #require(try ReferenceEvaluator.run(original, inputs: inputs)["image"])
        let actual = try #require(try ReferenceEvaluator.run(converted, inputs: inputs)["image"])
        #expect(actual.shape == expected.shape)
        let err = zip(expected.floats, actual.floats).map { abs($0 - $1) }.max() ?? .infinity
        #expect(err < 1e-5)
    }

    @Test func uncompressedConversionIsMappedAndKeepsTheMath() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let onnx = dir + "/tiny.onnx", packed = dir + "/packed.mfs", plain = dir + "/plain.mfs"
        try ONNXWriter().write(tinyGraph(), to: onnx)
        _ = try Converter.convert(onnxPath: onnx, outputPath: packed)
        _ = try Converter.convert(onnxPath: onnx, outputPath: plain, options: ConversionOptions(compress: false))
        let summary = try ModelFileReader.inspect(plain)
        #expect(summary.frameCount > 0 && summary.storedFrames == summary.frameCount)
        let a = try ModelFileReader.read(packed), b = try ModelFileReader.read(plain)
        #expect(Set(a.initializers.keys) == Set(b.initializers.keys))
        for (name, t) in b.initializers {
            #expect(t.isIdentical(to: a.initializers[name]!), "\(name)")
            #expect(t.byteCount == 0 || t.storage.isFileBacked, "\(name) should be mapped")
        }
    }

    @Test func failedConversionLeavesNoFile() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var graph = tinyGraph()
        graph.nodes.append(Node(name: "odd", opType: "NonMaxSuppression", inputs: ["image"], outputs: ["x"]))
        graph.nodes.append(Node(name: "odd2", opType: "TopK", inputs: ["x"], outputs: ["y"]))
        graph.outputs = [ValueInfo(name: "y", type: TensorType(dtype: .float32, shape: nil))]
        let onnx = dir + "/bad.onnx", mfs = dir + "/bad.mfs"
        try ONNXWriter().write(graph, to: onnx)
        do {
            _ = try Converter.convert(onnxPath: onnx, outputPath: mfs)
            Issue.record("conversion of unsupported operators should fail")
        } catch {
            #expect("\(error)".contains("NonMaxSuppression"))
            #expect("\(error)".contains("TopK"))
        }
        #expect(!FileManager.default.fileExists(atPath: mfs))
        // Nothing else left in the folder either (no temporary files).
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["bad.onnx"])
    }

    @Test func notONNXIsRejectedWithoutOutput() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let junk = dir + "/junk.onnx"
        try Data("this is not a protobuf at all, just text".utf8).write(to: URL(fileURLWithPath: junk))
        #expect(throws: (any Error).self) { try Converter.convert(onnxPath: junk, outputPath: dir + "/junk.mfs") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/junk.mfs"))
    }

    @Test func summariesOfBothFormats() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let onnx = dir + "/tiny.onnx", mfs = dir + "/tiny.mfs"
        try ONNXWriter().write(tinyGraph(), to: onnx)
        _ = try Converter.convert(onnxPath: onnx, outputPath: mfs)
        let a = try ModelSummary.of(path: onnx)
        let b = try ModelSummary.of(path: mfs)
        #expect(a.format == .onnx && b.format == .mfs)
        #expect(a.operators["BatchNormalization"] == 1)
        #expect(b.operators["BatchNormalization"] == nil)
        #expect(a.kind == "generator" && b.kind == "generator")
        #expect(b.inputs.map(\.name) == ["struct", "latents"])
        #expect(b.compressionRatio != nil)
        // BN folding adds a bias to the conv: 3*4*9 weights + 3 bias, plus the Unsqueeze axes
        // and the folded shape.
        #expect(b.parameters == 3 * 4 * 9 + 3 + 2 + 4)
        #expect(throws: (any Error).self) { try ModelSummary.of(path: dir + "/missing.onnx") }
    }

    /// Every fixture model exported from PyTorch converts, keeps its interface, gets the
    /// output shapes PyTorch produced, and (run with the reference kernels) PyTorch's numbers.
    @Test(arguments: FixtureManifest.load()?.models ?? [])
    func fixtureModelConverts(_ model: FixtureManifest.Model) throws {
        let root = FixtureManifest.root
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/\(model.name).mfs"
        let report = try Converter.convert(onnxPath: root.appendingPathComponent(model.model).path, outputPath: out)
        let graph = try ModelFileReader.read(out)
        #expect(graph.inputs.map(\.name) == model.inputs.map(\.name))
        #expect(graph.outputs.map(\.name) == model.outputs.map(\.name))
        #expect(report.nodesAfter <= report.nodesBefore)
        #expect(report.kind?.hasPrefix(model.kind) == true, "recognised as \(report.kind ?? "nothing")")
        #expect(!graph.nodes.contains { $0.opType == "Constant" })
        // BatchNormalization survives only where no Conv/Gemm produces its input (the injection
        // swapper normalises a latent taken straight from the graph input).
        let producers = Dictionary(graph.nodes.flatMap { n in n.outputs.map { ($0, n.opType) } }) { a, _ in a }
        for bn in graph.nodes where bn.opType == "BatchNormalization" {
            #expect(!["Conv", "Gemm", "ConvTranspose"].contains(producers[bn.inputs[0]] ?? ""), "unfolded BN after a linear op")
        }

        var inputs: [String: Tensor] = [:]
        for input in model.inputs { inputs[input.name] = try NPY.read(path: root.appendingPathComponent(input.file).path) }
        let results = try ReferenceEvaluator.run(graph, inputs: inputs)
        for (output, declared) in zip(model.outputs, graph.outputs) {
            let golden = try NPY.read(path: root.appendingPathComponent(output.torch).path)
            // Inferred shape: every fixed dimension agrees with what PyTorch produced.
            let shape = try #require(declared.type.shape)
            #expect(shape.count == golden.shape.count)
            for (dim, size) in zip(shape, golden.shape) { if let v = dim.value { #expect(v == size, "\(output.name)") } }
            let actual = try #require(results[output.name])
            #expect(actual.shape == golden.shape)
            let a = actual.floats, g = golden.floats
            let range = (g.max() ?? 0) - (g.min() ?? 0)
            let maxError = zip(a, g).map { abs($0 - $1) }.max() ?? 0
            #expect(maxError <= 1e-4 * max(range, 1e-6), "\(model.name).\(output.name): max abs error \(maxError), range \(range)")
        }
    }
}

/// `fixtures/manifest.json`, as written by `examples/export/`.
struct FixtureManifest: Decodable {
    struct Output: Decodable, Sendable { var name: String; var torch: String }
    struct Model: Decodable, Sendable, CustomTestStringConvertible {
        var name: String; var kind: String; var model: String; var inputs: [Input]; var outputs: [Output]
        var testDescription: String { name }
    }
    struct Input: Decodable, Sendable { var name: String; var file: String }
    var models: [Model]

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures")

    static func load() -> FixtureManifest? {
        guard let data = try? Data(contentsOf: root.appendingPathComponent("manifest.json")) else { return nil }
        return try? JSONDecoder().decode(FixtureManifest.self, from: data)
    }
}

@Test func fixtureManifestIsPresent() {
    #expect((FixtureManifest.load()?.models.count ?? 0) >= 5)
}
