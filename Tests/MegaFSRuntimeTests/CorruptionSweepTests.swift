import Foundation
import Testing
import MegaFSGraph
import MegaFSONNX
@testable import MegaFSFormat
@testable import MegaFSRuntime

/// Issue 10, corruption sweep: a real converted model file (the tiny injection swapper,
/// fixtures/swapper-injection) with one bit flipped, or cut short, at a time, loaded by the
/// model-file reader and by a runtime session. Each copy must either be refused with a typed
/// error naming the problem, or (only where the byte lies outside every checksummed and
/// interpreted field) load and give bit-identical outputs on the fixture's inputs.
@Suite(.serialized) struct CorruptionSweepTests {
    /// Every Nth byte of the small sections and every Mth of the weight frames is flipped
    /// (from each one's first byte), every byte of the header and section table, every Pth
    /// byte of the padding. A flip in a frame costs a full graph decode twice (reader and
    /// session) before the frame's checksum fails, one in padding a session and a run.
    static let sectionStride = 23
    static let frameStride = 127
    static let paddingStride = 5
    /// Truncation: every length up to this, then every `truncationStride`th, then the last 256.
    static let truncateEveryLengthUpTo = 8192
    static let truncationStride = 61

    struct Original {
        var bytes: [UInt8]
        var feeds: [String: Tensor]
        var outputs: [String: Tensor]
        var regions: [Region]
        var headerAndTableEnd: Int
    }

    /// A byte range of the file and what covers it.
    struct Region {
        var name: String
        var range: Range<Int>
        /// Covered by a checksum the reader verifies (header+table, a small section, a frame).
        var checksummed: Bool
        var isFrame = false
    }

    /// tmpfs when there is one (thousands of files are written); created by `original()`,
    /// removed at the end of each test.
    static let workDir: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        return "\(base)/megafs-sweep-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }()

    /// Converted like `megafs convert` (import, converter passes, write); 16 KiB frames so the
    /// file has several frames and the padding between them.
    static func original(compressed: Bool = true) throws -> Original {
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        let m = try #require(ModelFixtures.models.first { $0.name == "swapper-injection" })
        var graph = try ONNXImporter().importModel(atPath: "\(Paths.fixtures)/\(m.path)")
        try PassPipeline.converter.run(&graph)
        let path = "\(workDir)/original.mfs"
        _ = try ModelFileWriter.write(graph, to: path, options: WriteOptions(threads: 1, compress: compressed, frameSize: 16384))
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        var feeds: [String: Tensor] = [:]
        for input in m.inputs { feeds[input.name] = try NPY.read(path: "\(Paths.fixtures)/\(input.file)") }
        let outputs = try InferenceSession(modelPath: path, options: SessionOptions(threads: 1)).run(feeds)

        let reader = try ModelFileReader(path: path)
        let tableEnd = 64 + 32 * reader.sections.count
        var regions = [Region(name: "header and section table", range: 0..<tableEnd, checksummed: true)]
        for s in reader.sections where s.kind != SectionKind.data.rawValue {
            regions.append(Region(name: "\(s.name) section", range: Int(s.offset)..<Int(s.offset + s.length), checksummed: true))
        }
        for (i, f) in reader.frames.enumerated() {
            regions.append(Region(name: "frame \(i) (\(f.codec), \(f.filter))",
                                  range: Int(f.fileOffset)..<Int(f.fileOffset + f.storedLength), checksummed: true, isFrame: true))
        }
        regions.sort { $0.range.lowerBound < $1.range.lowerBound }
        // Whatever lies between them is alignment padding: no field points into it.
        var padding: [Region] = []
        var end = 0
        for r in regions {
            if r.range.lowerBound > end { padding.append(Region(name: "padding", range: end..<r.range.lowerBound, checksummed: false)) }
            end = max(end, r.range.upperBound)
        }
        if end < bytes.count { padding.append(Region(name: "padding", range: end..<bytes.count, checksummed: false)) }
        print("Sweep: \(m.path) -> \(bytes.count) bytes, \(reader.frames.count) frames, \(reader.tensors.count) tensors, "
              + "\(graph.nodes.count) nodes; regions: " + (regions + padding).sorted { $0.range.lowerBound < $1.range.lowerBound }
              .map { "\($0.name) \($0.range)" }.joined(separator: ", "))
        return Original(bytes: bytes, feeds: feeds, outputs: outputs, regions: (regions + padding).sorted { $0.range.lowerBound < $1.range.lowerBound },
                        headerAndTableEnd: tableEnd)
    }

    /// The case name of a ModelFileError, for counting.
    static func kind(_ e: ModelFileError) -> String {
        Mirror(reflecting: e).children.first?.label ?? "\(e)"
    }

    /// Loads `path` with the reader and, when that works, with a session that runs the feeds.
    /// Returns the outcome; records an issue on anything but a typed error or identical outputs.
    static func load(_ path: String, _ original: Original, what: String) -> Outcome {
        let readerError: ModelFileError?
        do {
            _ = try ModelFileReader.read(path)
            readerError = nil
        } catch let e as ModelFileError {
            readerError = e
        } catch {
            Issue.record("\(what): the reader threw an untyped error: \(error)")
            return .untyped
        }
        // The session loads the same file; when the reader refused it, so must the session,
        // passing the reader's message on.
        do {
            let session = try InferenceSession(modelPath: path, options: SessionOptions(threads: 1))
            if let readerError {
                Issue.record("\(what): the session accepted a file the reader refused (\(readerError))")
                return .untyped
            }
            let outputs = try session.run(original.feeds)
            guard outputs.keys.sorted() == original.outputs.keys.sorted() else {
                Issue.record("\(what): outputs \(outputs.keys.sorted()), expected \(original.outputs.keys.sorted())")
                return .differentOutputs
            }
            for (name, want) in original.outputs {
                let got = outputs[name]!
                if got.dtype != want.dtype || got.shape != want.shape || !got.storage.bytes.elementsEqual(want.storage.bytes) {
                    Issue.record("\(what): loaded but output '\(name)' differs")
                    return .differentOutputs
                }
            }
            return .identical
        } catch let e as RuntimeError {
            guard let readerError else {
                Issue.record("\(what): the reader accepted the file but the session refused it: \(e)")
                return .untyped
            }
            #expect("\(e)".contains("\(readerError)"), "\(what): session error \(e) does not carry the reader's \(readerError)")
            #expect("\(readerError)".contains(path), "\(what): the message does not name the file: \(readerError)")
            return .refused(kind(readerError), readerError)
        } catch {
            Issue.record("\(what): the session threw an untyped error: \(error)")
            return .untyped
        }
    }

    enum Outcome {
        case refused(String, ModelFileError)
        case identical
        case differentOutputs
        case untyped
    }

    /// Also over the file written uncompressed (`--uncompressed`), whose tensors the reader maps
    /// and whose frames it checks in place: every 1021st byte of its (larger) frames.
    @Test(arguments: [true, false])
    func bitFlipSweep(compressed: Bool) throws {
        let start = DispatchTime.now().uptimeNanoseconds
        let original = try Self.original(compressed: compressed)
        let frameStride = compressed ? Self.frameStride : 1021
        let path = "\(Self.workDir)/flipped.mfs"
        defer { try? FileManager.default.removeItem(atPath: Self.workDir) }

        // Which byte positions and bits: all 8 bits of every header/table byte; one bit (the
        // position mod 8) of every padding byte and of every Nth byte of each section and frame.
        var cases: [(offset: Int, bit: Int)] = []
        for r in original.regions {
            let stride = r.range.upperBound <= original.headerAndTableEnd ? 1 : !r.checksummed ? Self.paddingStride
                : r.isFrame ? frameStride : Self.sectionStride
            for offset in r.range where (offset - r.range.lowerBound) % stride == 0 {
                if offset < original.headerAndTableEnd {
                    for bit in 0..<8 { cases.append((offset, bit)) }
                } else {
                    cases.append((offset, offset % 8))
                }
            }
        }

        var counts: [String: Int] = [:]
        var seconds: [String: Double] = [:]
        var accepted: [Int] = []
        var bytes = original.bytes
        for (offset, bit) in cases {
            bytes[offset] ^= 1 << bit
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            bytes[offset] ^= 1 << bit
            let region = original.regions.first { $0.range.contains(offset) }!
            let what = "bit \(bit) of byte \(offset) (\(region.name))"
            let caseStart = DispatchTime.now().uptimeNanoseconds
            let outcome = Self.load(path, original, what: what)
            seconds[region.isFrame ? "frames" : region.name, default: 0]
                += Double(DispatchTime.now().uptimeNanoseconds - caseStart) / 1e9
            switch outcome {
            case .refused(let kind, let error):
                counts["refused: \(kind)", default: 0] += 1
                if region.checksummed && offset >= original.headerAndTableEnd {
                    // Inside a section or frame, the checksum is what catches it.
                    #expect(isChecksum(error), "\(what): \(error)")
                }
            case .identical:
                counts["loaded, identical outputs", default: 0] += 1
                accepted.append(offset)
                #expect(!region.checksummed, "\(what): a flip inside a checksummed region went unnoticed")
            case .differentOutputs:
                counts["LOADED WITH DIFFERENT OUTPUTS", default: 0] += 1
            case .untyped:
                counts["untyped error", default: 0] += 1
            }
        }
        let total = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print("Sweep: time by region: " + seconds.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.1f", $0.value)) s" }
            .joined(separator: ", "))
        print("Sweep: \(cases.count) flips (strides: sections \(Self.sectionStride), frames \(frameStride), padding \(Self.paddingStride)) in \(String(format: "%.1f", total)) s: "
              + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        print("Sweep: accepted flips at \(Self.ranges(accepted)) (all alignment padding: no offset, length or checksum covers them)")

        #expect(counts["LOADED WITH DIFFERENT OUTPUTS"] == nil)
        #expect(counts["untyped error"] == nil)
        let refused = counts.filter { $0.key.hasPrefix("refused") }.values.reduce(0, +)
        #expect(refused + accepted.count == cases.count)
        #expect(refused > cases.count * 9 / 10)
        // Every header and section table flip is refused (magic, version, or the header checksum).
        #expect(!accepted.contains { $0 < original.headerAndTableEnd })
        #expect(counts["refused: checksumMismatch"] ?? 0 > 0 && counts["refused: notAModelFile"] ?? 0 > 0
                && counts["refused: unsupportedVersion"] ?? 0 > 0)
    }

    @Test(arguments: [true, false])
    func truncationSweep(compressed: Bool) throws {
        let start = DispatchTime.now().uptimeNanoseconds
        let original = try Self.original(compressed: compressed)
        let path = "\(Self.workDir)/truncated.mfs"
        defer { try? FileManager.default.removeItem(atPath: Self.workDir) }
        let n = original.bytes.count
        var lengths = Set(0...min(Self.truncateEveryLengthUpTo, n - 1))
        lengths.formUnion(stride(from: Self.truncateEveryLengthUpTo, to: n, by: Self.truncationStride))
        lengths.formUnion(max(0, n - 256)..<n)
        // One full copy, cut shorter and shorter in place.
        try Data(original.bytes).write(to: URL(fileURLWithPath: path))
        var counts: [String: Int] = [:]
        for length in lengths.sorted(by: >) {
            #expect(truncate(path, off_t(length)) == 0)
            switch Self.load(path, original, what: "truncated to \(length) of \(n) bytes") {
            case .refused(let kind, let error):
                counts[kind, default: 0] += 1
                #expect(isChecksum(error) == false && "\(error)".contains("truncated"), "length \(length): \(error)")
            case .identical, .differentOutputs, .untyped:
                Issue.record("truncated to \(length) of \(n) bytes: not refused")
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print("Sweep: \(lengths.count) truncations of \(n) bytes in \(String(format: "%.1f", seconds)) s: "
              + counts.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        #expect(counts.values.reduce(0, +) == lengths.count)
    }

    static func ranges(_ offsets: [Int]) -> String {
        var out: [String] = []
        var i = 0
        let sorted = offsets.sorted()
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count && sorted[j + 1] == sorted[j] + 1 { j += 1 }
            out.append(i == j ? "\(sorted[i])" : "\(sorted[i])...\(sorted[j])")
            i = j + 1
        }
        return out.isEmpty ? "none" : out.joined(separator: ", ")
    }
}

func isChecksum(_ e: ModelFileError) -> Bool { if case .checksumMismatch = e { return true } else { return false } }

/// The resource-limit cases that need a session: a cycle, and shape targets of 10^12
/// elements, in a model file and in an ONNX graph handed straight to a session.
@Suite struct SessionResourceLimitTests {
    @Test func cycleInAModelFileIsRefusedBySession() throws {
        var graph = Graph(name: "cycle", opsets: ["": 17])
        graph.inputs = [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [4]))]
        graph.nodes = [Node(name: "a", opType: "Add", inputs: ["x", "b_out"], outputs: ["a_out"]),
                       Node(name: "b", opType: "Relu", inputs: ["a_out"], outputs: ["b_out"])]
        graph.outputs = [ValueInfo(name: "a_out", type: TensorType(dtype: .float32, dims: [4]))]
        let path = "\(NSTemporaryDirectory())/megafs-cycle-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).mfs"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ModelFileWriter.write(graph, to: path)
        do {
            _ = try InferenceSession(modelPath: path)
            Issue.record("a cyclic graph was accepted")
        } catch let e as RuntimeError {
            #expect("\(e)".contains("cycle") && "\(e)".contains("a") && "\(e)".contains("b"), "\(e)")
        }
    }

    @Test(arguments: ["ConstantOfShape", "Expand", "Reshape"])
    func shapeTargetOfATrillionElementsIsRefusedBySession(op: String) throws {
        var graph = Graph(name: "huge", opsets: ["": 17])
        graph.initializers["s"] = Tensor([Int64(1_000_000), 1_000_000], shape: [2])
        graph.initializers["one"] = Tensor([Float(1)], shape: [1])
        graph.inputs = [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [4]))]
        let inputs = op == "ConstantOfShape" ? ["s"] : op == "Expand" ? ["one", "s"] : ["x", "s"]
        graph.nodes = [Node(name: "big", opType: op, inputs: inputs, outputs: ["y"])]
        graph.outputs = [ValueInfo(name: "y", type: TensorType(dtype: .float32, shape: nil))]
        // Straight from an (unconverted) graph: planning refuses the shape, so running fails
        // with an error instead of allocating 4 TB.
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            let session = try InferenceSession(graph: graph, options: SessionOptions(threads: 1))
            _ = try session.run(["x": Tensor([Float](repeating: 1, count: 4), shape: [4])])
            Issue.record("\(op): a 10^12-element result was accepted")
        } catch {
            let text = "\(error)"
            print("ResourceLimit: session, \(op) target [10^6, 10^6]: \(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6) ms: \(text.prefix(200))")
            #expect(text.contains("too large") || text.contains("cannot reshape"), "\(op): \(text)")
        }
    }
}
