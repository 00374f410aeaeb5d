import Foundation

/// Constant: exactly one of `value` (tensor), `value_float` (float32 scalar), `value_floats`
/// (float32 1-D), `value_int` (int64 scalar), `value_ints` (int64 1-D). String and sparse
/// values are not supported.
public enum ConstantOperator: Operator {
    public static let opType = "Constant"

    static func value(_ node: Node) throws -> Tensor {
        let known = ["value", "value_float", "value_floats", "value_int", "value_ints"]
        let unsupported = ["value_string", "value_strings", "sparse_value"]
        if let u = unsupported.first(where: { node.attributes[$0] != nil }) {
            throw TensorOpSupport.attributeError(node, "Constant with \(u) is not supported")
        }
        let present = known.filter { node.attributes[$0] != nil }
        guard present.count == 1 else {
            throw TensorOpSupport.attributeError(node, present.isEmpty ? "Constant has no value attribute"
                : "Constant has several value attributes (\(present.joined(separator: ", ")))")
        }
        switch present[0] {
        case "value": return try TensorOpSupport.tensor(node, "value")!
        case "value_float": return Tensor(scalar: try TensorOpSupport.float(node, "value_float")!)
        case "value_floats":
            let v = try TensorOpSupport.floats(node, "value_floats")!
            return Tensor(v, shape: [v.count])
        case "value_int": return Tensor(scalar: Int64(try TensorOpSupport.int(node, "value_int")!))
        default:
            let v = try TensorOpSupport.ints(node, "value_ints")!.map { Int64($0) }
            return Tensor(v, shape: [v.count])
        }
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        guard context.inputTypes.isEmpty else {
            throw TensorOpSupport.shapeError(context.node, "Constant takes no inputs")
        }
        return [try value(context.node).type]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 0, max: 0)
        return [try value(node)]
    }
}

/// ConstantOfShape(shape): a tensor of the given shape (int64 1-D; empty gives a scalar) filled
/// with the one-element `value` attribute (default float32 0), whose dtype it takes.
public enum ConstantOfShapeOperator: Operator {
    public static let opType = "ConstantOfShape"

    static func fill(_ node: Node) throws -> Tensor {
        guard let v = try TensorOpSupport.tensor(node, "value") else { return Tensor(zeros: .float32, shape: [1]) }
        guard v.elementCount == 1 else {
            throw TensorOpSupport.attributeError(node, "value must have one element, got shape \(v.shape)")
        }
        return v
    }

    static func check(_ shape: [Int], _ node: Node) throws {
        _ = try TensorOpSupport.checkedCount(shape, node)
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        guard context.inputTypes.count == 1 else {
            throw TensorOpSupport.shapeError(node, "ConstantOfShape takes 1 input, got \(context.inputTypes.count)")
        }
        let dtype = try fill(node).dtype
        if let s = try TensorOpSupport.constantIntegers(context, 0, "shape") {
            try check(s, node)
            return [TensorType(dtype: dtype, dims: s)]
        }
        if let k = TensorOpSupport.staticLength(context, 0) {
            return [TensorType(dtype: dtype, shape: Array(repeating: .unknown, count: k))]
        }
        return [TensorType(dtype: dtype, shape: nil)]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 1, max: 1)
        let shape = try TensorOpSupport.integers1D(TensorOpSupport.required(inputs, 0, node), node, "shape")
        try check(shape, node)
        let v = try fill(node)
        let out = Tensor(zeros: v.dtype, shape: shape)
        let width = v.dtype.byteSize
        if v.bytes.contains(where: { $0 != 0 }) {
            let p = out.storage.pointer
            for i in 0..<out.elementCount { (p + i * width).copyMemory(from: v.storage.pointer, byteCount: width) }
        }
        return [out]
    }
}

/// Range(start, limit, delta): scalars of one type (float32, int32, int64);
/// n = max(ceil((limit - start) / delta), 0) elements start, start + delta, ...
/// Floats accumulate by repeated addition, as ONNX Runtime does.
public enum RangeOperator: Operator {
    public static let opType = "Range"

    static func count(_ start: Tensor, _ limit: Tensor, _ delta: Tensor, _ node: Node) throws -> Int {
        for t in [start, limit, delta] {
            try TensorOpSupport.requireDType(t, [.float32, .int32, .int64], node)
            guard t.dtype == start.dtype else {
                throw TensorOpSupport.shapeError(node, "input types \(start.dtype.name) and \(t.dtype.name) differ")
            }
            guard t.elementCount == 1 else { throw TensorOpSupport.shapeError(node, "Range inputs must be scalars, got \(t.shape)") }
        }
        let n: Double
        if start.dtype == .float32 {
            let s = start.floats[0], l = limit.floats[0], d = delta.floats[0]
            guard d != 0 else { throw TensorOpSupport.shapeError(node, "Range delta is 0") }
            n = ((Double(l) - Double(s)) / Double(d)).rounded(.up)
        } else {
            let s = start.int64s[0], l = limit.int64s[0], d = delta.int64s[0]
            guard d != 0 else { throw TensorOpSupport.shapeError(node, "Range delta is 0") }
            n = ((Double(l) - Double(s)) / Double(d)).rounded(.up)
        }
        guard n.isFinite, n < Double(1 << 40) else { throw TensorOpSupport.shapeError(node, "Range of \(n) elements") }
        return Swift.max(Int(n), 0)
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        guard context.inputTypes.count == 3 else {
            throw TensorOpSupport.shapeError(node, "Range takes 3 inputs, got \(context.inputTypes.count)")
        }
        let t = try context.inputType(0)
        try TensorOpSupport.requireDType(t, [.float32, .int32, .int64], node)
        if let s = TensorOpSupport.constant(context, 0), let l = TensorOpSupport.constant(context, 1),
           let d = TensorOpSupport.constant(context, 2) {
            return [TensorType(dtype: t.dtype, dims: [try count(s, l, d, node)])]
        }
        return [TensorType(dtype: t.dtype, shape: [.unknown])]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        typealias S = TensorOpSupport
        try S.checkInputCount(node, inputs, min: 3, max: 3)
        let s = try S.required(inputs, 0, node), l = try S.required(inputs, 1, node), d = try S.required(inputs, 2, node)
        let n = try count(s, l, d, node)
        switch s.dtype {
        case .float32:
            var v = s.floats[0]
            let step = d.floats[0]
            var out = [Float](repeating: 0, count: n)
            for i in 0..<n { out[i] = v; v += step }
            return [Tensor(out, shape: [n])]
        case .int64:
            let a = s.int64s[0], step = d.int64s[0]
            return [Tensor((0..<n).map { a &+ Int64($0) &* step }, shape: [n])]
        default:
            let a = Int32(truncatingIfNeeded: s.int64s[0]), step = Int32(truncatingIfNeeded: d.int64s[0])
            return [Tensor((0..<n).map { a &+ Int32(truncatingIfNeeded: $0) &* step }, shape: [n])]
        }
    }
}
