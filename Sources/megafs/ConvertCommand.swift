import ArgumentParser
import Foundation
import MegaFSConverter
import MegaFSFormat
import MegaFSQuant

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert an ONNX model into a compact megafs model file (.mfs).",
        discussion: """
            Imports the ONNX file (initializers inline or as external data), folds constants and \
            shape arithmetic, folds BatchNormalization into the preceding convolution, removes dead \
            nodes, infers shapes, crops convolution kernels whose edge taps only meet padding, and writes zstd-compressed weights with a checksum per frame \
            (--uncompressed stores them as they are, for the runtime to map: a larger file that loads \
            several times faster). \
            The output is written atomically: on any error no file is left behind.

            With --quantize int8, weights of Conv, ConvTranspose, Gemm, MatMul and the modulated \
            convolutions become int8 per output channel (symmetric, float32 scales); the runtime keeps \
            them int8 in memory. --drift-budget measures each weight's effect on the outputs on seeded \
            inputs and keeps the most sensitive ones float32 until the drift (1 - cosine similarity of \
            each output, the worst one) is within the budget, e.g. 0.001 for cosine >= 0.999. \
            Check the result with `megafs validate`.
            """)

    @Argument(help: "The ONNX model to convert.")
    var model: String

    @Option(name: [.short, .customLong("output")], help: "Where to write the model file (default: the input's name with .mfs).")
    var output: String?

    @Option(name: .customLong("zstd-level"), help: "zstd level, 1 to 19. 1 (the default) is fastest and, on float weights after byte shuffling, also the smallest.")
    var zstdLevel: Int = 1

    @Option(help: "Threads for compression (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Byte-shuffle filter before zstd: auto (where it helps), on, off.")
    var shuffle: ShuffleChoice = .auto

    @Flag(help: ArgumentHelp(
        "Store the weights uncompressed, so that the runtime maps them from the file instead of decoding them.",
        discussion: "The file grows (about 1.2x for float32, less for int8) but loading takes a fraction of the time, "
            + "and processes using one file share its pages. Frames are still checksummed and checked at every load."))
    var uncompressed = false

    @Flag(name: .customLong("no-optimize"), help: "Skip constant folding and the other graph passes (shape inference still runs).")
    var noOptimize = false

    @Option(help: "Quantize weights: int8 (per output channel, symmetric). Default: keep float32.")
    var quantize: QuantizeChoice?

    @Option(name: .customLong("min-elements"), help: "With --quantize: weights with fewer elements stay float32.")
    var minElements: Int = 1024

    @Option(name: .customLong("keep-fp32"), help: "With --quantize: keep weights whose name or node name matches this glob pattern float32 (repeatable).")
    var keepFP32: [String] = []

    @Option(name: .customLong("drift-budget"), help: "With --quantize: keep the most sensitive weights float32 until the outputs' drift (1 - cosine) on seeded inputs is at most this, e.g. 0.001.")
    var driftBudget: Double?

    @Option(name: .customLong("drift-seed"), help: "Seed of the inputs the drift budget measures on.")
    var driftSeed: UInt64 = 0x5EED

    @Flag(help: "Print the conversion report as JSON on standard output.")
    var json = false

    @Flag(name: .shortAndLong, help: "No progress line.")
    var quiet = false

    enum QuantizeChoice: String, ExpressibleByArgument, CaseIterable {
        case int8
    }

    enum ShuffleChoice: String, ExpressibleByArgument, CaseIterable {
        case auto, on, off
        var policy: ShufflePolicy { ShufflePolicy(rawValue: rawValue)! }
    }

    func validate() throws {
        guard (1...19).contains(zstdLevel) else { throw ValidationError("--zstd-level must be between 1 and 19") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if quantize == nil && (driftBudget != nil || !keepFP32.isEmpty) {
            throw ValidationError("--drift-budget and --keep-fp32 need --quantize int8")
        }
        if let b = driftBudget, !(b > 0 && b < 1) { throw ValidationError("--drift-budget must be between 0 and 1 (e.g. 0.001)") }
        guard minElements >= 0 else { throw ValidationError("--min-elements must not be negative") }
    }

    var outputPath: String {
        if let output { return output }
        let url = URL(fileURLWithPath: model)
        return url.deletingPathExtension().appendingPathExtension("mfs").path
    }

    func run() throws {
        let progress = ProgressLine(enabled: !quiet)
        let options = ConversionOptions(
            compressionLevel: zstdLevel, threads: threads, shuffle: shuffle.policy, compress: !uncompressed, optimize: !noOptimize,
            quantization: quantize.map { _ in QuantizationOptions(minElements: minElements, keepFloat32: keepFP32, threads: threads) },
            driftBudget: driftBudget.map { DriftBudget(budget: $0, seed: driftSeed, threads: threads) })
        let report: ConversionReport
        do {
            report = try Converter.convert(onnxPath: model, outputPath: outputPath, options: options) { stage in
                switch stage {
                case .hashing: progress.update("hashing \(model)", force: true)
                case .importing: progress.update("importing \(model)", force: true)
                case .pass(let name): progress.update("pass: \(name)", force: true)
                case .quantizing: progress.update("quantizing weights to int8", force: true)
                case .driftBudget(let p):
                    switch p {
                    case .reference: progress.update("drift budget: reference run", force: true)
                    case .sensitivity(let done, let of):
                        progress.update("drift budget: sensitivity of weight \(done)/\(of)", force: done == of)
                    case .search(let keeping, let drift):
                        progress.update(String(format: "drift budget: keeping %d float32 -> drift %.3g", keeping, drift), force: true)
                    }
                case .writing(let fraction):
                    progress.update(String(format: "writing %@: %3.0f%%", outputPath, fraction * 100), force: fraction >= 1)
                }
            }
        } catch {
            progress.finish()
            throw CLIError("\(error)")
        }
        progress.finish()
        if json {
            try printJSON(report)
            return
        }
        print("\(report.output): \(report.kind ?? "unrecognised model"), \(report.nodesAfter) nodes (\(report.nodesBefore) in ONNX), \(formatCount(report.parameters)) parameters")
        print("size: \(formatBytes(report.sourceBytes)) ONNX -> \(formatBytes(report.outputBytes)) (weights compressed \(String(format: "%.3f", report.compressionRatio))x)")
        let rewrites = report.passes.filter { $0.rewrites > 0 && $0.name != "shape-inference" }
        if !rewrites.isEmpty {
            print("passes: " + rewrites.map { "\($0.name) \($0.rewrites)" }.joined(separator: ", "))
        }
        if let q = report.quantization {
            let kept = q.candidates.filter { $0.keptBecause != nil }
            print("int8: \(q.quantizedWeights) of \(q.candidates.count) weights (\(formatBytes(q.quantizedFloatBytes)) as float32), \(kept.count) kept float32 (\(formatBytes(q.keptFloatBytes)))")
            if let d = q.drift {
                print(String(format: "drift (1 - cosine) on seeded inputs: all int8 %.3g, chosen %.3g (budget %.3g), %d weights kept float32 (%@) by the budget, %d runs in %.1f s",
                             d.allInt8Drift, d.drift, d.budget, d.keptFloat32.count, formatBytes(d.keptFloat32Bytes), d.evaluations, d.seconds))
            }
        }
        print(String(format: "time: %.2f s", report.seconds))
    }
}
