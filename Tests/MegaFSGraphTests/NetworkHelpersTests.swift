import Foundation
import Testing
@testable import MegaFSGraph

/// Shared helpers for the network operator tests.
enum NetOp {
    /// A node named "n" with inputs i0, i1, ... ("" for nil entries of `present`).
    static func node(_ op: any Operator.Type, inputs present: [Bool], attrs: [String: Attribute] = [:],
                     outputs: [String] = ["y"]) -> Node {
        var names = present.enumerated().map { $0.element ? "i\($0.offset)" : "" }
        while let last = names.last, last.isEmpty { names.removeLast() }
        return Node(name: "n", opType: op.opType, inputs: names, outputs: outputs, attributes: attrs)
    }

    /// Evaluates `op` and returns its first output.
    static func run(_ op: any Operator.Type, _ inputs: [Tensor?], _ attrs: [String: Attribute] = [:],
                    opset: Int = 17, outputs: [String] = ["y"]) throws -> Tensor {
        let n = node(op, inputs: inputs.map { $0 != nil }, attrs: attrs, outputs: outputs)
        var ins = inputs
        while ins.count > n.inputs.count { ins.removeLast() }
        return try op.evaluate(n, inputs: ins, opset: opset)[0]
    }

    /// Runs the shape rule. `types[i]` nil means the input is omitted unless a constant is given.
    static func infer(_ op: any Operator.Type, _ types: [TensorType?], constants: [Tensor?] = [],
                      _ attrs: [String: Attribute] = [:], opset: Int = 17, outputs: [String] = ["y"]) throws -> [TensorType] {
        let consts = constants + Array(repeating: nil, count: max(0, types.count - constants.count))
        let allTypes = zip(types, consts).map { t, c in t ?? c?.type }
        let n = node(op, inputs: allTypes.map { $0 != nil }, attrs: attrs, outputs: outputs)
        let count = n.inputs.count
        return try op.inferTypes(OperatorContext(node: n, inputTypes: Array(allTypes.prefix(count)),
                                                 constantInputs: Array(consts.prefix(count)), opset: opset))
    }

    static func f(_ values: [Float], _ shape: [Int]) -> Tensor { Tensor(values, shape: shape) }
    static func i64(_ values: [Int64]) -> Tensor { Tensor(values, shape: [values.count]) }
    static func type(_ dims: Dim..., dtype: DType = .float32) -> TensorType { TensorType(dtype: dtype, shape: dims) }
    static func type(_ dims: [Int], dtype: DType = .float32) -> TensorType { TensorType(dtype: dtype, dims: dims) }

    /// Whether every element is within `tol` of the expected value.
    static func close(_ t: Tensor, _ expected: [Float], tol: Float = 1e-5) -> Bool {
        let v = t.floats
        return v.count == expected.count && zip(v, expected).allSatisfy { abs($0 - $1) <= tol }
    }

    /// The message of a thrown GraphError, or nil when nothing (or something else) was thrown.
    static func graphError(_ body: () throws -> Any) -> String? {
        do { _ = try body(); return nil } catch let e as GraphError { return e.description } catch { return nil }
    }
}

@Test func networkOperatorsAreRegistered() {
    for op in ["Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "MaxPool", "AveragePool",
               "GlobalAveragePool", "GlobalMaxPool", "Resize", "Pad"] {
        #expect(OperatorRegistry.lookup(op)?.opType == op, "\(op) is not registered")
    }
}

@Test func networkSupportDivisionHelpers() {
    #expect(NetworkSupport.ceilDiv(7, 2) == 4)
    #expect(NetworkSupport.ceilDiv(-7, 2) == -3)
    #expect(NetworkSupport.ceilDiv(-8, 2) == -4)
    #expect(NetworkSupport.floorDiv(-7, 2) == -4)
    #expect(NetworkSupport.floorDiv(7, 2) == 3)
}
