import ArgumentParser
import Foundation
import MegaFSConverter
import MegaFSFormat

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert an ONNX model into a compact megafs model file (.mfs).",
        discussion: """
            Imports the ONNX file (initializers inline or as external data), folds constants and \
            shape arithmetic, folds BatchNormalization into the preceding convolution, removes dead \
            nodes, infers shapes, and writes zstd-compressed weights with a checksum per frame. \
            The output is written atomically: on any error no file is left behind.
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

    @Flag(name: .customLong("no-optimize"), help: "Skip constant folding and the other graph passes (shape inference still runs).")
    var noOptimize = false

    @Flag(help: "Print the conversion report as JSON on standard output.")
    var json = false

    @Flag(name: .shortAndLong, help: "No progress line.")
    var quiet = false

    enum ShuffleChoice: String, ExpressibleByArgument, CaseIterable {
        case auto, on, off
        var policy: ShufflePolicy { ShufflePolicy(rawValue: rawValue)! }
    }

    func validate() throws {
        guard (1...19).contains(zstdLevel) else { throw ValidationError("--zstd-level must be between 1 and 19") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    var outputPath: String {
        if let output { return output }
        let url = URL(fileURLWithPath: model)
        return url.deletingPathExtension().appendingPathExtension("mfs").path
    }

    func run() throws {
        let progress = ProgressLine(enabled: !quiet)
        let options = ConversionOptions(compressionLevel: zstdLevel, threads: threads, shuffle: shuffle.policy,
                                        optimize: !noOptimize)
        let report: ConversionReport
        do {
            report = try Converter.convert(onnxPath: model, outputPath: outputPath, options: options) { stage in
                switch stage {
                case .hashing: progress.update("hashing \(model)", force: true)
                case .importing: progress.update("importing \(model)", force: true)
                case .pass(let name): progress.update("pass: \(name)", force: true)
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
        print(String(format: "time: %.2f s", report.seconds))
    }
}
