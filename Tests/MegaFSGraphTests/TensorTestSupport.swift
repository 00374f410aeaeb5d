import Foundation
import Testing
@testable import MegaFSGraph

/// Small helpers for the tensor operator tests.
enum TensorTestSupport {
    static func node(_ op: any Operator.Type, inputs: Int, outputs: Int = 1, attrs: [String: Attribute] = [:],
                     omitted: Set<Int> = [], name: String = "n") -> Node {
        Node(name: name, opType: op.opType, inputs: (0..<inputs).map { omitted.contains($0) ? "" : "in\($0)" },
             outputs: (0..<outputs).map { "out\($0)" }, attributes: attrs)
    }

    /// Runs the reference kernel of `op` on `inputs` (nil = omitted optional input).
    static func run(_ op: any Operator.Type, _ inputs: [Tensor?], _ attrs: [String: Attribute] = [:],
                    opset: Int = 17, outputs: Int = 1) throws -> [Tensor] {
        let n = node(op, inputs: inputs.count, outputs: outputs, attrs: attrs,
                     omitted: Set(inputs.indices.filter { inputs[$0] == nil }))
        return try op.evaluate(n, inputs: inputs, opset: opset)
    }

    static func run1(_ op: any Operator.Type, _ inputs: [Tensor?], _ attrs: [String: Attribute] = [:],
                     opset: Int = 17) throws -> Tensor {
        let r = try run(op, inputs, attrs, opset: opset)
        guard r.count == 1 else { throw GraphError.invalidGraph("expected one output, got \(r.count)") }
        return r[0]
    }

    /// Runs the shape rule of `op`; `constants` are aligned with `types` (missing = not constant).
    static func infer(_ op: any Operator.Type, _ types: [TensorType?], constants: [Int: Tensor] = [:],
                      _ attrs: [String: Attribute] = [:], opset: Int = 17, outputs: Int = 1) throws -> [TensorType] {
        let n = node(op, inputs: types.count, outputs: outputs, attrs: attrs,
                     omitted: Set(types.indices.filter { types[$0] == nil && constants[$0] == nil }))
        let ts = types.enumerated().map { i, t in t ?? constants[i]?.type }
        return try op.inferTypes(OperatorContext(node: n, inputTypes: ts, constantInputs: types.indices.map { constants[$0] },
                                                 opset: opset))
    }

    static func f32(_ dims: [Dim]) -> TensorType { TensorType(dtype: .float32, shape: dims) }
    static func f32(_ dims: Int...) -> TensorType { TensorType(dtype: .float32, dims: dims) }
    static let N = Dim.symbolic("N")
    static let H = Dim.symbolic("H")
    static let W = Dim.symbolic("W")

    static func floats(_ values: [Float], _ shape: [Int]) -> Tensor { Tensor(values, shape: shape) }
    static func i64(_ values: [Int64], _ shape: [Int]? = nil) -> Tensor { Tensor(values, shape: shape ?? [values.count]) }
    static func bools(_ values: [Bool], _ shape: [Int]? = nil) -> Tensor { Tensor(values, shape: shape ?? [values.count]) }

    /// Expects `body` to throw a GraphError whose message names node "n" and contains `fragment`.
    static func expectGraphError(_ fragment: String, sourceLocation: SourceLocation = #_sourceLocation,
                                 _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected an error containing '\(fragment)'", sourceLocation: sourceLocation)
        } catch let error as GraphError {
            let text = error.description
            #expect(text.contains("node n"), "error does not name the node: \(text)", sourceLocation: sourceLocation)
            #expect(text.contains(fragment), "error '\(text)' does not mention '\(fragment)'", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }
}
