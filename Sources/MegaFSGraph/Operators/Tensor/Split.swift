import Foundation

/// Split(input[, split]) along `axis` (default 0). Sizes come from the `split` input (opset
/// 13+) or attribute (before); without them, opset 18's `num_outputs` gives chunks of
/// ceil(d / n) with a smaller last chunk; otherwise the axis is split evenly over the node's
/// outputs (which must divide it).
public enum SplitOperator: Operator {
    public static let opType = "Split"

    static func axis(_ node: Node, rank: Int) throws -> Int {
        try OperatorSupport.normalizeAxis(try TensorOpSupport.int(node, "axis", default: 0), rank: rank, node: node.displayName)
    }

    /// Sizes along the axis; `explicit` are given sizes (input or attribute).
    static func sizes(_ node: Node, explicit: [Int]?, dim: Int) throws -> [Int] {
        let outputs = node.outputs.count
        if let explicit {
            guard explicit.count == outputs else {
                throw TensorOpSupport.shapeError(node, "split \(explicit) has \(explicit.count) sizes for \(outputs) outputs")
            }
            guard explicit.allSatisfy({ $0 >= 0 && $0 <= dim }), explicit.reduce(0, &+) == dim else {
                throw TensorOpSupport.shapeError(node, "split \(explicit) does not add up to the dimension \(dim)")
            }
            return explicit
        }
        if let n = try TensorOpSupport.int(node, "num_outputs") {
            guard n >= 1, n == outputs else {
                throw TensorOpSupport.attributeError(node, "num_outputs \(n) does not match the node's \(outputs) outputs")
            }
            let chunk = (dim + n - 1) / n
            guard chunk * (n - 1) < dim || (dim == 0) else {
                throw TensorOpSupport.shapeError(node, "cannot split a dimension of \(dim) into \(n) chunks of \(chunk)")
            }
            return (0..<n).map { i in Swift.max(0, Swift.min(chunk, dim - i * chunk)) }
        }
        guard outputs >= 1, dim % outputs == 0 else {
            throw TensorOpSupport.shapeError(node, "cannot split a dimension of \(dim) evenly into \(outputs) outputs")
        }
        return Array(repeating: dim / outputs, count: outputs)
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        typealias S = TensorOpSupport
        let node = context.node
        let t = try context.inputType(0)
        let outputs = node.outputs.count
        guard let shape = t.shape else { return Array(repeating: TensorType(dtype: t.dtype, shape: nil), count: outputs) }
        let a = try axis(node, rank: shape.count)
        let explicit: [Int]?
        if S.hasInput(node, 1) {
            guard let s = try S.constantIntegers(context, 1, "split") else {
                var dims = shape
                dims[a] = .unknown
                return Array(repeating: TensorType(dtype: t.dtype, shape: dims), count: outputs)
            }
            explicit = s
        } else {
            explicit = try S.ints(node, "split")
        }
        let sizes: [Dim]
        if let d = shape[a].value {
            sizes = try self.sizes(node, explicit: explicit, dim: d).map { .fixed($0) }
        } else if let explicit {
            guard explicit.count == outputs else {
                throw S.shapeError(node, "split \(explicit) has \(explicit.count) sizes for \(outputs) outputs")
            }
            sizes = explicit.map { .fixed($0) }
        } else {
            sizes = Array(repeating: .unknown, count: outputs)
        }
        return sizes.map { size in
            var dims = shape
            dims[a] = size
            return TensorType(dtype: t.dtype, shape: dims)
        }
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        typealias S = TensorOpSupport
        try S.checkInputCount(node, inputs, min: 1, max: 2)
        let x = try S.required(inputs, 0, node)
        let a = try axis(node, rank: x.rank)
        let explicit = try S.optional(inputs, 1).map { try S.integers1D($0, node, "split") } ?? S.ints(node, "split")
        let sizes = try self.sizes(node, explicit: explicit, dim: x.shape[a])
        let outer = x.shape[..<a].reduce(1, *)
        let innerBytes = x.shape[(a + 1)...].reduce(1, *) * x.dtype.byteSize
        let inRow = x.shape[a] * innerBytes
        var column = 0
        return sizes.map { size in
            var shape = x.shape
            shape[a] = size
            let out = Tensor(zeros: x.dtype, shape: shape)
            let rowBytes = size * innerBytes
            if rowBytes > 0 {
                for o in 0..<outer {
                    (out.storage.pointer + o * rowBytes).copyMemory(from: x.storage.pointer + o * inRow + column, byteCount: rowBytes)
                }
            }
            column += rowBytes
            return out
        }
    }
}
