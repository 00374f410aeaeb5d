import Foundation

// Unary elementwise operators. Float-only math (Sigmoid, Tanh, Sqrt, Reciprocal, Exp, Log,
// Erf, Floor, Ceil, LeakyRelu) runs on float32, and on float16 through float32. Relu, Neg and
// Abs also take signed integers (wrapping: Neg(INT_MIN) == INT_MIN, as in C). Not takes bool.

/// An operator defined on floats and integers alike.
protocol UnaryNumeric {
    static func float(_ x: Float) -> Float
    static func integer<T: FixedWidthInteger>(_ x: T) -> T
}

enum UnaryElementwise {
    static func infer(_ context: OperatorContext, allowed: Set<DType>) throws -> [TensorType] {
        let node = context.node
        guard context.inputTypes.count == 1 else {
            throw TensorOpSupport.shapeError(node, "\(node.opType) takes 1 input, got \(context.inputTypes.count)")
        }
        let t = try context.inputType(0)
        try TensorOpSupport.requireDType(t, allowed, node)
        return [t]
    }

    static func input(_ node: Node, _ inputs: [Tensor?], allowed: Set<DType>) throws -> Tensor {
        try TensorOpSupport.checkInputCount(node, inputs, min: 1, max: 1)
        let x = try TensorOpSupport.required(inputs, 0, node)
        try TensorOpSupport.requireDType(x, allowed, node)
        return x
    }

    @inline(__always)
    static func floatMap(_ node: Node, _ inputs: [Tensor?], _ f: (Float) -> Float) throws -> [Tensor] {
        let x = try input(node, inputs, allowed: TensorOpSupport.floating)
        return [TensorOpSupport.viaFloat32(x) { TensorOpSupport.unaryMap($0, Float.self, to: .float32, f) }]
    }

    static func numeric<Op: UnaryNumeric>(_: Op.Type, _ node: Node, _ inputs: [Tensor?], allowed: Set<DType>) throws -> [Tensor] {
        typealias S = TensorOpSupport
        let x = try input(node, inputs, allowed: allowed)
        switch x.dtype {
        case .float32, .float16: return [S.viaFloat32(x) { S.unaryMap($0, Float.self, to: .float32) { Op.float($0) } }]
        case .int64: return [S.unaryMap(x, Int64.self, to: .int64) { Op.integer($0) }]
        case .int32: return [S.unaryMap(x, Int32.self, to: .int32) { Op.integer($0) }]
        case .int8: return [S.unaryMap(x, Int8.self, to: .int8) { Op.integer($0) }]
        case .uint8: return [S.unaryMap(x, UInt8.self, to: .uint8) { Op.integer($0) }]
        case .bool: preconditionFailure("rejected by input()")
        }
    }

    static let signed: Set<DType> = [.float32, .float16, .int64, .int32, .int8]
}

public enum ReluOperator: Operator, UnaryNumeric {
    public static let opType = "Relu"
    static func float(_ x: Float) -> Float { x < 0 ? 0 : x }
    static func integer<T: FixedWidthInteger>(_ x: T) -> T { x < 0 ? 0 : x }
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try UnaryElementwise.infer(context, allowed: UnaryElementwise.signed)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try UnaryElementwise.numeric(Self.self, node, inputs, allowed: UnaryElementwise.signed)
    }
}

public enum NegOperator: Operator, UnaryNumeric {
    public static let opType = "Neg"
    static func float(_ x: Float) -> Float { -x }
    static func integer<T: FixedWidthInteger>(_ x: T) -> T { 0 &- x }
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try UnaryElementwise.infer(context, allowed: UnaryElementwise.signed)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try UnaryElementwise.numeric(Self.self, node, inputs, allowed: UnaryElementwise.signed)
    }
}

public enum AbsOperator: Operator, UnaryNumeric {
    public static let opType = "Abs"
    static func float(_ x: Float) -> Float { Swift.abs(x) }
    static func integer<T: FixedWidthInteger>(_ x: T) -> T { x < 0 ? 0 &- x : x }
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try UnaryElementwise.infer(context, allowed: TensorOpSupport.numeric)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try UnaryElementwise.numeric(Self.self, node, inputs, allowed: TensorOpSupport.numeric)
    }
}

/// LeakyRelu: x if x >= 0 else alpha * x; alpha defaults to 0.01.
public enum LeakyReluOperator: Operator {
    public static let opType = "LeakyRelu"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        _ = try TensorOpSupport.float(context.node, "alpha")
        return try UnaryElementwise.infer(context, allowed: TensorOpSupport.floating)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        let alpha = try TensorOpSupport.float(node, "alpha") ?? 0.01
        if alpha == 1 {
            _ = try UnaryElementwise.input(node, inputs, allowed: TensorOpSupport.floating)
            return [inputs[0]!]
        }
        return try UnaryElementwise.floatMap(node, inputs) { $0 < 0 ? alpha * $0 : $0 }
    }
}

public enum SigmoidOperator: Operator {
    public static let opType = "Sigmoid"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try UnaryElementwise.infer(context, allowed: TensorOpSupport.floating)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try UnaryElementwise.floatMap(node, inputs) { x in
            // Symmetric form: no overflow of exp for large |x|.
            if x >= 0 { return 1 / (1 + Foundation.exp(-x)) }
            let e = Foundation.exp(x)
            return e / (1 + e)
        }
    }
}

public enum TanhOperator: Operator {
    public static let opType = "Tanh"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try UnaryElementwise.infer(context, allowed: TensorOpSupport.floating)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try UnaryElementwise.floatMap(node, inputs) { Foundation.tanh($0) }
    }
}

public enum SqrtOperator: Operator {
    public static let opType = "Sqrt"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try UnaryElementwise.infer(context, allowed: TensorOpSupport.floating)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try UnaryElementwise.floatMap(node, inputs) { $0.squareRoot() }
    }
}

public enum ReciprocalOperator: Operator {
    public static let opType = "Reciprocal"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try UnaryElementwise.infer(context, allowed: TensorOpSupport.floating)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try UnaryElementwise.floatMap(node, inputs) { 1 / $0 }
    }
}

public enum ExpOperator: Operator {
    public static let opType = "Exp"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try UnaryElementwise.infer(context, allowed: TensorOpSupport.floating)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try UnaryElementwise.floatMap(node, inputs) { Foundation.exp($0) }
    }
}

public enum LogOperator: Operator {
    public static let opType = "Log"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try UnaryElementwise.infer(context, allowed: TensorOpSupport.floating)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try UnaryElementwise.floatMap(node, inputs) { Foundation.log($0) }
    }
}

public enum ErfOperator: Operator {
    public static let opType = "Erf"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try UnaryElementwise.infer(context, allowed: TensorOpSupport.floating)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try UnaryElementwise.floatMap(node, inputs) { Foundation.erf($0) }
    }
}

public enum FloorOperator: Operator {
    public static let opType = "Floor"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try UnaryElementwise.infer(context, allowed: TensorOpSupport.floating)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try UnaryElementwise.floatMap(node, inputs) { $0.rounded(.down) }
    }
}

public enum CeilOperator: Operator {
    public static let opType = "Ceil"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try UnaryElementwise.infer(context, allowed: TensorOpSupport.floating)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try UnaryElementwise.floatMap(node, inputs) { $0.rounded(.up) }
    }
}

public enum NotOperator: Operator {
    public static let opType = "Not"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try UnaryElementwise.infer(context, allowed: [.bool])
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        let x = try UnaryElementwise.input(node, inputs, allowed: [.bool])
        return [TensorOpSupport.unaryMap(x, UInt8.self, to: .bool) { $0 == 0 ? UInt8(1) : 0 }]
    }
}
