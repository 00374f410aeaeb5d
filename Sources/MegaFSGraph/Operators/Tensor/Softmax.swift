import Foundation

// Softmax and LogSoftmax. Opset 13+: along the single axis `axis` (default -1). Before opset
// 13: the input is coerced to 2-D [prod(d[0..<axis]), prod(d[axis...])] and normalised along
// the second dimension (default axis 1). float32, and float16 through float32.

enum SoftmaxFamily {
    static func axis(_ node: Node, rank: Int, opset: Int) throws -> Int {
        let axis = try TensorOpSupport.int(node, "axis", default: opset >= 13 ? -1 : 1)
        if opset < 13 {
            // Old semantics accept axis == rank (a [N, 1] coercion).
            let a = axis < 0 ? axis + rank : axis
            guard a >= 0 && a <= rank else {
                throw TensorOpSupport.attributeError(node, "axis \(axis) is out of range for rank \(rank)")
            }
            return a
        }
        return try OperatorSupport.normalizeAxis(axis, rank: rank, node: node.displayName)
    }

    static func infer(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        guard context.inputTypes.count == 1 else {
            throw TensorOpSupport.shapeError(node, "\(node.opType) takes 1 input, got \(context.inputTypes.count)")
        }
        let t = try context.inputType(0)
        try TensorOpSupport.requireDType(t, TensorOpSupport.floating, node)
        if let r = t.rank { _ = try axis(node, rank: r, opset: context.opset) }
        return [t]
    }

    static func evaluate(_ node: Node, _ inputs: [Tensor?], opset: Int, log: Bool) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 1, max: 1)
        let x = try TensorOpSupport.required(inputs, 0, node)
        try TensorOpSupport.requireDType(x, TensorOpSupport.floating, node)
        let a = try axis(node, rank: x.rank, opset: opset)
        let outer = x.shape[..<a].reduce(1, *)
        let n: Int, inner: Int
        if opset >= 13 {
            n = x.shape[a]
            inner = x.shape[(a + 1)...].reduce(1, *)
        } else {
            n = x.shape[a...].reduce(1, *)
            inner = 1
        }
        return [TensorOpSupport.viaFloat32(x) { kernel($0, outer: outer, n: n, inner: inner, log: log) }]
    }

    private static func kernel(_ x: Tensor, outer: Int, n: Int, inner: Int, log: Bool) -> Tensor {
        let out = Tensor(zeros: .float32, shape: x.shape)
        let px = TensorOpSupport.typedPointer(x, Float.self), po = TensorOpSupport.typedPointer(out, Float.self)
        for o in 0..<outer {
            for j in 0..<inner {
                let base = o * n * inner + j
                var m = -Float.infinity
                for k in 0..<n { m = Swift.max(m, px[base + k * inner]) }
                var sum: Double = 0
                for k in 0..<n {
                    let e = Foundation.exp(px[base + k * inner] - m)
                    if !log { po[base + k * inner] = e }
                    sum += Double(e)
                }
                if log {
                    let ls = Float(Foundation.log(sum))
                    for k in 0..<n { po[base + k * inner] = px[base + k * inner] - m - ls }
                } else {
                    let inv = 1 / sum
                    for k in 0..<n { po[base + k * inner] = Float(Double(po[base + k * inner]) * inv) }
                }
            }
        }
        return out
    }
}

public enum SoftmaxOperator: Operator {
    public static let opType = "Softmax"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] { try SoftmaxFamily.infer(context) }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try SoftmaxFamily.evaluate(node, inputs, opset: opset, log: false)
    }
}

public enum LogSoftmaxOperator: Operator {
    public static let opType = "LogSoftmax"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] { try SoftmaxFamily.infer(context) }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try SoftmaxFamily.evaluate(node, inputs, opset: opset, log: true)
    }
}
