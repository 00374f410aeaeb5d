/// DequantizeLinear(x, x_scale, x_zero_point?) -> (x - zero_point) * scale, as float32.
///
/// `x` is int8, uint8 or int32; `x_scale` float32, a scalar (per tensor) or 1-D along `axis`
/// (per axis, opset >= 13; `axis` defaults to 1, negative counts from the end); the zero point
/// has the scale's shape and `x`'s type, 0 when omitted. Blocked quantization (opset 21
/// `block_size` > 0) is refused. Weight-only int8 models written by `megafs convert --quantize
/// int8` use this node with an int8 initializer, per-output-channel scales and no zero point.
public enum DequantizeLinearOperator: Operator {
    public static let opType = "DequantizeLinear"

    /// The normalised quantization axis for an input of `rank` when the scale has `scaleCount`
    /// elements; nil for per-tensor quantization.
    static func axis(_ node: Node, rank: Int, scaleShape: [Int]) throws -> Int? {
        if (try TensorOpSupport.int(node, "block_size") ?? 0) != 0 {
            throw TensorOpSupport.attributeError(node, "blocked quantization (block_size) is not supported")
        }
        if scaleShape.reduce(1, *) == 1 && scaleShape.count <= 1 { return nil }   // one scale for all
        guard scaleShape.count == 1 else {
            throw TensorOpSupport.shapeError(node, "x_scale must be a scalar or 1-D, got shape \(scaleShape)")
        }
        let a = try TensorOpSupport.int(node, "axis", default: 1)
        return try OperatorSupport.normalizeAxis(a, rank: rank, node: node.displayName)
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let x = try context.inputType(0)
        let scale = try context.inputType(1)
        try TensorOpSupport.requireDType(x, [.int8, .uint8, .int32], context.node, "x")
        try TensorOpSupport.requireDType(scale, [.float32], context.node, "x_scale")
        if let zp = TensorOpSupport.optionalType(context, 2), zp.dtype != x.dtype {
            throw TensorOpSupport.shapeError(context.node, "x_zero_point is \(zp.dtype.name) but x is \(x.dtype.name)")
        }
        if let xs = x.shape, let ss = scale.concreteShape, let axis = try axis(context.node, rank: xs.count, scaleShape: ss),
           let n = xs[axis].value, n != ss[0] {
            throw TensorOpSupport.shapeError(context.node, "x_scale has \(ss[0]) elements but axis \(axis) of x has \(n)")
        }
        return [TensorType(dtype: .float32, shape: x.shape)]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 2, max: 3)
        let x = try TensorOpSupport.required(inputs, 0, node)
        let scale = try TensorOpSupport.required(inputs, 1, node)
        try TensorOpSupport.requireDType(x, [.int8, .uint8, .int32], node, "x")
        try TensorOpSupport.requireDType(scale, [.float32], node, "x_scale")
        let zeroPoint = TensorOpSupport.optional(inputs, 2)
        if let zp = zeroPoint {
            guard zp.dtype == x.dtype, zp.shape == scale.shape || zp.elementCount == scale.elementCount else {
                throw TensorOpSupport.shapeError(node, "x_zero_point must match x_scale's shape and x's type")
            }
        }
        let axis = try axis(node, rank: x.shape.count, scaleShape: scale.shape)
        let scales = scale.floats
        let zps = zeroPoint?.int64s ?? Array(repeating: 0, count: scales.count)
        // Element i belongs to channel (i / inner) % channels along the axis.
        var channels = 1, inner = x.elementCount
        if let axis {
            channels = x.shape[axis]
            inner = x.shape[(axis + 1)...].reduce(1, *)
            guard scales.count == channels else {
                throw TensorOpSupport.shapeError(node, "x_scale has \(scales.count) elements but axis \(axis) of x has \(channels)")
            }
        } else {
            guard scales.count == 1 else { throw TensorOpSupport.shapeError(node, "a per-tensor x_scale must have one element") }
        }
        let values = x.int64s
        var out = [Float](repeating: 0, count: values.count)
        for i in 0..<values.count {
            let c = inner == 0 ? 0 : (i / inner) % channels
            out[i] = Float(Int32(truncatingIfNeeded: values[i] - zps[c])) * scales[c]
        }
        return [Tensor(out, shape: x.shape)]
    }
}
