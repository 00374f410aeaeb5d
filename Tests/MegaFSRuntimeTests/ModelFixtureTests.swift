import Foundation
import Testing
import MegaFSGraph
import MegaFSONNX
import MegaFSFormat
@testable import MegaFSRuntime

/// The tiny MegaFS models of fixtures/manifest.json (PyTorch exports with golden outputs),
/// imported, converted, written to and read from a model file, and run with fusion on and off.
enum ModelFixtures {
    struct IO { var name: String; var file: String; var shape: [Int] }
    struct Model { var name: String; var kind: String; var path: String; var inputs: [IO]; var outputs: [IO]; var dynamicBatch: Bool }

    static let models: [Model] = {
        guard let data = FileManager.default.contents(atPath: "\(Paths.fixtures)/manifest.json"),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let list = json["models"] as? [[String: Any]] else { return [] }
        return list.compactMap { m in
            guard let name = m["name"] as? String, let path = m["model"] as? String,
                  let ins = m["inputs"] as? [[String: Any]], let outs = m["outputs"] as? [[String: Any]] else { return nil }
            let dyn = (m["dynamic_axes"] as? [String: Any]).map { !$0.isEmpty } ?? false
            return Model(name: name, kind: m["kind"] as? String ?? "", path: path,
                         inputs: ins.map { IO(name: $0["name"] as! String, file: $0["file"] as! String, shape: $0["shape"] as! [Int]) },
                         outputs: outs.map { IO(name: $0["name"] as! String, file: $0["torch"] as! String, shape: $0["shape"] as! [Int]) },
                         dynamicBatch: dyn)
        }
    }()
    static var names: [String] { models.map(\.name) }

    /// Imported and converted once per model (the converter's pipeline).
    static func converted(_ m: Model) throws -> Graph {
        var graph = try ONNXImporter().importModel(atPath: "\(Paths.fixtures)/\(m.path)")
        try PassPipeline.converter.run(&graph)
        return graph
    }

    /// First `n` samples of a batch.
    static func firstSamples(_ t: Tensor, _ n: Int) -> Tensor {
        let per = t.elementCount / t.shape[0]
        let bytes = UnsafeRawBufferPointer(start: t.storage.pointer, count: per * n * t.dtype.byteSize)
        return try! Tensor(dtype: t.dtype, shape: [n] + t.shape.dropFirst(), bytes: bytes)
    }
}

@Test func manifestListsTheTinyModels() {
    let kinds = Set(ModelFixtures.models.map(\.kind))
    #expect(kinds == ["encoder", "swapper", "generator"], "\(ModelFixtures.models.map(\.name))")
    #expect(ModelFixtures.models.count >= 5)
}

@Test(arguments: ModelFixtures.names)
func fixtureModelMatchesPyTorch(_ name: String) throws {
    let m = try #require(ModelFixtures.models.first { $0.name == name })
    let graph = try ModelFixtures.converted(m)
    // Through the model file, as `megafs run` sees it.
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("rt-fixture-\(name)-\(UInt32.random(in: 0...UInt32.max)).mfs").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    _ = try ModelFileWriter.write(graph, to: path)

    var feeds: [String: Tensor] = [:]
    for input in m.inputs { feeds[input.name] = try NPY.read(path: "\(Paths.fixtures)/\(input.file)") }
    var golden: [String: Tensor] = [:]
    for output in m.outputs { golden[output.name] = try NPY.read(path: "\(Paths.fixtures)/\(output.file)") }

    var results: [Bool: [String: Tensor]] = [:]
    for fusion in [true, false] {
        let session = try InferenceSession(modelPath: path, options: SessionOptions(threads: 2, enableFusion: fusion))
        let outs = try session.run(feeds)
        results[fusion] = outs
        for output in m.outputs {
            let got = try #require(outs[output.name], "\(name): no output \(output.name)")
            let want = try #require(golden[output.name])
            #expect(got.shape == want.shape, "\(name) \(output.name): shape \(got.shape), want \(want.shape)")
            let c = compare(got, want)
            #expect(c.maxAbsError <= 1e-4 * c.range, "\(name) \(output.name) fusion=\(fusion): \(c)")
            #expect(c.cosine >= 0.99999, "\(name) \(output.name) fusion=\(fusion): \(c)")
        }
        if !fusion { #expect(session.fusions.isEmpty) }

        // Encoders are exported with a dynamic batch: batch 1 is planned separately and gives the
        // first sample's outputs.
        if m.dynamicBatch, let first = m.inputs.first, first.shape[0] > 1 {
            let one = [first.name: ModelFixtures.firstSamples(feeds[first.name]!, 1)]
            let outs1 = try session.run(one)
            for output in m.outputs {
                let got = try #require(outs1[output.name])
                let want = ModelFixtures.firstSamples(golden[output.name]!, 1)
                let c = compare(got, want)
                #expect(got.shape == want.shape && c.maxAbsError <= 1e-4 * max(c.range, 1e-6) && c.cosine >= 0.99999,
                        "\(name) \(output.name) batch 1: \(c)")
            }
        }
    }
}

@Test(arguments: ["generator", "generator-dynamo", "generator-opset13"])
func generatorGetsTheStyleGANFusions(_ name: String) throws {
    let m = try #require(ModelFixtures.models.first { $0.name == name })
    let session = try InferenceSession(graph: try ModelFixtures.converted(m), options: SessionOptions(threads: 2))
    let fusions = Dictionary(uniqueKeysWithValues: session.fusions.map { ($0.name, $0.count) })
    // 64 px: conv1 + 4 plain and 4 upsampling StyledConvs, to_rgb1 + 4 ToRGBs with 4 skip upsamplings.
    #expect(fusions["modulated-conv+noise+bias+leaky_relu+gain"] == 5, "\(session.fusions)")
    #expect(fusions["modulated-convtranspose+blur+noise+bias+leaky_relu+gain"] == 4, "\(session.fusions)")
    #expect(fusions["upfirdn2d(upsample)"] == 4, "\(session.fusions)")
    let ops = try #require(session.plannedGraph).operatorHistogram
    for op in ["Pow", "ReduceSum", "Sqrt", "ConvTranspose", "LeakyRelu"] { #expect(ops[op] == nil, "\(op) left: \(ops)") }
}

@Test func encoderAndSwapperGetTheirFusions() throws {
    let enc = try #require(ModelFixtures.models.first { $0.name == "encoder" })
    let s = try InferenceSession(graph: try ModelFixtures.converted(enc), options: SessionOptions(threads: 2))
    // Dynamic batch: nothing is planned (or fused) before the input shape is known.
    #expect(s.fusions.isEmpty)
    let plan = try s.prepare(inputShapes: ["image": [2, 3, 256, 256]])
    #expect(plan.fusions.map(\.name) == s.fusions.map(\.name))
    let names = Dictionary(uniqueKeysWithValues: s.fusions.map { ($0.name, $0.count) })
    // ResNet blocks end in conv + bias + residual + relu; the 76 mapping convs in conv + bias + leaky relu.
    #expect((names["conv+bias+residual+relu"] ?? 0) >= 16, "\(s.fusions)")
    #expect((names["conv+bias+leaky_relu"] ?? 0) >= 18, "\(s.fusions)")
    let ftm = try #require(ModelFixtures.models.first { $0.name == "swapper-ftm" })
    let f = try InferenceSession(graph: try ModelFixtures.converted(ftm), options: SessionOptions(threads: 2))
    let fn = Dictionary(uniqueKeysWithValues: f.fusions.map { ($0.name, $0.count) })
    #expect((fn["gemm+relu"] ?? 0) > 0 && (fn["leaky_relu(alpha=1) removed"] ?? 0) > 0, "\(f.fusions)")
}

/// The swappers' independent one-row products run in groups (nodes ordered by depth): the same
/// bits as one product per step, and the FTM's products in a handful of steps.
@Test(arguments: ["swapper-ftm", "swapper-injection"])
func swapperGemvGroupsGiveTheSameBits(_ name: String) throws {
    let m = try #require(ModelFixtures.models.first { $0.name == name })
    let graph = try ModelFixtures.converted(m)
    var feeds: [String: Tensor] = [:]
    for input in m.inputs { feeds[input.name] = try NPY.read(path: "\(Paths.fixtures)/\(input.file)") }
    var outputs: [Bool: [String: Tensor]] = [:]
    var steps: [Bool: [(node: Node, kernel: RuntimeKernel, overFirstInput: Bool)]] = [:]
    for grouped in [true, false] {
        var options = SessionOptions(threads: 2)
        options.groupsGemvs = grouped
        let session = try InferenceSession(graph: graph, options: options)
        outputs[grouped] = try session.run(feeds)
        steps[grouped] = session.lastPlanSteps
    }
    for output in m.outputs {
        let a = try #require(outputs[true]?[output.name]), b = try #require(outputs[false]?[output.name])
        #expect(a.isIdentical(to: b), "\(name) \(output.name): grouped and single products differ")
    }
    let groups = steps[true]!.filter { $0.kernel is GemvGroupKernel }
    let singles = steps[false]!.filter { ($0.kernel as? GemmKernel)?.streamsOwnGemv == true }
    #expect(!groups.isEmpty && steps[false]!.allSatisfy { !($0.kernel is GemvGroupKernel) }, "\(name)")
    let members = groups.reduce(0) { $0 + ($1.kernel as! GemvGroupKernel).members.count }
    let leftAlone = steps[true]!.filter { ($0.kernel as? GemmKernel)?.streamsOwnGemv == true }.count
    #expect(members + leftAlone == singles.count, "\(name): every product runs once")
    if name == "swapper-ftm" { #expect(groups.count <= 6 && leftAlone == 0, "\(name): \(groups.count) groups, \(leftAlone) alone") }
}
