import Foundation

// Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceSumSquare,
// ReduceL1, ReduceL2.
//
// Axes come from the attribute `axes` (ReduceSum before opset 13, the others before 18) or
// from the optional second input (ReduceSum 13+, the others 18+); whichever the node has is
// used. No axes (or an empty list) reduces every axis, unless noop_with_empty_axes = 1, which
// makes the node an identity. keepdims defaults to 1.
//
// Float sums/products accumulate in double; integer ones wrap in int64 and are truncated back
// (C semantics); integer ReduceMean truncates toward zero. Reducing an empty axis gives the
// identity of the reduction (0 for sums, 1 for products, -inf / the type's minimum for Max,
// +inf / the type's maximum for Min) and 0 for a mean, as ONNX Runtime does. ReduceMax/Min skip
// NaN (ONNX leaves NaN handling open; ONNX Runtime skips a NaN that follows a number).

enum ReductionSupport {
    enum Kind { case sum, mean, max, min, prod, sumSquare, l1, l2 }

    static func keepdims(_ node: Node) throws -> Bool {
        let k = try TensorOpSupport.int(node, "keepdims", default: 1)
        guard k == 0 || k == 1 else { throw TensorOpSupport.attributeError(node, "keepdims must be 0 or 1, got \(k)") }
        return k == 1
    }

    static func noop(_ node: Node) throws -> Bool {
        let k = try TensorOpSupport.int(node, "noop_with_empty_axes", default: 0)
        guard k == 0 || k == 1 else {
            throw TensorOpSupport.attributeError(node, "noop_with_empty_axes must be 0 or 1, got \(k)")
        }
        return k == 1
    }

    /// Normalised, checked axes; `nil` means the identity (empty axes with noop set).
    static func resolveAxes(_ axes: [Int], rank: Int, noop: Bool, _ node: Node) throws -> [Int]? {
        if axes.isEmpty { return noop ? nil : Array(0..<rank) }
        let normalized = try axes.map { try OperatorSupport.normalizeAxis($0, rank: rank, node: node.displayName) }
        guard Set(normalized).count == normalized.count else {
            throw TensorOpSupport.attributeError(node, "axes \(axes) repeat an axis")
        }
        return normalized.sorted()
    }

    static func infer(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        guard (1...2).contains(context.inputTypes.count) else {
            throw TensorOpSupport.shapeError(node, "\(node.opType) takes 1 or 2 inputs, got \(context.inputTypes.count)")
        }
        let t = try context.inputType(0)
        try TensorOpSupport.requireDType(t, TensorOpSupport.numeric, node)
        let keep = try keepdims(node), noop = try noop(node)
        let axes: [Int]?
        if TensorOpSupport.hasInput(node, 1) {
            axes = try TensorOpSupport.constantIntegers(context, 1, "axes")
        } else {
            axes = try TensorOpSupport.ints(node, "axes") ?? []
        }
        guard let shape = t.shape else { return [TensorType(dtype: t.dtype, shape: nil)] }
        guard let axes else {
            if keep { return [TensorType(dtype: t.dtype, shape: Array(repeating: .unknown, count: shape.count))] }
            if let k = TensorOpSupport.staticLength(context, 1), k > 0, k <= shape.count {
                return [TensorType(dtype: t.dtype, shape: Array(repeating: .unknown, count: shape.count - k))]
            }
            return [TensorType(dtype: t.dtype, shape: nil)]
        }
        guard let resolved = try resolveAxes(axes, rank: shape.count, noop: noop, node) else { return [t] }
        var out: [Dim] = []
        for (i, d) in shape.enumerated() {
            if resolved.contains(i) { if keep { out.append(.fixed(1)) } } else { out.append(d) }
        }
        return [TensorType(dtype: t.dtype, shape: out)]
    }

    static func evaluate(_ kind: Kind, _ node: Node, _ inputs: [Tensor?]) throws -> [Tensor] {
        typealias S = TensorOpSupport
        try S.checkInputCount(node, inputs, min: 1, max: 2)
        let x = try S.required(inputs, 0, node)
        try S.requireDType(x, S.numeric, node)
        let keep = try keepdims(node), noop = try noop(node)
        let axes: [Int]
        if let a = S.optional(inputs, 1) {
            axes = try S.integers1D(a, node, "axes")
        } else {
            axes = try S.ints(node, "axes") ?? []
        }
        guard let resolved = try resolveAxes(axes, rank: x.rank, noop: noop, node) else { return [x] }
        var keptShape = x.shape
        var count = 1
        for a in resolved { count *= x.shape[a]; keptShape[a] = 1 }
        var outStrides = S.contiguousStrides(keptShape)
        for a in resolved { outStrides[a] = 0 }
        let finalShape = keep ? keptShape : x.shape.enumerated().filter { !resolved.contains($0.offset) }.map(\.element)
        let result: Tensor
        switch x.dtype {
        case .float32, .float16:
            result = S.viaFloat32(x) { reduceFloat(kind, $0, keptShape, outStrides, count) }
        case .int64: result = reduceInt(kind, x, Int64.self, keptShape, outStrides, count)
        case .int32: result = reduceInt(kind, x, Int32.self, keptShape, outStrides, count)
        case .int8: result = reduceInt(kind, x, Int8.self, keptShape, outStrides, count)
        case .uint8: result = reduceInt(kind, x, UInt8.self, keptShape, outStrides, count)
        case .bool: preconditionFailure("rejected above")
        }
        return [result.reshaped(finalShape)]
    }

    /// Folds every input element into `acc[outOffset]`.
    @inline(__always)
    private static func accumulate<T, A>(_ x: Tensor, _: T.Type, _ acc: UnsafeMutablePointer<A>, _ outStrides: [Int],
                                         _ combine: (A, T) -> A) {
        let px = TensorOpSupport.typedPointer(x, T.self)
        TensorOpSupport.forEachRun(shape: x.shape, strides: [TensorOpSupport.contiguousStrides(x.shape), outStrides]) { off, n, inner in
            let xs = px + off[0]
            let so = inner[1]
            if so == 0 {
                var s = acc[off[1]]
                for i in 0..<n { s = combine(s, xs[i]) }
                acc[off[1]] = s
            } else {
                var o = off[1]
                for i in 0..<n { acc[o] = combine(acc[o], xs[i]); o += so }
            }
        }
    }

    private static func reduceFloat(_ kind: Kind, _ x: Tensor, _ outShape: [Int], _ outStrides: [Int], _ count: Int) -> Tensor {
        let outCount = outShape.reduce(1, *)
        let initial: Double
        switch kind {
        case .prod: initial = 1
        case .max: initial = -.infinity
        case .min: initial = .infinity
        default: initial = 0
        }
        var acc = [Double](repeating: initial, count: outCount)
        acc.withUnsafeMutableBufferPointer { buf in
            let p = buf.baseAddress!
            switch kind {
            case .sum, .mean: accumulate(x, Float.self, p, outStrides) { $0 + Double($1) }
            case .prod: accumulate(x, Float.self, p, outStrides) { $0 * Double($1) }
            case .sumSquare, .l2: accumulate(x, Float.self, p, outStrides) { $0 + Double($1) * Double($1) }
            case .l1: accumulate(x, Float.self, p, outStrides) { $0 + Double(Swift.abs($1)) }
            case .max: accumulate(x, Float.self, p, outStrides) { a, v in Double(v) > a ? Double(v) : a }
            case .min: accumulate(x, Float.self, p, outStrides) { a, v in Double(v) < a ? Double(v) : a }
            }
        }
        let out = Tensor(zeros: .float32, shape: outShape)
        let po = TensorOpSupport.typedPointer(out, Float.self)
        for i in 0..<outCount {
            switch kind {
            case .mean: po[i] = count == 0 ? 0 : Float(acc[i] / Double(count))
            case .l2: po[i] = Float(acc[i].squareRoot())
            default: po[i] = Float(acc[i])
            }
        }
        return out
    }

    private static func reduceInt<T: FixedWidthInteger>(_ kind: Kind, _ x: Tensor, _: T.Type, _ outShape: [Int],
                                                        _ outStrides: [Int], _ count: Int) -> Tensor {
        let outCount = outShape.reduce(1, *)
        let initial: Int64
        switch kind {
        case .prod: initial = 1
        case .max: initial = Int64(T.min)
        case .min: initial = Int64(T.max)
        default: initial = 0
        }
        var acc = [Int64](repeating: initial, count: outCount)
        acc.withUnsafeMutableBufferPointer { buf in
            let p = buf.baseAddress!
            switch kind {
            case .sum, .mean: accumulate(x, T.self, p, outStrides) { $0 &+ Int64($1) }
            case .prod: accumulate(x, T.self, p, outStrides) { $0 &* Int64($1) }
            case .sumSquare, .l2: accumulate(x, T.self, p, outStrides) { $0 &+ Int64($1) &* Int64($1) }
            case .l1: accumulate(x, T.self, p, outStrides) { $0 &+ (($1 < 0) ? 0 &- Int64($1) : Int64($1)) }
            case .max: accumulate(x, T.self, p, outStrides) { Swift.max($0, Int64($1)) }
            case .min: accumulate(x, T.self, p, outStrides) { Swift.min($0, Int64($1)) }
            }
        }
        let out = Tensor(zeros: x.dtype, shape: outShape)
        let po = TensorOpSupport.typedPointer(out, T.self)
        for i in 0..<outCount {
            switch kind {
            case .mean: po[i] = T(truncatingIfNeeded: count == 0 ? 0 : acc[i] / Int64(count))
            case .l2: po[i] = TensorOpSupport.truncate(Double(acc[i]).squareRoot(), to: T.self)
            default: po[i] = T(truncatingIfNeeded: acc[i])
            }
        }
        return out
    }
}

public enum ReduceSumOperator: Operator {
    public static let opType = "ReduceSum"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] { try ReductionSupport.infer(context) }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try ReductionSupport.evaluate(.sum, node, inputs)
    }
}

public enum ReduceMeanOperator: Operator {
    public static let opType = "ReduceMean"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] { try ReductionSupport.infer(context) }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try ReductionSupport.evaluate(.mean, node, inputs)
    }
}

public enum ReduceMaxOperator: Operator {
    public static let opType = "ReduceMax"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] { try ReductionSupport.infer(context) }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try ReductionSupport.evaluate(.max, node, inputs)
    }
}

public enum ReduceMinOperator: Operator {
    public static let opType = "ReduceMin"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] { try ReductionSupport.infer(context) }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try ReductionSupport.evaluate(.min, node, inputs)
    }
}

public enum ReduceProdOperator: Operator {
    public static let opType = "ReduceProd"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] { try ReductionSupport.infer(context) }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try ReductionSupport.evaluate(.prod, node, inputs)
    }
}

public enum ReduceSumSquareOperator: Operator {
    public static let opType = "ReduceSumSquare"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] { try ReductionSupport.infer(context) }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try ReductionSupport.evaluate(.sumSquare, node, inputs)
    }
}

public enum ReduceL1Operator: Operator {
    public static let opType = "ReduceL1"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] { try ReductionSupport.infer(context) }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try ReductionSupport.evaluate(.l1, node, inputs)
    }
}

public enum ReduceL2Operator: Operator {
    public static let opType = "ReduceL2"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] { try ReductionSupport.infer(context) }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try ReductionSupport.evaluate(.l2, node, inputs)
    }
}
