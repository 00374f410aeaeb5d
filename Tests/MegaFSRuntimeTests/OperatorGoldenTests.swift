import Foundation
import Testing
import MegaFSGraph
@testable import MegaFSRuntime

/// The operator golden cases (ONNX Runtime outputs, fixtures/ops-network and ops-tensor) run
/// through a session: fast kernels where they apply, reference kernels elsewhere.
enum OperatorGolden {
    static func caseNames(_ folder: String) -> [String] {
        let root = "\(Paths.fixtures)/\(folder)"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter { FileManager.default.fileExists(atPath: "\(root)/\($0)/case.json") }.sorted().map { "\(folder)/\($0)" }
    }
    static let all = caseNames("ops-network") + caseNames("ops-tensor")

    struct Case {
        var node: Node
        var opset: Int
        var inputs: [Tensor?]
        var constant: [Bool]
        var outputs: [Tensor]
        var rtol: Float
        var atol: Float
    }

    static func load(_ name: String) throws -> Case {
        let dir = "\(Paths.fixtures)/\(name)"
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/case.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let op = try #require(json["op_type"] as? String)
        let opset = try #require(json["opset"] as? Int)
        var attrs: [String: Attribute] = [:]
        for (key, raw) in (json["attributes"] as? [String: Any]) ?? [:] {
            let a = try #require(raw as? [String: Any])
            let value = a["value"]
            switch try #require(a["type"] as? String) {
            case "int": attrs[key] = .int(try #require(value as? Int))
            case "float": attrs[key] = .float(Float(try #require(value as? Double)))
            case "string": attrs[key] = .string(try #require(value as? String))
            case "ints": attrs[key] = .ints(try #require(value as? [Int]))
            case "floats": attrs[key] = .floats(try #require(value as? [Double]).map { Float($0) })
            case "tensor":
                let t = try NPY.read(path: "\(dir)/\(try #require((value as? String) ?? (a["file"] as? String)))")
                attrs[key] = .tensor(t)
            case let t: throw GraphError.invalidAttribute(node: name, "attribute type \(t) in fixture")
            }
        }
        var inputs: [Tensor?] = [], constant: [Bool] = []
        for (i, raw) in ((json["inputs"] as? [[String: Any]]) ?? []).enumerated() {
            if raw["present"] as? Bool == true {
                inputs.append(try NPY.read(path: "\(dir)/inputs_\(i).npy"))
                constant.append(raw["constant"] as? Bool ?? false)
            } else {
                inputs.append(nil); constant.append(false)
            }
        }
        let outCount = try #require(json["outputs"] as? [Any]).count
        let outputs = try (0..<outCount).map { try NPY.read(path: "\(dir)/output_\($0).npy") }
        let node = Node(name: name, opType: op, inputs: [], outputs: (0..<outCount).map { "out\($0)" }, attributes: attrs)
        return Case(node: node, opset: opset, inputs: inputs, constant: constant, outputs: outputs,
                    rtol: Float(json["rtol"] as? Double ?? 1e-5), atol: Float(json["atol"] as? Double ?? 0))
    }
}

@Test(arguments: OperatorGolden.all)
func operatorGoldenThroughSession(_ name: String) throws {
    let c = try OperatorGolden.load(name)
    let (graph, feeds) = singleNodeGraph(c.node, inputs: c.inputs, constant: c.constant, opset: c.opset)
    let session: InferenceSession
    do {
        session = try InferenceSession(graph: graph, options: SessionOptions(threads: 2, enableFusion: false))
    } catch let RuntimeError.unsupportedModel(problems) {
        // Cases of operators outside the runtime's list (3-D convolutions run by reference, etc.)
        // must at least be refused with a reason.
        #expect(!problems.isEmpty)
        return
    }
    let outs = try session.run(feeds)
    for (i, want) in c.outputs.enumerated() {
        let got = try #require(outs["out\(i)"])
        #expect(got.dtype == want.dtype, "\(name) output \(i): dtype \(got.dtype.name), want \(want.dtype.name)")
        #expect(got.shape == want.shape, "\(name) output \(i): shape \(got.shape), want \(want.shape)")
        guard got.shape == want.shape, got.dtype == want.dtype else { continue }
        if want.dtype.isFloatingPoint {
            let g = got.floats, w = want.floats
            let finite = w.filter(\.isFinite)
            let range = (finite.max() ?? 0) - (finite.min() ?? 0)
            let scale = max(range, finite.map { abs($0) }.max() ?? 0, 1e-6)
            var worst: Float = 0, at = 0
            for k in 0..<w.count {
                if w[k].isNaN && g[k].isNaN { continue }
                if w[k] == g[k] { continue }
                let e = abs(g[k] - w[k]) - c.rtol * abs(w[k]) - c.atol
                if !(e <= worst) { worst = e; at = k }
            }
            #expect(worst <= 2e-5 * scale, "\(name) output \(i): excess error \(worst) at \(at) (got \(g.isEmpty ? 0 : g[at]), want \(w.isEmpty ? 0 : w[at]))")
        } else {
            #expect(got.bytes.elementsEqual(want.bytes), "\(name) output \(i): values differ")
        }
    }
}
