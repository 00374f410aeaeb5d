/// Element types a tensor may have. Raw values are ONNX's `TensorProto.DataType` codes,
/// so importer, format and runtime share one numbering.
public enum DType: Int32, Sendable, CaseIterable, Codable {
    case float32 = 1
    case uint8 = 2
    case int8 = 3
    case int32 = 6
    case int64 = 7
    case bool = 9
    case float16 = 10

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float32, .int32: return 4
        case .uint8, .int8, .bool: return 1
        case .int64: return 8
        case .float16: return 2
        }
    }

    public var name: String {
        switch self {
        case .float32: return "float32"
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .int32: return "int32"
        case .int64: return "int64"
        case .bool: return "bool"
        case .float16: return "float16"
        }
    }

    public var isFloatingPoint: Bool { self == .float32 || self == .float16 }

    /// The ONNX name of an element type code, for error messages about types we do not support.
    public static func onnxName(code: Int32) -> String {
        let names: [Int32: String] = [
            0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32",
            7: "INT64", 8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32",
            13: "UINT64", 14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16",
        ]
        return names[code] ?? "type code \(code)"
    }
}
