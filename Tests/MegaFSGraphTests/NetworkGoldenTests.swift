import Foundation
import Testing
@testable import MegaFSGraph

/// Golden cases from ONNX Runtime (see examples/ops/gen_network_cases.py), one folder each
/// under fixtures/ops-network.
enum NetworkGolden {
    static let root: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures/ops-network").path

    static let caseNames: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter { FileManager.default.fileExists(atPath: "\(root)/\($0)/case.json") }.sorted()
    }()

    struct Case {
        var node: Node
        var opset: Int
        var inputs: [Tensor?]
        var constant: [Bool]
        var outputs: [Tensor]
        var batch: String
        var golden: String
    }

    static func load(_ name: String) throws -> Case {
        let dir = "\(root)/\(name)"
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/case.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let op = try #require(json["op_type"] as? String)
        let opset = try #require(json["opset"] as? Int)
        var attrs: [String: Attribute] = [:]
        for (key, raw) in try #require(json["attributes"] as? [String: Any]) {
            let a = try #require(raw as? [String: Any])
            let value = a["value"]
            switch try #require(a["type"] as? String) {
            case "int": attrs[key] = .int(try #require(value as? Int))
            case "float": attrs[key] = .float(Float(try #require(value as? Double)))
            case "string": attrs[key] = .string(try #require(value as? String))
            case "ints": attrs[key] = .ints(try #require(value as? [Int]))
            case "floats": attrs[key] = .floats(try #require(value as? [Double]).map { Float($0) })
            case let t: Issue.record("unknown attribute type \(t)")
            }
        }
        var inputs: [Tensor?] = [], constant: [Bool] = [], names: [String] = []
        for (i, raw) in try #require(json["inputs"] as? [[String: Any]]).enumerated() {
            if raw["present"] as? Bool == true {
                let t = try NPY.read(path: "\(dir)/inputs_\(i).npy")
                #expect(t.shape == (raw["shape"] as? [Int]), "input \(i) shape")
                inputs.append(t)
                constant.append(raw["constant"] as? Bool ?? false)
                names.append("in\(i)")
            } else {
                inputs.append(nil); constant.append(false); names.append("")
            }
        }
        while let last = names.last, last.isEmpty {
            names.removeLast(); inputs.removeLast(); constant.removeLast()
        }
        let outCount = try #require(json["outputs"] as? [Any]).count
        let outputs = try (0..<outCount).map { try NPY.read(path: "\(dir)/output_\($0).npy") }
        let node = Node(name: name, opType: op, inputs: names, outputs: (0..<outCount).map { "out\($0)" },
                        attributes: attrs)
        return Case(node: node, opset: opset, inputs: inputs, constant: constant, outputs: outputs,
                    batch: json["batch"] as? String ?? "none", golden: json["golden"] as? String ?? "")
    }
}

@Test func networkGoldenFixturesCoverEveryOperator() throws {
    #expect(NetworkGolden.caseNames.count >= 40, "fixtures missing from \(NetworkGolden.root)")
    var seen = Set<String>()
    for name in NetworkGolden.caseNames { seen.insert(try NetworkGolden.load(name).node.opType) }
    for op in OperatorRegistry.networkOperators {
        #expect(seen.contains(op.opType), "no golden case for \(op.opType)")
    }
}

@Test(arguments: NetworkGolden.caseNames)
func networkGoldenCase(_ name: String) throws {
    let c = try NetworkGolden.load(name)
    let op = try #require(OperatorRegistry.lookup(c.node.opType))

    // Reference kernel against the golden values, relative to the output's range.
    let got = try op.evaluate(c.node, inputs: c.inputs, opset: c.opset)
    try #require(got.count == c.outputs.count)
    for (g, want) in zip(got, c.outputs) {
        #expect(g.dtype == .float32)
        try #require(g.shape == want.shape, "shape \(g.shape), golden \(want.shape) [\(c.golden)]")
        let w = want.floats, v = g.floats
        let range = (w.max() ?? 0) - (w.min() ?? 0)
        let scale = range > 0 ? range : max(w.map { abs($0) }.max() ?? 1, 1)
        var worst: Float = 0, at = 0
        for i in 0..<w.count where !(abs(v[i] - w[i]) <= worst) {
            worst = abs(v[i] - w[i]); at = i
        }
        #expect(worst <= 1e-5 * scale, "max error \(worst) at \(at) (got \(v.isEmpty ? 0 : v[at]), golden \(w.isEmpty ? 0 : w[at])), range \(range) [\(c.golden)]")
    }

    // Shape rule with every dim known; constant inputs visible as constants.
    let constants = zip(c.inputs, c.constant).map { t, k in k ? t : nil }
    let types = c.inputs.map { $0?.type }
    let inferred = try op.inferTypes(OperatorContext(node: c.node, inputTypes: types, constantInputs: constants, opset: c.opset))
    #expect(inferred.count == c.outputs.count)
    #expect(inferred.first == c.outputs[0].type, "inferred \(String(describing: inferred.first))")

    // Symbolic batch: dim 0 of input 0 named "N".
    if c.batch != "none", var t0 = types[0], t0.rank ?? 0 > 0 {
        t0.shape![0] = .symbolic("N")
        var symTypes = types
        symTypes[0] = t0
        let sym = try op.inferTypes(OperatorContext(node: c.node, inputTypes: symTypes, constantInputs: constants, opset: c.opset))
        let want = c.outputs[0].shape
        let expected0: Dim = c.batch == "keep" ? .symbolic("N") : .fixed(want[0])
        #expect(sym[0].shape == [expected0] + want.dropFirst().map { Dim.fixed($0) },
                "symbolic batch gave \(sym[0])")
    }
}
