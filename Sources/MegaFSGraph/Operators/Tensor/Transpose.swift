import Foundation

/// Transpose(data): output dim i is input dim perm[i]; perm defaults to the reversed axes.
public enum TransposeOperator: Operator {
    public static let opType = "Transpose"

    static func permutation(_ node: Node, rank: Int) throws -> [Int] {
        guard let perm = try TensorOpSupport.ints(node, "perm") else { return Array((0..<rank).reversed()) }
        guard perm.count == rank, Set(perm) == Set(0..<rank) else {
            throw TensorOpSupport.attributeError(node, "perm \(perm) is not a permutation of 0..<\(rank)")
        }
        return perm
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let t = try context.inputType(0)
        guard let shape = t.shape else {
            if let perm = try TensorOpSupport.ints(context.node, "perm") {
                return [TensorType(dtype: t.dtype, shape: Array(repeating: .unknown, count: perm.count))]
            }
            return [TensorType(dtype: t.dtype, shape: nil)]
        }
        let perm = try permutation(context.node, rank: shape.count)
        return [TensorType(dtype: t.dtype, shape: perm.map { shape[$0] })]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 1, max: 1)
        let x = try TensorOpSupport.required(inputs, 0, node)
        let perm = try permutation(node, rank: x.rank)
        let outShape = perm.map { x.shape[$0] }
        if perm == Array(0..<x.rank) { return [x] }
        let inStrides = TensorOpSupport.contiguousStrides(x.shape)
        return [TensorOpSupport.stridedCopy(x, shape: outShape, strides: perm.map { inStrides[$0] }, outShape: outShape)]
    }
}
