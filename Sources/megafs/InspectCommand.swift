import ArgumentParser
import Foundation
import MegaFSConverter

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what an ONNX file or a megafs model file holds.",
        discussion: """
            Prints the operator histogram, parameter count, size on disk and in memory, compression \
            ratio, inputs and outputs, and (for model files) the metadata the converter recorded. \
            A model file is recognised by its magic bytes; anything else is read as ONNX.
            """)

    @Argument(help: "An .onnx or .mfs file.")
    var file: String

    @Flag(help: "Print the summary as JSON.")
    var json = false

    func run() throws {
        let summary: ModelSummary
        do {
            summary = try ModelSummary.of(path: file)
        } catch {
            throw CLIError("\(error)")
        }
        if json {
            try printJSON(summary)
            return
        }
        let formatName = summary.format == .mfs ? "megafs model file" : "ONNX model"
        print("\(summary.path): \(formatName), \(summary.kind ?? "unrecognised network"), opset \(summary.opset)")
        print("parameters: \(formatCount(summary.parameters)) in \(summary.tensors) tensors")
        var size = "size: \(formatBytes(summary.fileBytes)) on disk, \(formatBytes(summary.memoryBytes)) of weights in memory"
        if let ratio = summary.compressionRatio {
            size += String(format: ", weights compressed %.3fx in %d frames (%d byte-shuffled)",
                           ratio, summary.frames ?? 0, summary.shuffledFrames ?? 0)
        }
        print(size)
        if let q = summary.quantizedTensors, q > 0 { print("quantized tensors: \(q)") }
        for v in summary.inputs { print("input  \(describe(v))") }
        for v in summary.outputs { print("output \(describe(v))") }
        print("operators (\(summary.nodes) nodes):")
        let width = summary.operators.keys.map(\.count).max() ?? 0
        for (op, count) in summary.operators.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) {
            print("  \(op.padding(toLength: width, withPad: " ", startingAt: 0))  \(count)")
        }
        if summary.format == .onnx {
            let unsupported = summary.unsupportedOperators
            if !unsupported.isEmpty {
                print("not supported by megafs: " + unsupported.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", "))
            }
        }
        let shown = summary.metadata.filter { !$0.key.hasPrefix("graph.") && $0.key != "onnx.doc_string" }
        if !shown.isEmpty {
            print("metadata:")
            for (key, value) in shown.sorted(by: { $0.key < $1.key }) { print("  \(key): \(value)") }
        }
    }

    private func describe(_ v: ModelSummary.Value) -> String {
        "\(v.name): \(v.dtype)[\(v.shape?.joined(separator: ",") ?? "?")]"
    }
}
