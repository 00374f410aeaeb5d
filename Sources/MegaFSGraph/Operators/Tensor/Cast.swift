import Foundation

/// Cast(input) to the ONNX element type `to` (float32, float16, int64, int32, int8, uint8,
/// bool). Float -> integer truncates toward zero; NaN and out-of-range values do not trap
/// (they give the type's minimum for 32/64-bit targets, x86 style, and wrap through int32 for
/// 8-bit ones). Integer -> integer wraps (two's complement truncation). Anything -> bool is
/// `x != 0`; bool -> number is 0/1. Integer -> float16 rounds through float32 as ONNX Runtime.
public enum CastOperator: Operator {
    public static let opType = "Cast"

    static func target(_ node: Node) throws -> DType {
        guard let to = try TensorOpSupport.int(node, "to") else {
            throw TensorOpSupport.attributeError(node, "Cast needs the attribute 'to'")
        }
        return try TensorOpSupport.dtype(onnxCode: to, node)
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let t = try context.inputType(0)
        return [TensorType(dtype: try target(context.node), shape: t.shape)]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 1, max: 1)
        return [cast(try TensorOpSupport.required(inputs, 0, node), to: try target(node))]
    }

    static func cast(_ x: Tensor, to dtype: DType) -> Tensor {
        typealias S = TensorOpSupport
        if x.dtype == dtype { return x }
        switch x.dtype {
        case .float32: return fromFloat(x, to: dtype)
        case .float16:
            if dtype == .float32 { return S.toFloat32(x) }
            return fromFloat(S.toFloat32(x), to: dtype)
        case .int64: return fromInteger(x, Int64.self, to: dtype)
        case .int32: return fromInteger(x, Int32.self, to: dtype)
        case .int8: return fromInteger(x, Int8.self, to: dtype)
        case .uint8: return fromInteger(x, UInt8.self, to: dtype)
        case .bool:
            let normalized = S.unaryMap(x, UInt8.self, to: .uint8) { $0 != 0 ? UInt8(1) : 0 }
            return fromInteger(normalized, UInt8.self, to: dtype)
        }
    }

    private static func fromFloat(_ x: Tensor, to dtype: DType) -> Tensor {
        typealias S = TensorOpSupport
        switch dtype {
        case .float32: return x
        case .float16: return S.toFloat16(x)
        case .int64: return S.unaryMap(x, Float.self, to: .int64) { S.truncate(Double($0), to: Int64.self) }
        case .int32: return S.unaryMap(x, Float.self, to: .int32) { S.truncate(Double($0), to: Int32.self) }
        case .int8: return S.unaryMap(x, Float.self, to: .int8) { S.truncate(Double($0), to: Int8.self) }
        case .uint8: return S.unaryMap(x, Float.self, to: .uint8) { S.truncate(Double($0), to: UInt8.self) }
        case .bool: return S.unaryMap(x, Float.self, to: .bool) { $0 != 0 ? UInt8(1) : 0 }
        }
    }

    private static func fromInteger<T: FixedWidthInteger>(_ x: Tensor, _: T.Type, to dtype: DType) -> Tensor {
        typealias S = TensorOpSupport
        switch dtype {
        case .float32: return S.unaryMap(x, T.self, to: .float32) { Float($0) }
        case .float16: return S.unaryMap(x, T.self, to: .float16) { Float16(Float($0)).bitPattern }
        case .int64: return S.unaryMap(x, T.self, to: .int64) { Int64(truncatingIfNeeded: $0) }
        case .int32: return S.unaryMap(x, T.self, to: .int32) { Int32(truncatingIfNeeded: $0) }
        case .int8: return S.unaryMap(x, T.self, to: .int8) { Int8(truncatingIfNeeded: $0) }
        case .uint8: return S.unaryMap(x, T.self, to: .uint8) { UInt8(truncatingIfNeeded: $0) }
        case .bool: return S.unaryMap(x, T.self, to: .bool) { $0 != 0 ? UInt8(1) : 0 }
        }
    }
}
