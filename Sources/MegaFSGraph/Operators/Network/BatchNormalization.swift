/// ONNX BatchNormalization, inference form (opsets 9-15; earlier opsets' `spatial=1` form):
/// Y = (X - mean) / sqrt(var + epsilon) * scale + B over channel axis 1 of X (N, C, ...).
/// Training mode (`training_mode=1`, or extra outputs requested) is rejected.
public enum BatchNormalizationOperator: Operator {
    public static let opType = "BatchNormalization"

    static func validate(_ node: Node, x: [Dim], params: [[Dim]?]) throws {
        if try NetworkSupport.int(node, "training_mode", default: 0) != 0 {
            throw GraphError.unsupportedOperator("node \(node.displayName): BatchNormalization with training_mode=1 is not supported (inference only)")
        }
        if node.outputs.dropFirst().contains(where: { !$0.isEmpty }) {
            throw GraphError.unsupportedOperator("node \(node.displayName): BatchNormalization with running/saved statistics outputs (training) is not supported; only output Y")
        }
        if let spatial = node.int("spatial"), spatial != 1 {
            throw GraphError.unsupportedOperator("node \(node.displayName): BatchNormalization with spatial=0 (opset < 9) is not supported")
        }
        let epsilon = try NetworkSupport.float(node, "epsilon", default: 1e-5)
        guard epsilon >= 0, epsilon.isFinite else {
            throw NetworkSupport.attributeError(node, "epsilon \(epsilon) must be a non-negative number")
        }
        guard x.count >= 2 else {
            throw NetworkSupport.shapeError(node, "X must have rank >= 2 (N, C, ...), got rank \(x.count)")
        }
        let names = ["scale", "B", "mean", "var"]
        for (i, p) in params.enumerated() {
            guard let p else { continue }
            guard p.count == 1 else {
                throw NetworkSupport.shapeError(node, "\(names[i]) must be 1-D of the channel count, got rank \(p.count)")
            }
            if let c = x[1].value, let v = p[0].value, c != v {
                throw NetworkSupport.shapeError(node, "\(names[i]) has \(v) values for \(c) channels")
            }
        }
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        let xt = try context.inputType(0)
        try NetworkSupport.requireFloatType(xt, node, "X")
        guard node.inputs.count >= 5 else {
            throw NetworkSupport.shapeError(node, "needs 5 inputs (X, scale, B, mean, var), got \(node.inputs.count)")
        }
        guard let x = xt.shape else { return [TensorType(dtype: xt.dtype, shape: nil)] }
        try validate(node, x: x, params: (1...4).map { NetworkSupport.optionalType(context, $0)?.shape })
        return [xt]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        let x = try NetworkSupport.required(inputs, 0, node, "X")
        let roles = ["scale", "B", "mean", "var"]
        let params = try (1...4).map { try NetworkSupport.required(inputs, $0, node, roles[$0 - 1]) }
        try NetworkSupport.requireFloat32(x, node, "X")
        for (p, r) in zip(params, roles) { try NetworkSupport.requireFloat32(p, node, r) }
        try validate(node, x: x.type.shape!, params: params.map { $0.type.shape })
        let epsilon = Double(try NetworkSupport.float(node, "epsilon", default: 1e-5))
        let n = x.shape[0], c = x.shape[1]
        let inner = x.shape.dropFirst(2).reduce(1, *)
        let scale = NetworkSupport.floats(params[0]), bias = NetworkSupport.floats(params[1])
        let mean = NetworkSupport.floats(params[2]), variance = NetworkSupport.floats(params[3])
        let (out, y) = NetworkSupport.makeFloat(x.shape)
        let xp = NetworkSupport.floats(x)
        for ci in 0..<c {
            let a = Double(scale[ci]) / (Double(variance[ci]) + epsilon).squareRoot()
            let m = Double(mean[ci]), bb = Double(bias[ci])
            for ni in 0..<n {
                let base = (ni * c + ci) * inner
                for i in 0..<inner { y[base + i] = Float((Double(xp[base + i]) - m) * a + bb) }
            }
        }
        return [out]
    }
}
