import Foundation

// Binary elementwise operators with ONNX/NumPy multidirectional broadcasting:
// arithmetic (Add, Sub, Mul, Div, Pow), comparisons (Equal, Less, Greater, LessOrEqual,
// GreaterOrEqual) and logic (And, Or, Xor).
//
// Arithmetic runs on float32 natively, float16 through float32 (result rounded back to
// float16), and on int64/int32/int8/uint8 with C semantics: wrapping overflow, integer
// division truncating toward zero (division by zero is an error rather than a crash).

/// The arithmetic of one binary operator on each element kind.
protocol BinaryArithmetic {
    static func float(_ a: Float, _ b: Float) -> Float
    static func integer<T: FixedWidthInteger>(_ a: T, _ b: T) -> T
}

enum BinaryElementwise {
    /// Shape rule shared by the arithmetic operators: same dtype, broadcast shapes.
    static func inferSameType(_ context: OperatorContext, allowed: Set<DType>, result: DType? = nil) throws -> [TensorType] {
        let node = context.node
        guard context.inputTypes.count == 2 else {
            throw TensorOpSupport.shapeError(node, "\(node.opType) takes 2 inputs, got \(context.inputTypes.count)")
        }
        let a = try context.inputType(0), b = try context.inputType(1)
        try TensorOpSupport.requireDType(a, allowed, node)
        guard a.dtype == b.dtype else {
            throw TensorOpSupport.shapeError(node, "input types \(a.dtype.name) and \(b.dtype.name) differ")
        }
        return [TensorType(dtype: result ?? a.dtype, shape: try broadcastShape(a.shape, b.shape, node))]
    }

    static func broadcastShape(_ a: [Dim]?, _ b: [Dim]?, _ node: Node) throws -> [Dim]? {
        guard let a, let b else { return nil }
        return try OperatorSupport.broadcast(a, b, node: node.displayName)
    }

    /// Checks arity and dtypes and returns the two inputs and the broadcast output shape.
    static func operands(_ node: Node, _ inputs: [Tensor?], allowed: Set<DType>) throws -> (Tensor, Tensor, [Int]) {
        try TensorOpSupport.checkInputCount(node, inputs, min: 2, max: 2)
        let a = try TensorOpSupport.required(inputs, 0, node), b = try TensorOpSupport.required(inputs, 1, node)
        try TensorOpSupport.requireDType(a, allowed, node)
        guard a.dtype == b.dtype else {
            throw TensorOpSupport.shapeError(node, "input types \(a.dtype.name) and \(b.dtype.name) differ")
        }
        return (a, b, try OperatorSupport.broadcast(a.shape, b.shape, node: node.displayName))
    }

    static func arithmetic<Op: BinaryArithmetic>(_: Op.Type, _ node: Node, _ inputs: [Tensor?]) throws -> Tensor {
        let (a, b, shape) = try operands(node, inputs, allowed: TensorOpSupport.numeric)
        return arithmetic(Op.self, a, b, shape)
    }

    static func arithmetic<Op: BinaryArithmetic>(_: Op.Type, _ a: Tensor, _ b: Tensor, _ shape: [Int]) -> Tensor {
        typealias S = TensorOpSupport
        switch a.dtype {
        case .float32: return S.binaryMap(a, Float.self, b, Float.self, shape: shape, to: .float32) { Op.float($0, $1) }
        case .float16: return S.toFloat16(arithmetic(Op.self, S.toFloat32(a), S.toFloat32(b), shape))
        case .int64: return S.binaryMap(a, Int64.self, b, Int64.self, shape: shape, to: .int64) { Op.integer($0, $1) }
        case .int32: return S.binaryMap(a, Int32.self, b, Int32.self, shape: shape, to: .int32) { Op.integer($0, $1) }
        case .int8: return S.binaryMap(a, Int8.self, b, Int8.self, shape: shape, to: .int8) { Op.integer($0, $1) }
        case .uint8: return S.binaryMap(a, UInt8.self, b, UInt8.self, shape: shape, to: .uint8) { Op.integer($0, $1) }
        case .bool: preconditionFailure("bool arithmetic is rejected by the caller")
        }
    }

    /// Comparison producing bool; `compare` sees both operands as the same Comparable type.
    static func compare(_ node: Node, _ inputs: [Tensor?], allowed: Set<DType>,
                        _ f: (Float, Float) -> Bool, _ g: (Int64, Int64) -> Bool) throws -> Tensor {
        typealias S = TensorOpSupport
        let (a, b, shape) = try operands(node, inputs, allowed: allowed)
        func fold(_ x: Bool) -> UInt8 { x ? 1 : 0 }
        switch a.dtype {
        case .float32:
            return S.binaryMap(a, Float.self, b, Float.self, shape: shape, to: .bool) { fold(f($0, $1)) }
        case .float16:
            return S.binaryMap(S.toFloat32(a), Float.self, S.toFloat32(b), Float.self, shape: shape, to: .bool) { fold(f($0, $1)) }
        case .int64:
            return S.binaryMap(a, Int64.self, b, Int64.self, shape: shape, to: .bool) { fold(g($0, $1)) }
        case .int32:
            return S.binaryMap(a, Int32.self, b, Int32.self, shape: shape, to: .bool) { fold(g(Int64($0), Int64($1))) }
        case .int8:
            return S.binaryMap(a, Int8.self, b, Int8.self, shape: shape, to: .bool) { fold(g(Int64($0), Int64($1))) }
        case .uint8, .bool:
            return S.binaryMap(a, UInt8.self, b, UInt8.self, shape: shape, to: .bool) { fold(g(Int64($0), Int64($1))) }
        }
    }

    static func logic(_ node: Node, _ inputs: [Tensor?], _ f: (Bool, Bool) -> Bool) throws -> Tensor {
        let (a, b, shape) = try operands(node, inputs, allowed: [.bool])
        return TensorOpSupport.binaryMap(a, UInt8.self, b, UInt8.self, shape: shape, to: .bool) {
            f($0 != 0, $1 != 0) ? UInt8(1) : 0
        }
    }
}

// MARK: - Arithmetic

public enum AddOperator: Operator, BinaryArithmetic {
    public static let opType = "Add"
    static func float(_ a: Float, _ b: Float) -> Float { a + b }
    static func integer<T: FixedWidthInteger>(_ a: T, _ b: T) -> T { a &+ b }
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try BinaryElementwise.inferSameType(context, allowed: TensorOpSupport.numeric)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        [try BinaryElementwise.arithmetic(Self.self, node, inputs)]
    }
}

public enum SubOperator: Operator, BinaryArithmetic {
    public static let opType = "Sub"
    static func float(_ a: Float, _ b: Float) -> Float { a - b }
    static func integer<T: FixedWidthInteger>(_ a: T, _ b: T) -> T { a &- b }
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try BinaryElementwise.inferSameType(context, allowed: TensorOpSupport.numeric)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        [try BinaryElementwise.arithmetic(Self.self, node, inputs)]
    }
}

public enum MulOperator: Operator, BinaryArithmetic {
    public static let opType = "Mul"
    static func float(_ a: Float, _ b: Float) -> Float { a * b }
    static func integer<T: FixedWidthInteger>(_ a: T, _ b: T) -> T { a &* b }
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try BinaryElementwise.inferSameType(context, allowed: TensorOpSupport.numeric)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        [try BinaryElementwise.arithmetic(Self.self, node, inputs)]
    }
}

/// Integer division truncates toward zero (C and ONNX Runtime); `min / -1` wraps to `min`.
/// An integer division by zero throws instead of trapping.
public enum DivOperator: Operator, BinaryArithmetic {
    public static let opType = "Div"
    static func float(_ a: Float, _ b: Float) -> Float { a / b }
    static func integer<T: FixedWidthInteger>(_ a: T, _ b: T) -> T {
        b == 0 ? 0 : a.dividedReportingOverflow(by: b).partialValue
    }
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try BinaryElementwise.inferSameType(context, allowed: TensorOpSupport.numeric)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        let (a, b, shape) = try BinaryElementwise.operands(node, inputs, allowed: TensorOpSupport.numeric)
        if !b.dtype.isFloatingPoint && b.int64s.contains(0) {
            throw TensorOpSupport.shapeError(node, "integer division by zero")
        }
        return [BinaryElementwise.arithmetic(Self.self, a, b, shape)]
    }
}

/// Pow(X, Y): the result has X's type; Y may be any numeric type (opset 12+). Float bases use
/// powf; integer bases compute in double and truncate, as ONNX Runtime does.
public enum PowOperator: Operator {
    public static let opType = "Pow"

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        guard context.inputTypes.count == 2 else {
            throw TensorOpSupport.shapeError(node, "Pow takes 2 inputs, got \(context.inputTypes.count)")
        }
        let a = try context.inputType(0), b = try context.inputType(1)
        try TensorOpSupport.requireDType(a, [.float32, .float16, .int64, .int32], node, "base")
        try TensorOpSupport.requireDType(b, TensorOpSupport.numeric, node, "exponent")
        return [TensorType(dtype: a.dtype, shape: try BinaryElementwise.broadcastShape(a.shape, b.shape, node))]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        typealias S = TensorOpSupport
        try S.checkInputCount(node, inputs, min: 2, max: 2)
        let a = try S.required(inputs, 0, node), b = try S.required(inputs, 1, node)
        try S.requireDType(a, [.float32, .float16, .int64, .int32], node, "base")
        try S.requireDType(b, S.numeric, node, "exponent")
        let shape = try OperatorSupport.broadcast(a.shape, b.shape, node: node.displayName)
        switch a.dtype {
        case .float32, .float16:
            let x = S.toFloat32(a)
            let y = b.dtype == .float32 ? b : Tensor(b.floats, shape: b.shape)
            let r = S.binaryMap(x, Float.self, y, Float.self, shape: shape, to: .float32) { (p: Float, q: Float) -> Float in
                if q == 2 { return p * p }
                if q == 1 { return p }
                return Foundation.pow(p, q)
            }
            return [a.dtype == .float16 ? S.toFloat16(r) : r]
        default:
            let x = Tensor(a.int64s, shape: a.shape)
            let r: Tensor
            if b.dtype.isFloatingPoint {
                let y = S.toFloat32(b)
                r = S.binaryMap(x, Int64.self, y, Float.self, shape: shape, to: .int64) { p, q in
                    S.truncate(Foundation.pow(Double(p), Double(q)), to: Int64.self)
                }
            } else {
                let y = Tensor(b.int64s, shape: b.shape)
                r = S.binaryMap(x, Int64.self, y, Int64.self, shape: shape, to: .int64) { p, q in
                    S.truncate(Foundation.pow(Double(p), Double(q)), to: Int64.self)
                }
            }
            if a.dtype == .int64 { return [r] }
            return [Tensor(r.elements(as: Int64.self).map { Int32(truncatingIfNeeded: $0) }, shape: shape)]
        }
    }
}

// MARK: - Comparisons (output bool)

public enum EqualOperator: Operator {
    public static let opType = "Equal"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try BinaryElementwise.inferSameType(context, allowed: TensorOpSupport.all, result: .bool)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        [try BinaryElementwise.compare(node, inputs, allowed: TensorOpSupport.all, { $0 == $1 }, { $0 == $1 })]
    }
}

public enum LessOperator: Operator {
    public static let opType = "Less"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try BinaryElementwise.inferSameType(context, allowed: TensorOpSupport.numeric, result: .bool)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        [try BinaryElementwise.compare(node, inputs, allowed: TensorOpSupport.numeric, { $0 < $1 }, { $0 < $1 })]
    }
}

public enum GreaterOperator: Operator {
    public static let opType = "Greater"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try BinaryElementwise.inferSameType(context, allowed: TensorOpSupport.numeric, result: .bool)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        [try BinaryElementwise.compare(node, inputs, allowed: TensorOpSupport.numeric, { $0 > $1 }, { $0 > $1 })]
    }
}

public enum LessOrEqualOperator: Operator {
    public static let opType = "LessOrEqual"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try BinaryElementwise.inferSameType(context, allowed: TensorOpSupport.numeric, result: .bool)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        [try BinaryElementwise.compare(node, inputs, allowed: TensorOpSupport.numeric, { $0 <= $1 }, { $0 <= $1 })]
    }
}

public enum GreaterOrEqualOperator: Operator {
    public static let opType = "GreaterOrEqual"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try BinaryElementwise.inferSameType(context, allowed: TensorOpSupport.numeric, result: .bool)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        [try BinaryElementwise.compare(node, inputs, allowed: TensorOpSupport.numeric, { $0 >= $1 }, { $0 >= $1 })]
    }
}

// MARK: - Logic (bool)

public enum AndOperator: Operator {
    public static let opType = "And"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try BinaryElementwise.inferSameType(context, allowed: [.bool])
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        [try BinaryElementwise.logic(node, inputs) { $0 && $1 }]
    }
}

public enum OrOperator: Operator {
    public static let opType = "Or"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try BinaryElementwise.inferSameType(context, allowed: [.bool])
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        [try BinaryElementwise.logic(node, inputs) { $0 || $1 }]
    }
}

public enum XorOperator: Operator {
    public static let opType = "Xor"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try BinaryElementwise.inferSameType(context, allowed: [.bool])
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        [try BinaryElementwise.logic(node, inputs) { $0 != $1 }]
    }
}
