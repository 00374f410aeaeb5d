import Foundation

/// Gather(data, indices) along `axis` (default 0, may be negative): output shape is
/// data[..<axis] + indices.shape + data[axis+1...] (a scalar index drops the axis). Indices are
/// int64 or int32, negative ones count from the end; out-of-range indices are an error.
public enum GatherOperator: Operator {
    public static let opType = "Gather"

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        guard context.inputTypes.count == 2 else {
            throw TensorOpSupport.shapeError(node, "Gather takes 2 inputs, got \(context.inputTypes.count)")
        }
        let data = try context.inputType(0), indices = try context.inputType(1)
        try TensorOpSupport.requireDType(indices, [.int64, .int32], node, "indices")
        guard let ds = data.shape, let ish = indices.shape else { return [TensorType(dtype: data.dtype, shape: nil)] }
        let a = try OperatorSupport.normalizeAxis(try TensorOpSupport.int(node, "axis", default: 0), rank: ds.count,
                                                  node: node.displayName)
        if let idx = TensorOpSupport.constant(context, 1), let d = ds[a].value {
            _ = try checkedIndices(idx, dim: d, node)
        }
        return [TensorType(dtype: data.dtype, shape: Array(ds[..<a]) + ish + Array(ds[(a + 1)...]))]
    }

    static func checkedIndices(_ t: Tensor, dim: Int, _ node: Node) throws -> [Int] {
        try TensorOpSupport.integers(t, node, "indices").map { i in
            guard i >= -dim && i < dim else {
                throw TensorOpSupport.shapeError(node, "index \(i) is out of range for a dimension of size \(dim)")
            }
            return i < 0 ? i + dim : i
        }
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 2, max: 2)
        let data = try TensorOpSupport.required(inputs, 0, node), idx = try TensorOpSupport.required(inputs, 1, node)
        let a = try OperatorSupport.normalizeAxis(try TensorOpSupport.int(node, "axis", default: 0), rank: data.rank,
                                                  node: node.displayName)
        let dim = data.shape[a]
        let indices = try checkedIndices(idx, dim: dim, node)
        let outShape = Array(data.shape[..<a]) + idx.shape + Array(data.shape[(a + 1)...])
        let out = Tensor(zeros: data.dtype, shape: outShape)
        let outer = data.shape[..<a].reduce(1, *)
        let block = data.shape[(a + 1)...].reduce(1, *) * data.dtype.byteSize
        guard block > 0 else { return [out] }
        var dst = out.storage.pointer
        let src = data.storage.pointer
        for o in 0..<outer {
            let row = src + o * dim * block
            for i in indices {
                dst.copyMemory(from: row + i * block, byteCount: block)
                dst += block
            }
        }
        return [out]
    }
}
