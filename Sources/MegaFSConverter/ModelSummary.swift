import Foundation
import MegaFSFormat
import MegaFSGraph
import MegaFSONNX

/// What `megafs inspect` shows of an ONNX file or a model file.
public struct ModelSummary: Sendable, Codable {
    public enum FileFormat: String, Sendable, Codable { case onnx, mfs }

    public struct Value: Sendable, Codable {
        public var name: String
        public var dtype: String
        /// Dimensions as text: numbers, or the symbolic name ("N"), or "?".
        public var shape: [String]?
    }

    public var path: String
    public var format: FileFormat
    public var fileBytes: Int
    /// Bytes of all weights once loaded in memory (float32 weights: 4 bytes per parameter).
    public var memoryBytes: Int
    public var parameters: Int
    public var tensors: Int
    public var nodes: Int
    public var operators: [String: Int]
    public var inputs: [Value]
    public var outputs: [Value]
    public var opset: Int
    /// Raw weight bytes over compressed bytes (model files only).
    public var compressionRatio: Double?
    public var frames: Int?
    public var shuffledFrames: Int?
    public var quantizedTensors: Int?
    public var kind: String?
    public var metadata: [String: String]

    /// Summarises a file: a model file by its magic, anything else as ONNX.
    public static func of(path: String) throws -> ModelSummary {
        if try isModelFile(path) { return try ofModelFile(path) }
        return try ofONNX(path)
    }

    static func isModelFile(_ path: String) throws -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            if !FileManager.default.fileExists(atPath: path) { throw ONNXError.fileNotFound(path: path) }
            throw ONNXError.unreadable(path: path, reason: "cannot open for reading")
        }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: ModelFileFormat.magic.count)) ?? Data()
        return Array(head) == ModelFileFormat.magic
    }

    static func values(_ infos: [ValueInfo]) -> [Value] {
        infos.map { Value(name: $0.name, dtype: $0.type.dtype.name, shape: $0.type.shape?.map(\.description)) }
    }

    static func ofModelFile(_ path: String) throws -> ModelSummary {
        let s = try ModelFileReader.inspect(path)
        return ModelSummary(
            path: path, format: .mfs, fileBytes: Int(s.fileBytes), memoryBytes: Int(s.rawBytes),
            parameters: s.tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }, tensors: s.tensorCount,
            nodes: s.nodeCount, operators: s.operatorHistogram,
            inputs: values(s.inputs), outputs: values(s.outputs), opset: s.opsets[""] ?? s.opsets["ai.onnx"] ?? 0,
            compressionRatio: s.compressionRatio, frames: s.frameCount, shuffledFrames: s.shuffledFrames,
            quantizedTensors: s.quantizedTensors, kind: s.metadata[ModelMetadataKey.modelKind],
            metadata: s.metadata)
    }

    static func ofONNX(_ path: String) throws -> ModelSummary {
        let options = ImportOptions(checkOperators: false, allowNonDefaultDomains: true)
        let graph = try ONNXImporter(options: options).importModel(atPath: path)
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let recognised = ModelKind.recognise(graph)
        return ModelSummary(
            path: path, format: .onnx, fileBytes: fileBytes ?? 0, memoryBytes: graph.parameterBytes,
            parameters: graph.parameterCount, tensors: graph.initializers.count, nodes: graph.nodes.count,
            operators: graph.operatorHistogram, inputs: values(graph.inputs), outputs: values(graph.outputs),
            opset: graph.opset, compressionRatio: nil, frames: nil, shuffledFrames: nil, quantizedTensors: nil,
            kind: recognised.map { ModelKind.metadataValue(kind: $0.kind, variant: $0.variant) },
            metadata: graph.metadata)
    }

    /// Unsupported operators of an ONNX file's graph, with counts (empty when all are supported).
    public var unsupportedOperators: [String: Int] {
        operators.filter { OperatorRegistry.lookup($0.key) == nil }
    }
}
