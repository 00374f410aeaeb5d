import Foundation

// VariadicElementwise Min/Max (broadcasting, opset 8+) and Clip (bounds as attributes before opset 11,
// as optional scalar inputs from opset 11).

enum VariadicElementwise {
    static func infer(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        guard !context.inputTypes.isEmpty else {
            throw TensorOpSupport.shapeError(node, "\(node.opType) needs at least one input")
        }
        var result = try context.inputType(0)
        try TensorOpSupport.requireDType(result, TensorOpSupport.numeric, node)
        for i in 1..<context.inputTypes.count {
            let t = try context.inputType(i)
            guard t.dtype == result.dtype else {
                throw TensorOpSupport.shapeError(node, "input types \(result.dtype.name) and \(t.dtype.name) differ")
            }
            result.shape = try BinaryElementwise.broadcastShape(result.shape, t.shape, node)
        }
        return [result]
    }

    static func evaluate<Op: BinaryArithmetic>(_: Op.Type, _ node: Node, _ inputs: [Tensor?]) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 1, max: Int.max)
        var acc = try TensorOpSupport.required(inputs, 0, node)
        try TensorOpSupport.requireDType(acc, TensorOpSupport.numeric, node)
        for i in 1..<inputs.count {
            let (a, b, shape) = try BinaryElementwise.operands(node, [acc, try TensorOpSupport.required(inputs, i, node)],
                                                               allowed: TensorOpSupport.numeric)
            acc = BinaryElementwise.arithmetic(Op.self, a, b, shape)
        }
        return [acc]
    }
}

/// Max of any number of inputs. A NaN operand gives NaN (as ONNX Runtime, opset 12+).
public enum MaxOperator: Operator, BinaryArithmetic {
    public static let opType = "Max"
    static func float(_ a: Float, _ b: Float) -> Float { a.isNaN || b.isNaN ? .nan : Swift.max(a, b) }
    static func integer<T: FixedWidthInteger>(_ a: T, _ b: T) -> T { Swift.max(a, b) }
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] { try VariadicElementwise.infer(context) }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try VariadicElementwise.evaluate(Self.self, node, inputs)
    }
}

/// Min of any number of inputs. A NaN operand gives NaN (as ONNX Runtime, opset 12+).
public enum MinOperator: Operator, BinaryArithmetic {
    public static let opType = "Min"
    static func float(_ a: Float, _ b: Float) -> Float { a.isNaN || b.isNaN ? .nan : Swift.min(a, b) }
    static func integer<T: FixedWidthInteger>(_ a: T, _ b: T) -> T { Swift.min(a, b) }
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] { try VariadicElementwise.infer(context) }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try VariadicElementwise.evaluate(Self.self, node, inputs)
    }
}

/// Clip(x, min, max) = min(max(x, min), max): when min > max every element becomes max.
/// Before opset 11 the bounds are float attributes `min`/`max` (defaults: the float range);
/// from opset 11 they are optional scalar (or 1-element) inputs of x's type.
public enum ClipOperator: Operator {
    public static let opType = "Clip"

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        guard (1...3).contains(context.inputTypes.count) else {
            throw TensorOpSupport.shapeError(node, "Clip takes 1 to 3 inputs, got \(context.inputTypes.count)")
        }
        let t = try context.inputType(0)
        try TensorOpSupport.requireDType(t, TensorOpSupport.numeric, node)
        for i in 1..<context.inputTypes.count {
            guard let b = context.inputTypes[i] else { continue }
            guard b.dtype == t.dtype else {
                throw TensorOpSupport.shapeError(node, "bound type \(b.dtype.name) differs from input type \(t.dtype.name)")
            }
            if let s = b.shape, let n = TensorOpSupport.product(s[...]).value, n != 1 {
                throw TensorOpSupport.shapeError(node, "Clip bounds must be scalars, got shape \(s)")
            }
        }
        _ = try TensorOpSupport.float(node, "min")
        _ = try TensorOpSupport.float(node, "max")
        return [t]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        typealias S = TensorOpSupport
        try S.checkInputCount(node, inputs, min: 1, max: 3)
        let x = try S.required(inputs, 0, node)
        try S.requireDType(x, S.numeric, node)
        func bound(_ i: Int) throws -> Tensor? {
            guard let b = S.optional(inputs, i) else { return nil }
            guard b.dtype == x.dtype else {
                throw S.shapeError(node, "bound type \(b.dtype.name) differs from input type \(x.dtype.name)")
            }
            guard b.elementCount == 1 else { throw S.shapeError(node, "Clip bounds must be scalars, got shape \(b.shape)") }
            return b
        }
        let lo = try bound(1), hi = try bound(2)
        let attrLo = try S.float(node, "min"), attrHi = try S.float(node, "max")
        switch x.dtype {
        case .float32, .float16:
            let l = lo.map { $0.floats[0] } ?? attrLo ?? -Float.greatestFiniteMagnitude
            let h = hi.map { $0.floats[0] } ?? attrHi ?? Float.greatestFiniteMagnitude
            if lo == nil && hi == nil && attrLo == nil && attrHi == nil { return [x] }
            return [S.viaFloat32(x) { S.unaryMap($0, Float.self, to: .float32) { v in Swift.min(Swift.max(v, l), h) } }]
        case .int64: return [clipInt(x, Int64.self, lo, hi)]
        case .int32: return [clipInt(x, Int32.self, lo, hi)]
        case .int8: return [clipInt(x, Int8.self, lo, hi)]
        case .uint8: return [clipInt(x, UInt8.self, lo, hi)]
        case .bool: preconditionFailure("rejected above")
        }
    }

    private static func clipInt<T: FixedWidthInteger>(_ x: Tensor, _: T.Type, _ lo: Tensor?, _ hi: Tensor?) -> Tensor {
        let l = lo.map { $0.elements(as: T.self)[0] } ?? T.min
        let h = hi.map { $0.elements(as: T.self)[0] } ?? T.max
        return TensorOpSupport.unaryMap(x, T.self, to: x.dtype) { Swift.min(Swift.max($0, l), h) }
    }
}
