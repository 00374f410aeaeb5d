import Foundation
import Testing
@testable import MegaFSGraph

/// Golden cases from ONNX Runtime (examples/ops/gen_tensor_cases.py -> fixtures/ops-tensor/).
enum TensorFixtures {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures/ops-tensor")

    static let names: [String] = {
        let fm = FileManager.default
        let all = (try? fm.contentsOfDirectory(atPath: root.path)) ?? []
        return all.filter { fm.fileExists(atPath: root.appendingPathComponent("\($0)/case.json").path) }.sorted()
    }()

    struct Case {
        var node: Node
        var opset: Int
        var inputs: [Tensor?]
        var constant: [Bool]
        var outputs: [Tensor]
        var rtol: Float
        var atol: Float
    }

    static func dtype(_ name: String) throws -> DType {
        guard let t = DType.allCases.first(where: { $0.name == name }) else {
            throw GraphError.invalidTensor("unknown dtype \(name)")
        }
        return t
    }

    static func load(_ name: String) throws -> Case {
        let folder = root.appendingPathComponent(name)
        let data = try Data(contentsOf: folder.appendingPathComponent("case.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let opType = try #require(json["op_type"] as? String)
        let opset = try #require(json["opset"] as? Int)
        var attributes: [String: Attribute] = [:]
        for (key, value) in try #require(json["attributes"] as? [String: [String: Any]]) {
            switch value["type"] as? String {
            case "int": attributes[key] = .int(try #require(value["value"] as? Int))
            case "float": attributes[key] = .float(Float(try #require(value["value"] as? Double)))
            case "ints": attributes[key] = .ints(try #require(value["value"] as? [Int]))
            case "floats": attributes[key] = .floats(try #require(value["value"] as? [Double]).map { Float($0) })
            case "string": attributes[key] = .string(try #require(value["value"] as? String))
            case "tensor":
                let file = try #require(value["file"] as? String)
                attributes[key] = .tensor(try NPY.read(path: folder.appendingPathComponent(file).path))
            default: throw GraphError.invalidGraph("\(name): attribute \(key) has an unknown type")
            }
        }
        var names: [String] = [], inputs: [Tensor?] = [], constant: [Bool] = []
        for (i, info) in try #require(json["inputs"] as? [[String: Any]]).enumerated() {
            if info["present"] as? Bool == true {
                let t = try NPY.read(path: folder.appendingPathComponent("inputs_\(i).npy").path)
                #expect(t.shape == (info["shape"] as? [Int]), "\(name) input \(i) shape")
                #expect(t.dtype.name == (info["dtype"] as? String), "\(name) input \(i) dtype")
                names.append("in\(i)"); inputs.append(t); constant.append(info["constant"] as? Bool ?? false)
            } else {
                names.append(""); inputs.append(nil); constant.append(false)
            }
        }
        let outputInfos = try #require(json["outputs"] as? [[String: Any]])
        var outputs: [Tensor] = []
        for (j, info) in outputInfos.enumerated() {
            let t = try NPY.read(path: folder.appendingPathComponent("output_\(j).npy").path)
            #expect(t.dtype == (try dtype(try #require(info["dtype"] as? String))))
            outputs.append(t)
        }
        let node = Node(name: name, opType: opType, inputs: names, outputs: (0..<outputs.count).map { "out\($0)" },
                        attributes: attributes)
        return Case(node: node, opset: opset, inputs: inputs, constant: constant, outputs: outputs,
                    rtol: Float(json["rtol"] as? Double ?? 1e-6), atol: Float(json["atol"] as? Double ?? 0))
    }
}

/// Elementwise comparison: exact for integers and bools, |a - b| <= atol + rtol * |b| for floats
/// (NaN matches NaN). Returns a description of the first mismatch.
func tensorMismatch(_ actual: Tensor, _ expected: Tensor, rtol: Float, atol: Float) -> String? {
    if actual.dtype != expected.dtype { return "dtype \(actual.dtype.name), expected \(expected.dtype.name)" }
    if actual.shape != expected.shape { return "shape \(actual.shape), expected \(expected.shape)" }
    if !actual.dtype.isFloatingPoint {
        return actual.isIdentical(to: expected) ? nil : "values \(actual.int64s.prefix(16)), expected \(expected.int64s.prefix(16))"
    }
    let a = actual.floats, e = expected.floats
    for i in 0..<a.count {
        if a[i].isNaN && e[i].isNaN { continue }
        if a[i] == e[i] { continue }
        if !(abs(a[i] - e[i]) <= atol + rtol * abs(e[i])) {
            return "element \(i): \(a[i]), expected \(e[i]) (diff \(abs(a[i] - e[i])))"
        }
    }
    return nil
}

@Suite("Tensor operators: ONNX Runtime golden cases")
struct TensorFixtureTests {
    @Test func fixturesArePresent() {
        #expect(TensorFixtures.names.count >= 60, "run examples/ops/gen_tensor_cases.py")
    }

    @Test(arguments: TensorFixtures.names)
    func golden(_ name: String) throws {
        let c = try TensorFixtures.load(name)
        let op = try #require(OperatorRegistry.lookup(c.node.opType), "\(c.node.opType) is not registered")

        // Reference kernel against ONNX Runtime.
        let results = try op.evaluate(c.node, inputs: c.inputs, opset: c.opset)
        #expect(results.count == c.outputs.count)
        for (j, (actual, expected)) in zip(results, c.outputs).enumerated() {
            let mismatch = tensorMismatch(actual, expected, rtol: c.rtol, atol: c.atol)
            #expect(mismatch == nil, "\(name) output \(j): \(mismatch ?? "")")
        }

        // Shape rule with concrete input types (shape-deciding inputs are constant).
        let types = c.inputs.map { $0?.type }
        let constants = zip(c.inputs, c.constant).map { $1 ? $0 : nil }
        let inferred = try op.inferTypes(OperatorContext(node: c.node, inputTypes: types, constantInputs: constants,
                                                         opset: c.opset))
        #expect(inferred == c.outputs.map(\.type), "\(name): inferred \(inferred), ran \(c.outputs.map(\.type))")

        // Shape rule with dim 0 of every non-constant input symbolic: must not throw, and must
        // not claim a fixed size that differs from the real one.
        let symbolicTypes: [TensorType?] = zip(c.inputs, c.constant).enumerated().map { i, pair in
            guard let t = pair.0 else { return nil }
            var type = t.type
            if !pair.1, var shape = type.shape, !shape.isEmpty { shape[0] = .symbolic("N\(i)"); type.shape = shape }
            return type
        }
        let symbolic = try op.inferTypes(OperatorContext(node: c.node, inputTypes: symbolicTypes,
                                                         constantInputs: constants, opset: c.opset))
        #expect(symbolic.count == c.outputs.count)
        for (t, expected) in zip(symbolic, c.outputs) {
            #expect(t.dtype == expected.dtype)
            guard let shape = t.shape else { continue }
            #expect(shape.count == expected.rank, "\(name): symbolic rank \(shape)")
            for (d, e) in zip(shape, expected.shape) {
                if let v = d.value { #expect(v == e, "\(name): symbolic inference gave \(shape), real \(expected.shape)") }
            }
        }
    }
}
