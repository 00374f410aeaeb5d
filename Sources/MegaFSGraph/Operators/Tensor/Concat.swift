import Foundation

/// Concat(inputs...) along `axis` (required, may be negative). All inputs share dtype, rank
/// and every other dimension; zero-sized inputs are allowed.
public enum ConcatOperator: Operator {
    public static let opType = "Concat"

    static func axis(_ node: Node) throws -> Int {
        guard let a = try TensorOpSupport.int(node, "axis") else {
            throw TensorOpSupport.attributeError(node, "Concat needs the attribute axis")
        }
        return a
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        guard !context.inputTypes.isEmpty else { throw TensorOpSupport.shapeError(node, "Concat needs at least one input") }
        let types = try (0..<context.inputTypes.count).map { try context.inputType($0) }
        let dtype = types[0].dtype
        for t in types where t.dtype != dtype {
            throw TensorOpSupport.shapeError(node, "input types \(dtype.name) and \(t.dtype.name) differ")
        }
        let axis = try self.axis(node)
        guard let rank = types.compactMap(\.rank).first else { return [TensorType(dtype: dtype, shape: nil)] }
        let a = try OperatorSupport.normalizeAxis(axis, rank: rank, node: node.displayName)
        var out = Array(repeating: Dim.unknown, count: rank)
        var first = true
        var axisSum: Int? = 0
        for t in types {
            guard let s = t.shape else { axisSum = nil; continue }
            guard s.count == rank else {
                throw TensorOpSupport.shapeError(node, "inputs of rank \(rank) and \(s.count) cannot be concatenated")
            }
            for i in 0..<rank where i != a {
                out[i] = first ? s[i] : try TensorOpSupport.unify(out[i], s[i], node, "concatenating on axis \(a)")
            }
            first = false
            if let v = s[a].value, let sum = axisSum { axisSum = sum + v } else { axisSum = nil }
        }
        out[a] = axisSum.map { .fixed($0) } ?? .unknown
        return [TensorType(dtype: dtype, shape: out)]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 1, max: Int.max)
        let xs = try (0..<inputs.count).map { try TensorOpSupport.required(inputs, $0, node) }
        let first = xs[0]
        let a = try OperatorSupport.normalizeAxis(try axis(node), rank: first.rank, node: node.displayName)
        var outShape = first.shape
        outShape[a] = 0
        for x in xs {
            guard x.dtype == first.dtype else {
                throw TensorOpSupport.shapeError(node, "input types \(first.dtype.name) and \(x.dtype.name) differ")
            }
            guard x.rank == first.rank,
                  (0..<x.rank).allSatisfy({ $0 == a || x.shape[$0] == first.shape[$0] }) else {
                throw TensorOpSupport.shapeError(node, "shapes \(first.shape) and \(x.shape) cannot be concatenated on axis \(a)")
            }
            outShape[a] += x.shape[a]
        }
        if xs.count == 1 { return [first] }
        let out = Tensor(zeros: first.dtype, shape: outShape)
        let width = first.dtype.byteSize
        let outer = outShape[..<a].reduce(1, *)
        let innerBytes = outShape[(a + 1)...].reduce(1, *) * width
        let outRow = outShape[a] * innerBytes
        var column = 0
        for x in xs {
            let rowBytes = x.shape[a] * innerBytes
            if rowBytes > 0 {
                let src = x.storage.pointer, dst = out.storage.pointer + column
                for o in 0..<outer {
                    (dst + o * outRow).copyMemory(from: src + o * rowBytes, byteCount: rowBytes)
                }
            }
            column += rowBytes
        }
        return [out]
    }
}
