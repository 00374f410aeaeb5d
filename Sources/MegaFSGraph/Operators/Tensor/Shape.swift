import Foundation

/// Shape(data) -> int64 [rank], or the dims in [start, end) (opset 15; negative values count
/// from the end, both are clamped to [0, rank]).
public enum ShapeOperator: Operator {
    public static let opType = "Shape"

    static func bounds(_ node: Node, rank: Int) throws -> Range<Int> {
        func clamp(_ v: Int) -> Int { Swift.min(Swift.max(v < 0 ? v + rank : v, 0), rank) }
        let start = clamp(try TensorOpSupport.int(node, "start", default: 0))
        let end = clamp(try TensorOpSupport.int(node, "end") ?? rank)
        return start..<Swift.max(start, end)
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let t = try context.inputType(0)
        guard let r = t.rank else { return [TensorType(dtype: .int64, shape: [.unknown])] }
        return [TensorType(dtype: .int64, dims: [try bounds(context.node, rank: r).count])]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 1, max: 1)
        let x = try TensorOpSupport.required(inputs, 0, node)
        let b = try bounds(node, rank: x.rank)
        return [Tensor(x.shape[b].map { Int64($0) }, shape: [b.count])]
    }
}

/// Size(data) -> int64 scalar element count.
public enum SizeOperator: Operator {
    public static let opType = "Size"

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        _ = try context.inputType(0)
        return [TensorType(dtype: .int64, dims: [])]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 1, max: 1)
        return [Tensor(scalar: Int64(try TensorOpSupport.required(inputs, 0, node).elementCount))]
    }
}
