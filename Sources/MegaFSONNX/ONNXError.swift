import MegaFSGraph

/// An operator type (with its domain) and how many nodes of a graph use it.
public struct OperatorCount: Sendable, Equatable, CustomStringConvertible {
    public var opType: String
    /// "" for the default ONNX domain.
    public var domain: String
    public var count: Int

    public init(opType: String, domain: String = "", count: Int) {
        self.opType = opType
        self.domain = domain
        self.count = count
    }

    /// `TopK (1)`, or `com.microsoft.FusedConv (2)` outside the default domain.
    public var description: String {
        let qualified = domain.isEmpty || domain == "ai.onnx" ? opType : "\(domain).\(opType)"
        return "\(qualified) (\(count))"
    }

    /// Counts per (domain, opType), most frequent first, ties by name.
    static func tally(_ pairs: [(opType: String, domain: String)]) -> [OperatorCount] {
        var counts: [String: OperatorCount] = [:]
        for (opType, domain) in pairs {
            counts["\(domain)\u{0}\(opType)", default: OperatorCount(opType: opType, domain: domain, count: 0)].count += 1
        }
        return counts.values.sorted {
            $0.count != $1.count ? $0.count > $1.count : ($0.domain, $0.opType) < ($1.domain, $1.opType)
        }
    }
}

/// Everything that can go wrong reading or writing ONNX. Each message names the file, tensor,
/// value, node or attribute at fault.
public enum ONNXError: Error, Sendable, CustomStringConvertible {
    /// The model file does not exist.
    case fileNotFound(path: String)
    /// The model file exists but cannot be opened or read (permissions, a directory, I/O error).
    case unreadable(path: String, reason: String)
    /// The model file has zero bytes.
    case emptyFile(path: String)
    /// The file ends inside a protobuf field: it was cut short (e.g. an interrupted download).
    case truncated(source: String, detail: String)
    /// The bytes are not an ONNX ModelProto (protobuf decoding failed, or there is no graph).
    case notONNX(source: String, reason: String)
    /// A tensor or value has an element type megafs does not handle; named with ONNX's name.
    case unsupportedDataType(name: String, code: Int32)
    /// A tensor's data is missing, ambiguous, or its length does not match its shape and type.
    case invalidTensor(tensor: String, detail: String)
    /// A tensor dimension is negative, or the shape's element count is absurd.
    case invalidDimension(tensor: String, detail: String)
    /// An external-data location is absolute or leaves the model's folder.
    case unsafeExternalPath(tensor: String, location: String, reason: String)
    /// An external-data file does not exist.
    case missingExternalFile(tensor: String, path: String)
    /// The byte range of an external tensor lies (partly) past the end of its file.
    case externalRangeOutOfBounds(tensor: String, path: String, offset: Int64, length: Int64, fileSize: Int64)
    /// External data could not be read (I/O error, not a regular file, bad offset/length keys).
    case externalDataFailed(tensor: String, path: String, reason: String)
    /// A node carries an attribute kind megafs does not handle (graph, sparse tensor, type proto, ...).
    case unsupportedAttribute(node: String, attribute: String, kind: String)
    /// Nodes with control flow (If/Loop/Scan) or graph-valued attributes; each entry names one.
    case controlFlow(nodes: [String])
    /// Nodes whose domain is not the default ONNX domain.
    case nonDefaultDomains([OperatorCount])
    /// Operators megafs cannot run, all of them, with their counts.
    case unsupportedOperators([OperatorCount])
    /// A graph input, output or value_info entry is malformed.
    case invalidValueInfo(value: String, detail: String)
    /// A model-level problem (no default opset, duplicate names, sparse initializers, ...).
    case invalidModel(String)
    /// The graph's structure is broken (a cycle, a value nothing produces).
    case invalidGraph(String)
    /// Writing a model or its external data failed.
    case writeFailed(path: String, reason: String)
    /// The inline protobuf would exceed protobuf's 2 GB limit.
    case modelTooLarge(bytes: Int)
    /// The file exceeds one of the importer's resource limits (nodes, protobuf nesting,
    /// decoding memory); `detail` names the limit and its value (docs/limits.md).
    case limitExceeded(source: String, detail: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): no such file"
        case .unreadable(let path, let reason):
            return "\(path): cannot read: \(reason)"
        case .emptyFile(let path):
            return "\(path): the file is empty, not an ONNX model"
        case .truncated(let source, let detail):
            return "\(source): the file is truncated: \(detail)"
        case .notONNX(let source, let reason):
            return "\(source): not an ONNX model: \(reason)"
        case .unsupportedDataType(let name, let code):
            let supported = DType.allCases.map { DType.onnxName(code: $0.rawValue) }.joined(separator: ", ")
            return "'\(name)' has data type \(DType.onnxName(code: code)), which megafs does not support (supported: \(supported))"
        case .invalidTensor(let tensor, let detail):
            return "tensor '\(tensor)': \(detail)"
        case .invalidDimension(let tensor, let detail):
            return "tensor '\(tensor)': \(detail)"
        case .unsafeExternalPath(let tensor, let location, let reason):
            return "tensor '\(tensor)': external data location '\(location)' is refused: \(reason)"
        case .missingExternalFile(let tensor, let path):
            return "tensor '\(tensor)': external data file '\(path)' does not exist"
        case .externalRangeOutOfBounds(let tensor, let path, let offset, let length, let fileSize):
            return "tensor '\(tensor)': external data range \(offset)..<\(offset &+ length) (\(length) bytes at offset \(offset)) lies past the end of '\(path)', which has \(fileSize) bytes"
        case .externalDataFailed(let tensor, let path, let reason):
            return "tensor '\(tensor)': external data in '\(path)': \(reason)"
        case .unsupportedAttribute(let node, let attribute, let kind):
            return "node \(node): attribute '\(attribute)' is of kind \(kind), which megafs does not support"
        case .controlFlow(let nodes):
            return "control flow and subgraphs are not supported: \(nodes.joined(separator: ", "))"
        case .nonDefaultDomains(let ops):
            return "operators outside the default ONNX domain are not supported: \(ops.map(\.description).joined(separator: ", "))"
        case .unsupportedOperators(let ops):
            return "unsupported operators: \(ops.map(\.description).joined(separator: ", "))"
        case .invalidValueInfo(let value, let detail):
            return "value '\(value)': \(detail)"
        case .invalidModel(let message):
            return "invalid model: \(message)"
        case .invalidGraph(let message):
            return "invalid graph: \(message)"
        case .writeFailed(let path, let reason):
            return "\(path): cannot write: \(reason)"
        case .modelTooLarge(let bytes):
            return "the model would be \(bytes) bytes of protobuf, over protobuf's 2 GB limit: write it with external data"
        case .limitExceeded(let source, let detail):
            return "\(source): refused: \(detail)"
        }
    }
}

/// `FLOAT[64,3,7,7]`: the ONNX type name and shape, as error messages print them.
func onnxTypeLabel(code: Int32, shape: [Int]) -> String {
    "\(DType.onnxName(code: code))[\(shape.map(String.init).joined(separator: ","))]"
}
