/// ONNX Gemm (opsets 7-13 semantics): Y = alpha * A' * B' + beta * C, where A' is A (M, K) or
/// its transpose (transA), B' is B (K, N) or its transpose (transB), and the optional C is
/// unidirectionally broadcast to (M, N). Accumulates in Double.
public enum GemmOperator: Operator {
    public static let opType = "Gemm"

    struct Plan {
        var transA: Bool, transB: Bool
        var alpha: Float, beta: Float
    }

    static func attributes(_ node: Node) throws -> Plan {
        return Plan(transA: try NetworkSupport.flag(node, "transA"), transB: try NetworkSupport.flag(node, "transB"),
                    alpha: try NetworkSupport.float(node, "alpha", default: 1),
                    beta: try NetworkSupport.float(node, "beta", default: 1))
    }

    /// (M, K) of A', (K, N) of B', checking K and C's broadcastability. Unknown dims are nil.
    static func dims(_ node: Node, a: [Dim], b: [Dim], c: [Dim]?, plan: Plan) throws -> (m: Dim, n: Dim) {
        guard a.count == 2 else { throw NetworkSupport.shapeError(node, "A must be 2-D, got rank \(a.count)") }
        guard b.count == 2 else { throw NetworkSupport.shapeError(node, "B must be 2-D, got rank \(b.count)") }
        let (m, ka) = plan.transA ? (a[1], a[0]) : (a[0], a[1])
        let (kb, n) = plan.transB ? (b[1], b[0]) : (b[0], b[1])
        if let x = ka.value, let y = kb.value, x != y {
            throw NetworkSupport.shapeError(node, "inner dimensions differ: A' is \(m)x\(x), B' is \(y)x\(n)")
        }
        if let c {
            guard c.count <= 2 else {
                throw NetworkSupport.shapeError(node, "C must have rank <= 2, got rank \(c.count)")
            }
            let padded = Array(repeating: Dim.fixed(1), count: 2 - c.count) + c
            for (cd, target) in zip(padded, [m, n]) {
                if let v = cd.value, v != 1, let t = target.value, v != t {
                    throw NetworkSupport.shapeError(node, "C of shape \(c) does not broadcast to (\(m), \(n))")
                }
            }
        }
        return (m, n)
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        let at = try context.inputType(0)
        let bt = try context.inputType(1)
        try NetworkSupport.requireFloatType(at, node, "A")
        let plan = try attributes(node)
        guard let a = at.shape, let b = bt.shape else {
            return [TensorType(dtype: at.dtype, shape: [.unknown, .unknown])]
        }
        let c = NetworkSupport.optionalType(context, 2)?.shape
        let (m, n) = try dims(node, a: a, b: b, c: c, plan: plan)
        return [TensorType(dtype: at.dtype, shape: [m, n])]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        let a = try NetworkSupport.required(inputs, 0, node, "A")
        let b = try NetworkSupport.required(inputs, 1, node, "B")
        let c = NetworkSupport.optional(inputs, 2)
        try NetworkSupport.requireFloat32(a, node, "A")
        try NetworkSupport.requireFloat32(b, node, "B")
        if let c { try NetworkSupport.requireFloat32(c, node, "C") }
        let plan = try attributes(node)
        _ = try dims(node, a: a.type.shape!, b: b.type.shape!, c: c?.type.shape, plan: plan)
        let m = plan.transA ? a.shape[1] : a.shape[0]
        let k = plan.transA ? a.shape[0] : a.shape[1]
        let n = plan.transB ? b.shape[0] : b.shape[1]
        // Strides of A'(i, p) and B'(p, j) in the stored layouts.
        let (aI, aP) = plan.transA ? (1, m) : (k, 1)
        let (bP, bJ) = plan.transB ? (1, k) : (n, 1)
        let (out, y) = NetworkSupport.makeFloat([m, n])
        let ap = NetworkSupport.floats(a), bp = NetworkSupport.floats(b)
        let alpha = Double(plan.alpha), beta = Double(plan.beta)
        // C broadcast strides over (M, N).
        var cStrides = (0, 0)
        if let c {
            let s = Array(repeating: 1, count: 2 - c.rank) + c.shape
            cStrides = (s[0] == 1 ? 0 : s[1], s[1] == 1 ? 0 : 1)
        }
        let cp = c.map(NetworkSupport.floats)
        let row = UnsafeMutablePointer<Double>.allocate(capacity: max(n, 1))
        defer { row.deallocate() }
        for i in 0..<m {
            row.initialize(repeating: 0, count: n)
            if bJ != 1 && aP == 1 {
                // B stored as (N, K): contiguous dot products.
                let aRow = ap + i * aI
                for j in 0..<n {
                    let bCol = bp + j * bJ
                    var s = 0.0
                    for p in 0..<k { s += Double(aRow[p]) * Double(bCol[p]) }
                    row[j] = s
                }
            } else {
            for p in 0..<k {
                let av = Double(ap[i * aI + p * aP])
                let bRow = bp + p * bP
                if bJ == 1 {
                    for j in 0..<n { row[j] += av * Double(bRow[j]) }
                } else {
                    for j in 0..<n { row[j] += av * Double(bRow[j * bJ]) }
                }
            }
            }
            let yr = y + i * n
            if let cp {
                for j in 0..<n {
                    yr[j] = Float(alpha * row[j] + beta * Double(cp[i * cStrides.0 + j * cStrides.1]))
                }
            } else {
                for j in 0..<n { yr[j] = Float(alpha * row[j]) }
            }
        }
        return [out]
    }
}
