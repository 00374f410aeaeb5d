import Foundation
import MegaFSFormat
import MegaFSGraph
import MegaFSONNX
import MegaFSQuant

/// Options of a conversion.
public struct ConversionOptions: Sendable {
    public var compressionLevel: Int
    public var threads: Int
    public var shuffle: ShufflePolicy
    /// False: weights stored uncompressed, for the runtime to map (see `WriteOptions.compress`).
    public var compress: Bool
    /// Run the converter's graph passes (folding, BN folding, dead nodes, shape inference).
    public var optimize: Bool
    /// Quantize weights to int8 (per output channel, symmetric) when set.
    public var quantization: QuantizationOptions?
    /// With `quantization`: keep the most drift-sensitive weights float32 until the outputs'
    /// drift on seeded inputs is within this budget.
    public var driftBudget: DriftBudget?

    public init(compressionLevel: Int = 1, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                shuffle: ShufflePolicy = .auto, compress: Bool = true, optimize: Bool = true,
                quantization: QuantizationOptions? = nil, driftBudget: DriftBudget? = nil) {
        self.compressionLevel = compressionLevel
        self.threads = threads
        self.shuffle = shuffle
        self.compress = compress
        self.optimize = optimize
        self.quantization = quantization
        self.driftBudget = driftBudget
    }
}

/// The steps a conversion goes through, for progress display.
public enum ConversionStage: Sendable {
    case hashing
    case importing
    case pass(String)
    case driftBudget(DriftBudget.Progress)
    case quantizing
    case writing(fraction: Double)
}

/// What a conversion did and measured.
public struct ConversionReport: Sendable, Codable {
    public var source: String
    public var output: String
    public var sourceBytes: Int
    public var outputBytes: Int
    public var sourceSHA256: String
    public var kind: String?
    public var nodesBefore: Int
    public var nodesAfter: Int
    public var parameters: Int
    public var parameterBytes: Int
    /// Rewrites made by each pass, in order.
    public var passes: [PassCount]
    public var compressionRatio: Double
    public var seconds: Double
    /// What int8 quantization did, when asked for.
    public var quantization: QuantizationReport?

    public struct PassCount: Sendable, Codable {
        public var name: String
        public var rewrites: Int
    }
}

/// ONNX file -> graph -> passes -> model file.
public enum Converter {
    public static let version = "0.1.0"

    /// Converts `onnxPath` into a model file at `outputPath`. On failure nothing is left at
    /// `outputPath` (the writer is atomic) and the error names the problem.
    public static func convert(onnxPath: String, outputPath: String, options: ConversionOptions = ConversionOptions(),
                               progress: (@Sendable (ConversionStage) -> Void)? = nil) throws -> ConversionReport {
        let start = Date()
        progress?(.hashing)
        let digest = try SHA256.hashFile(atPath: onnxPath)
        progress?(.importing)
        var graph = try ONNXImporter().importModel(atPath: onnxPath)
        let nodesBefore = graph.nodes.count
        var passes: [ConversionReport.PassCount] = []
        if options.optimize {
            for (name, count) in try PassPipeline.converter.run(&graph, progress: { progress?(.pass($0)) }) {
                passes.append(.init(name: name, rewrites: count))
            }
        } else {
            _ = try ShapeInference().run(&graph)
        }
        let recognised = ModelKind.recognise(graph)
        let kind = recognised.map { ModelKind.metadataValue(kind: $0.kind, variant: $0.variant) }
        graph.metadata.merge(ModelMetadata.standardEntries(
            for: graph, sourceSHA256: digest.hex, sourceName: (onnxPath as NSString).lastPathComponent,
            converterVersion: version, modelKind: kind)) { _, new in new }

        var records: [String: TensorQuantization] = [:]
        var quantization: QuantizationReport?
        if var q = options.quantization {
            var outcome: DriftBudget.Outcome?
            if let budget = options.driftBudget {
                // Only weights the options would quantize compete for the budget.
                let eligible = WeightQuantizer.plan(graph, options: q).filter { $0.keptBecause == nil }
                outcome = try budget.choose(graph: graph, candidates: eligible) { progress?(.driftBudget($0)) }
                q.keepWeights.formUnion(outcome!.keptFloat32)
            }
            progress?(.quantizing)
            let result = WeightQuantizer.quantize(&graph, options: q)
            records = result.records
            quantization = result.report
            quantization?.drift = outcome
            graph.metadata[ModelMetadataKey.quantization] = "int8-weights"
            graph.metadata[ModelMetadataKey.quantizedWeights] = String(result.report.quantizedWeights)
            if let outcome { graph.metadata[ModelMetadataKey.quantizationDrift] = String(outcome.drift) }
        }

        let writeOptions = WriteOptions(
            compressionLevel: options.compressionLevel, threads: options.threads, shuffle: options.shuffle, compress: options.compress,
            quantization: records,
            progress: { fraction in progress?(.writing(fraction: fraction)); return true })
        let summary = try ModelFileWriter.write(graph, to: outputPath, options: writeOptions)
        let sourceBytes = (try? FileManager.default.attributesOfItem(atPath: onnxPath)[.size] as? Int) ?? 0
        return ConversionReport(
            source: onnxPath, output: outputPath, sourceBytes: sourceBytes ?? 0,
            outputBytes: Int(summary.fileBytes), sourceSHA256: digest.hex, kind: kind,
            nodesBefore: nodesBefore, nodesAfter: graph.nodes.count,
            parameters: graph.parameterCount, parameterBytes: graph.parameterBytes,
            passes: passes, compressionRatio: summary.compressionRatio,
            seconds: Date().timeIntervalSince(start), quantization: quantization)
    }
}
