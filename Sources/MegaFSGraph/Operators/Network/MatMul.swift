/// ONNX MatMul (opsets 1-13): NumPy `matmul`. A 1-D first operand is a row vector (its axis
/// removed from the result), a 1-D second operand a column vector; leading (batch) axes
/// broadcast. Accumulates in Double.
public enum MatMulOperator: Operator {
    public static let opType = "MatMul"

    /// Output shape from the operand shapes (works for fixed and symbolic dims).
    static func outputShape(_ node: Node, a: [Dim], b: [Dim]) throws -> [Dim] {
        guard !a.isEmpty, !b.isEmpty else {
            throw NetworkSupport.shapeError(node, "operands must have rank >= 1, got ranks \(a.count) and \(b.count)")
        }
        let a2 = a.count == 1 ? [Dim.fixed(1)] + a : a
        let b2 = b.count == 1 ? b + [Dim.fixed(1)] : b
        let ka = a2[a2.count - 1], kb = b2[b2.count - 2]
        if let x = ka.value, let y = kb.value, x != y {
            throw NetworkSupport.shapeError(node, "inner dimensions differ: \(a) x \(b)")
        }
        let batch = try OperatorSupport.broadcast(Array(a2.dropLast(2)), Array(b2.dropLast(2)), node: node.displayName)
        var out = batch
        if a.count > 1 { out.append(a2[a2.count - 2]) }
        if b.count > 1 { out.append(b2[b2.count - 1]) }
        return out
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        let at = try context.inputType(0)
        let bt = try context.inputType(1)
        guard at.dtype == bt.dtype else {
            throw NetworkSupport.shapeError(node, "operand types differ: \(at.dtype.name) and \(bt.dtype.name)")
        }
        guard let a = at.shape, let b = bt.shape else { return [TensorType(dtype: at.dtype, shape: nil)] }
        return [TensorType(dtype: at.dtype, shape: try outputShape(node, a: a, b: b))]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        let a = try NetworkSupport.required(inputs, 0, node, "A")
        let b = try NetworkSupport.required(inputs, 1, node, "B")
        try NetworkSupport.requireFloat32(a, node, "A")
        try NetworkSupport.requireFloat32(b, node, "B")
        let outShape = try outputShape(node, a: a.type.shape!, b: b.type.shape!).map { $0.value! }
        let a2 = a.rank == 1 ? [1] + a.shape : a.shape
        let b2 = b.rank == 1 ? b.shape + [1] : b.shape
        let m = a2[a2.count - 2], k = a2[a2.count - 1], n = b2[b2.count - 1]
        let aBatch = Array(a2.dropLast(2)), bBatch = Array(b2.dropLast(2))
        let batch = try OperatorSupport.broadcast(aBatch, bBatch, node: node.displayName)
        let rank = batch.count
        // Per batch axis: element strides of each operand's matrices (0 where broadcast).
        func batchStrides(_ dims: [Int], matrix: Int) -> [Int] {
            let padded = Array(repeating: 1, count: rank - dims.count) + dims
            let s = OperatorSupport.strides(padded)
            return (0..<rank).map { padded[$0] == 1 ? 0 : s[$0] * matrix }
        }
        let aS = batchStrides(aBatch, matrix: m * k)
        let bS = batchStrides(bBatch, matrix: k * n)
        let batchCount = batch.reduce(1, *)
        let (out, y) = NetworkSupport.makeFloat(outShape)
        let ap = NetworkSupport.floats(a), bp = NetworkSupport.floats(b)
        let row = UnsafeMutablePointer<Double>.allocate(capacity: max(n, 1))
        defer { row.deallocate() }
        var index = Array(repeating: 0, count: rank)
        for bi in 0..<batchCount {
            var aOff = 0, bOff = 0
            for d in 0..<rank { aOff += index[d] * aS[d]; bOff += index[d] * bS[d] }
            let am = ap + aOff, bm = bp + bOff, ym = y + bi * m * n
            for i in 0..<m {
                row.initialize(repeating: 0, count: n)
                for p in 0..<k {
                    let av = Double(am[i * k + p])
                    let br = bm + p * n
                    for j in 0..<n { row[j] += av * Double(br[j]) }
                }
                for j in 0..<n { ym[i * n + j] = Float(row[j]) }
            }
            // Advance the batch odometer.
            var d = rank - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < batch[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return [out]
    }
}
