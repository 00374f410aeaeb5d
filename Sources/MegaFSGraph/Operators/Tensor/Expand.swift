import Foundation

/// Expand(input, shape): broadcasts input and `shape` against each other (bidirectionally, so
/// a 1 in `shape` keeps the input's dimension and `shape` may have a lower rank).
public enum ExpandOperator: Operator {
    public static let opType = "Expand"

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        guard context.inputTypes.count == 2 else {
            throw TensorOpSupport.shapeError(node, "Expand takes 2 inputs, got \(context.inputTypes.count)")
        }
        let t = try context.inputType(0)
        let target: [Dim]
        if let s = try TensorOpSupport.constantIntegers(context, 1, "shape") {
            guard s.allSatisfy({ $0 >= 0 }) else { throw TensorOpSupport.shapeError(node, "negative dimension in shape \(s)") }
            target = s.map { .fixed($0) }
        } else if let k = TensorOpSupport.staticLength(context, 1) {
            target = Array(repeating: .unknown, count: k)
        } else {
            return [TensorType(dtype: t.dtype, shape: nil)]
        }
        guard let shape = t.shape else { return [TensorType(dtype: t.dtype, shape: nil)] }
        let out = try OperatorSupport.broadcast(shape, target, node: node.displayName)
        _ = try TensorOpSupport.checkedCount(out.compactMap(\.value), node)   // a 10^12-element target is refused here
        return [TensorType(dtype: t.dtype, shape: out)]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 2, max: 2)
        let x = try TensorOpSupport.required(inputs, 0, node)
        let target = try TensorOpSupport.integers1D(TensorOpSupport.required(inputs, 1, node), node, "shape")
        guard target.allSatisfy({ $0 >= 0 }) else { throw TensorOpSupport.shapeError(node, "negative dimension in shape \(target)") }
        let outShape = try OperatorSupport.broadcast(x.shape, target, node: node.displayName)
        _ = try TensorOpSupport.checkedCount(outShape, node)
        if outShape == x.shape { return [x] }
        return [TensorOpSupport.stridedCopy(x, shape: outShape, strides: TensorOpSupport.broadcastStrides(x.shape, to: outShape),
                                            outShape: outShape)]
    }
}

/// Tile(input, repeats): dimension i repeated repeats[i] times (repeats: int64, one per axis, >= 0).
public enum TileOperator: Operator {
    public static let opType = "Tile"

    static func check(_ repeats: [Int], rank: Int, _ node: Node) throws {
        guard repeats.count == rank else {
            throw TensorOpSupport.shapeError(node, "repeats \(repeats) has \(repeats.count) entries for a rank-\(rank) input")
        }
        guard repeats.allSatisfy({ $0 >= 0 }) else { throw TensorOpSupport.shapeError(node, "negative repeat in \(repeats)") }
    }

    static func tiled(_ d: Int, _ r: Int, _ node: Node) throws -> Int {
        let (v, overflow) = d.multipliedReportingOverflow(by: r)
        guard !overflow else { throw TensorOpSupport.shapeError(node, "tiling \(d) by \(r) overflows") }
        return v
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        guard context.inputTypes.count == 2 else {
            throw TensorOpSupport.shapeError(node, "Tile takes 2 inputs, got \(context.inputTypes.count)")
        }
        let t = try context.inputType(0)
        guard let shape = t.shape else { return [TensorType(dtype: t.dtype, shape: nil)] }
        guard let repeats = try TensorOpSupport.constantIntegers(context, 1, "repeats") else {
            return [TensorType(dtype: t.dtype, shape: Array(repeating: .unknown, count: shape.count))]
        }
        try check(repeats, rank: shape.count, node)
        let out: [Dim] = try zip(shape, repeats).map { d, r in
            if let v = d.value { return .fixed(try tiled(v, r, node)) }
            return r == 1 ? d : (r == 0 ? .fixed(0) : .unknown)
        }
        _ = try TensorOpSupport.checkedCount(out.compactMap(\.value), node)
        return [TensorType(dtype: t.dtype, shape: out)]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 2, max: 2)
        let x = try TensorOpSupport.required(inputs, 0, node)
        let repeats = try TensorOpSupport.integers1D(TensorOpSupport.required(inputs, 1, node), node, "repeats")
        try check(repeats, rank: x.rank, node)
        let outShape = try zip(x.shape, repeats).map { try tiled($0, $1, node) }
        _ = try TensorOpSupport.checkedCount(outShape, node)
        // View the output as [r0, d0, r1, d1, ...] reading the input with stride 0 on the r axes.
        let inStrides = TensorOpSupport.contiguousStrides(x.shape)
        var shape: [Int] = [], strides: [Int] = []
        for i in 0..<x.rank {
            shape += [repeats[i], x.shape[i]]
            strides += [0, inStrides[i]]
        }
        return [TensorOpSupport.stridedCopy(x, shape: shape, strides: strides, outShape: outShape)]
    }
}
