import ArgumentParser
import Foundation
import MegaFSConverter
import MegaFSRuntime

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

    @Flag(help: "Also load the model into the runtime and list the kernel fusions it gets (batch 1 for a symbolic batch).")
    var fusions = false

    func run() throws {
        let summary: ModelSummary
        do {
            summary = try ModelSummary.of(path: file)
        } catch {
            throw CLIError("\(error)")
        }
        var fused: [(name: String, count: Int)] = []
        if fusions {
            do {
                fused = try loadFusions(isONNX: summary.format == .onnx)
            } catch {
                throw CLIError("\(error)")
            }
        }
        if json {
            try printJSON(InspectReport(summary: summary, fusions: fusions ? Dictionary(fused.map { ($0.name, $0.count) }) { a, _ in a } : nil))
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
        if fusions {
            print("fusions: " + (fused.isEmpty ? "none" : fused.map { "\($0.name) (\($0.count))" }.joined(separator: ", ")))
        }
        let shown = summary.metadata.filter { !$0.key.hasPrefix("graph.") && $0.key != "onnx.doc_string" }
        if !shown.isEmpty {
            print("metadata:")
            for (key, value) in shown.sorted(by: { $0.key < $1.key }) { print("  \(key): \(value)") }
        }
    }

    private func loadFusions(isONNX: Bool) throws -> [(name: String, count: Int)] {
        let session = try loadSession(file, onnx: isONNX)
        var shapes: [String: [Int]] = [:]
        for input in session.inputs {
            shapes[input.name] = input.type.shape?.map { $0.value ?? 1 } ?? []
        }
        return try session.prepare(inputShapes: shapes).fusions
    }

    private func describe(_ v: ModelSummary.Value) -> String {
        "\(v.name): \(v.dtype)[\(v.shape?.joined(separator: ",") ?? "?")]"
    }
}

struct InspectReport: Encodable {
    var summary: ModelSummary
    var fusions: [String: Int]?

    func encode(to encoder: any Encoder) throws {
        try summary.encode(to: encoder)
        var c = encoder.container(keyedBy: Key.self)
        if let fusions { try c.encode(fusions, forKey: .fusions) }
    }
    enum Key: String, CodingKey { case fusions }
}
