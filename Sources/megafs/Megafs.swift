import ArgumentParser
import Foundation
import MegaFSGraph
import MegaFSONNX
import MegaFSRuntime

@main
struct Megafs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "megafs",
        abstract: "Convert the MegaFS face-swapping networks from ONNX to a compact model file and run them on CPU.",
        discussion: """
            Typical use:
              megafs convert encoder.onnx -o encoder.mfs     ONNX -> native model file
              megafs inspect encoder.mfs                     operators, parameters, sizes
              megafs run generator.mfs --input struct=s.npy --input latents=l.npy --output-dir out/
            """,
        version: MegaFSVersion.string,
        subcommands: [Convert.self, Inspect.self, Run.self, Swap.self, Validate.self, Serve.self])

    static func main() {
        // Before any thread of ours exists (the server loads its models beside its HTTP threads).
        _ = OpenBLASGemm.quietWorkers
        HeapTrim.fixMmapThreshold()
        main(nil)
    }
}

enum MegaFSVersion {
    static let string = "0.1.0"
}

/// A one-line error for the user; ArgumentParser prints it and exits non-zero.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Progress on standard error: rewritten in place on a terminal, one line per step otherwise.
final class ProgressLine: @unchecked Sendable {
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private let enabled: Bool
    private var lastLength = 0
    private var lastPrint = Date.distantPast
    private let lock = NSLock()

    init(enabled: Bool = true) { self.enabled = enabled }

    /// Shows `message`; on a terminal throttled to ~10 updates a second unless `force`.
    func update(_ message: String, force: Bool = false) {
        guard enabled else { return }
        lock.lock(); defer { lock.unlock() }
        if isTerminal {
            let now = Date()
            guard force || now.timeIntervalSince(lastPrint) > 0.1 else { return }
            lastPrint = now
            let padding = String(repeating: " ", count: max(0, lastLength - message.count))
            FileHandle.standardError.write(Data("\r\(message)\(padding)".utf8))
            lastLength = message.count
        } else if force {
            FileHandle.standardError.write(Data("\(message)\n".utf8))
        }
    }

    /// Ends the progress line so that the next output starts on a fresh line.
    func finish() {
        guard enabled, isTerminal, lastLength > 0 else { return }
        lock.lock(); defer { lock.unlock() }
        FileHandle.standardError.write(Data("\r\(String(repeating: " ", count: lastLength))\r".utf8))
        lastLength = 0
    }
}

/// Human-readable byte counts: 1.2 MB, 968.1 MB (decimal units, as file managers show).
func formatBytes(_ bytes: Int) -> String {
    let b = Double(bytes)
    if b >= 1e9 { return String(format: "%.2f GB", b / 1e9) }
    if b >= 1e6 { return String(format: "%.1f MB", b / 1e6) }
    if b >= 1e3 { return String(format: "%.1f kB", b / 1e3) }
    return "\(bytes) B"
}

func formatCount(_ n: Int) -> String {
    let d = Double(n)
    if d >= 1e9 { return String(format: "%.2fG", d / 1e9) }
    if d >= 1e6 { return String(format: "%.2fM", d / 1e6) }
    if d >= 1e3 { return String(format: "%.1fk", d / 1e3) }
    return String(n)
}

/// Writes a Codable value as pretty, key-sorted JSON on standard output.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    let data = try encoder.encode(value)
    print(String(decoding: data, as: UTF8.self))
}

/// A runtime session for a model file, or for an ONNX file imported and optimised on the fly
/// with the converter's passes.
func loadSession(_ path: String, onnx: Bool, options: SessionOptions = SessionOptions()) throws -> InferenceSession {
    guard onnx else { return try InferenceSession(modelPath: path, options: options) }
    var graph = try ONNXImporter().importModel(atPath: path)
    try PassPipeline.converter.run(&graph)
    return try InferenceSession(graph: graph, options: options)
}
