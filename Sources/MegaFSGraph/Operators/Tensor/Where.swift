import Foundation

/// Where(condition, X, Y): X where condition else Y, with three-way broadcasting. Any dtype.
public enum WhereOperator: Operator {
    public static let opType = "Where"

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        guard context.inputTypes.count == 3 else {
            throw TensorOpSupport.shapeError(node, "Where takes 3 inputs, got \(context.inputTypes.count)")
        }
        let c = try context.inputType(0), x = try context.inputType(1), y = try context.inputType(2)
        try TensorOpSupport.requireDType(c, [.bool], node, "condition")
        guard x.dtype == y.dtype else {
            throw TensorOpSupport.shapeError(node, "input types \(x.dtype.name) and \(y.dtype.name) differ")
        }
        let xy = try BinaryElementwise.broadcastShape(x.shape, y.shape, node)
        return [TensorType(dtype: x.dtype, shape: try BinaryElementwise.broadcastShape(c.shape, xy, node))]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        typealias S = TensorOpSupport
        try S.checkInputCount(node, inputs, min: 3, max: 3)
        let c = try S.required(inputs, 0, node), x = try S.required(inputs, 1, node), y = try S.required(inputs, 2, node)
        try S.requireDType(c, [.bool], node, "condition")
        guard x.dtype == y.dtype else {
            throw S.shapeError(node, "input types \(x.dtype.name) and \(y.dtype.name) differ")
        }
        let shape = try OperatorSupport.broadcast(c.shape, OperatorSupport.broadcast(x.shape, y.shape, node: node.displayName),
                                                  node: node.displayName)
        switch x.dtype.byteSize {
        case 1: return [select(UInt8.self, c, x, y, shape)]
        case 2: return [select(UInt16.self, c, x, y, shape)]
        case 4: return [select(UInt32.self, c, x, y, shape)]
        default: return [select(UInt64.self, c, x, y, shape)]
        }
    }

    private static func select<T>(_: T.Type, _ c: Tensor, _ x: Tensor, _ y: Tensor, _ shape: [Int]) -> Tensor {
        typealias S = TensorOpSupport
        let out = Tensor(zeros: x.dtype, shape: shape)
        let pc = S.typedPointer(c, UInt8.self), px = S.typedPointer(x, T.self), py = S.typedPointer(y, T.self)
        let po = S.typedPointer(out, T.self)
        S.forEachRun(shape: shape, strides: [S.contiguousStrides(shape), S.broadcastStrides(c.shape, to: shape),
                                             S.broadcastStrides(x.shape, to: shape), S.broadcastStrides(y.shape, to: shape)]) { off, n, inner in
            var ic = off[1], ix = off[2], iy = off[3]
            let o = po + off[0]
            for i in 0..<n {
                o[i] = pc[ic] != 0 ? px[ix] : py[iy]
                ic += inner[1]; ix += inner[2]; iy += inner[3]
            }
        }
        return out
    }
}
