import Foundation
import MegaFSGraph
import Testing
@testable import MegaFSFormat

/// A fresh, empty temporary folder, removed by `cleanup()`.
struct TempDir {
    let path: String
    init(onDisk: Bool = false) throws {
        // tmpfs when there is one: the truncation and flip tests write thousands of small files.
        let base = !onDisk && FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm/" : NSTemporaryDirectory()
        path = base + "megafs-format-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { path + "/" + name }
    var contents: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// Runs a tool and returns its exit status (-1 if it could not start).
func runTool(_ path: String, _ arguments: [String]) -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return -1 }
    p.waitUntilExit()
    return p.terminationStatus
}

func readBytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
/// Writes a file without Foundation's fsync (the flip test writes thousands).
func writeBytes(_ bytes: [UInt8], to path: String) throws {
    guard let f = fopen(path, "wb") else { throw CocoaError(.fileWriteUnknown) }
    defer { fclose(f) }
    guard bytes.isEmpty || fwrite(bytes, 1, bytes.count, f) == bytes.count else { throw CocoaError(.fileWriteUnknown) }
}

/// Deterministic pseudo-random numbers (SplitMix64).
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func unit() -> Float { Float(next() >> 40) / Float(1 << 24) }
    /// Standard normal (Box-Muller).
    mutating func normal() -> Float {
        let u = max(unit(), 1e-7), v = unit()
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

func normalWeights(_ count: Int, scale: Float, seed: UInt64) -> [Float] {
    var rng = SplitMix(state: seed)
    return (0..<count).map { _ in rng.normal() * scale }
}

/// A graph exercising every attribute kind, every dtype, scalars, empty tensors, a tensor
/// larger than one 4 KiB frame, symbolic and unknown dims, two opset domains and metadata.
func makeTestGraph(bigElements: Int = 3000) -> Graph {
    var rng = SplitMix(state: 42)
    let big = Tensor(normalWeights(bigElements, scale: 0.02, seed: 7), shape: [bigElements / 100, 100])
    let half = (0..<6).map { Float16(Float($0) * 0.5 - 1).bitPattern }
    let f16 = half.withUnsafeBytes { try! Tensor(dtype: .float16, shape: [2, 3], bytes: $0) }
    let initializers: [String: Tensor] = [
        "conv.weight": big,
        "conv.bias": Tensor([0.5, -1.25, .infinity, -0.0], shape: [4]),
        "nan": Tensor([Float.nan, Float(bitPattern: 0x7FC0_1234)], shape: [2]),
        "half": f16,
        "shape": Tensor([Int64(1), -1, Int64.max, Int64.min], shape: [4]),
        "i32": Tensor([Int32(7), -8, Int32.max], shape: [3, 1]),
        "i8": Tensor([Int8(-128), 0, 127, 5], shape: [2, 2]),
        "u8": Tensor(rng.bytes(37), shape: [37]),
        "flags": Tensor([true, false, true], shape: [3]),
        "scalar": Tensor(scalar: Float(3.5)),
        "scalar64": Tensor(scalar: Int64(-9)),
        "empty": Tensor(zeros: .float32, shape: [0, 4]),
        "empty8": Tensor(zeros: .int64, shape: [3, 0]),
        "ünïcode/名前": Tensor([Float(1)], shape: [1, 1, 1]),
    ]
    let attrTensor = Tensor([Int64(2), 3], shape: [2])
    let nodes = [
        Node(name: "conv0", opType: "Conv", inputs: ["x", "conv.weight", "conv.bias"], outputs: ["c"],
             attributes: ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1]), "group": .int(1),
                          "auto_pad": .string("NOTSET"), "empty_ints": .ints([])]),
        Node(name: "", opType: "LeakyRelu", inputs: ["c"], outputs: ["l"], attributes: ["alpha": .float(0.01)]),
        Node(name: "cst", opType: "Constant", inputs: [], outputs: ["k"],
             attributes: ["value": .tensor(attrTensor), "scalar_t": .tensor(Tensor(scalar: Float(-2))),
                          "empty_t": .tensor(Tensor(zeros: .float32, shape: [0]))]),
        Node(name: "resize", opType: "Resize", inputs: ["l", "", "", "k"], outputs: ["r"],
             attributes: ["scales_f": .floats([1, 2.5, -.infinity, Float.nan]), "mode": .string("linear"),
                          "names": .strings(["a", "", "ü"]), "big_int": .int(Int.min)]),
        Node(name: "custom", opType: "MyOp", domain: "com.example", inputs: ["r", "shape", "half", "i32", "i8", "u8", "flags"],
             outputs: ["y", ""], attributes: [:]),
    ]
    return Graph(
        name: "test graph",
        inputs: [ValueInfo(name: "x", type: TensorType(dtype: .float32, shape: [.symbolic("N"), .fixed(3), .unknown, .fixed(256)]))],
        outputs: [ValueInfo(name: "y", type: TensorType(dtype: .float32, shape: nil)),
                  ValueInfo(name: "r", type: TensorType(dtype: .float16, shape: []))],
        initializers: initializers, nodes: nodes,
        valueTypes: ["c": TensorType(dtype: .float32, shape: [.symbolic("N"), .fixed(4), .symbolic("H"), .fixed(0)]),
                     "l": TensorType(dtype: .int64, shape: nil), "k": TensorType(dtype: .bool, dims: [2])],
        opsets: ["": 17, "com.example": 1],
        metadata: [ModelMetadataKey.sourceSHA256: String(repeating: "ab", count: 32), "model.kind": "encoder",
                   "empty": "", "ünïcode": "välue\n\twith\u{0}nul"])
}

/// Describes the first difference between two graphs, or nil when identical.
func difference(_ a: Graph, _ b: Graph) -> String? {
    if a.name != b.name { return "name \(a.name) vs \(b.name)" }
    if a.inputs.map(\.description) != b.inputs.map(\.description) { return "inputs" }
    if a.inputs.map(\.type) != b.inputs.map(\.type) || a.outputs.map(\.type) != b.outputs.map(\.type) { return "io types" }
    if a.outputs.map(\.name) != b.outputs.map(\.name) { return "outputs" }
    if a.valueTypes != b.valueTypes { return "valueTypes" }
    if a.opsets != b.opsets { return "opsets \(a.opsets) vs \(b.opsets)" }
    if a.metadata != b.metadata { return "metadata \(a.metadata) vs \(b.metadata)" }
    if Set(a.initializers.keys) != Set(b.initializers.keys) { return "initializer names" }
    for (k, t) in a.initializers {
        guard let u = b.initializers[k], t.isIdentical(to: u) else { return "initializer \(k)" }
        if Int(bitPattern: u.storage.pointer) % TensorStorage.alignment != 0 { return "alignment of \(k)" }
    }
    if a.nodes.count != b.nodes.count { return "node count" }
    for (m, n) in zip(a.nodes, b.nodes) {
        if m.name != n.name || m.opType != n.opType || m.domain != n.domain || m.inputs != n.inputs || m.outputs != n.outputs {
            return "node \(m.displayName)"
        }
        if Set(m.attributes.keys) != Set(n.attributes.keys) { return "attribute names of \(m.displayName)" }
        for (k, v) in m.attributes where !v.isIdentical(to: n.attributes[k]!) { return "attribute \(k) of \(m.displayName)" }
    }
    return nil
}

/// Options for tests: 4 KiB frames so small tensors span several.
func smallFrames(shuffle: ShufflePolicy = .auto, threads: Int = 2, level: Int = 3) -> WriteOptions {
    WriteOptions(compressionLevel: level, threads: threads, shuffle: shuffle, frameSize: 4096)
}

// MARK: - Editing files behind the writer's back (to test validation beyond checksums)

struct RawSection { var kind: UInt32; var flags: UInt32; var offset: Int; var length: Int; var checksum: UInt64 }

func le<T: FixedWidthInteger>(_ bytes: [UInt8], _ at: Int, _: T.Type) -> T {
    bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: T.self)) }
}

func put<T: FixedWidthInteger>(_ v: T, into bytes: inout [UInt8], at: Int) {
    withUnsafeBytes(of: v.littleEndian) { for i in 0..<MemoryLayout<T>.size { bytes[at + i] = $0[i] } }
}

func sections(of file: [UInt8]) -> [RawSection] {
    let count = Int(le(file, 32, UInt32.self))
    return (0..<count).map { i in
        let e = 64 + i * 32
        return RawSection(kind: le(file, e, UInt32.self), flags: le(file, e + 4, UInt32.self),
                          offset: Int(le(file, e + 8, UInt64.self)), length: Int(le(file, e + 16, UInt64.self)),
                          checksum: le(file, e + 24, UInt64.self))
    }
}

func section(_ kind: SectionKind, of file: [UInt8]) -> RawSection {
    sections(of: file).first { $0.kind == kind.rawValue }!
}

/// Recomputes the header checksum after edits to the header or section table.
func resealHeader(_ file: inout [UInt8]) {
    let count = Int(le(file, 32, UInt32.self))
    var hashed = Array(file[0..<(64 + count * 32)])
    for i in 40..<48 { hashed[i] = 0 }
    put(XXH64.hash(hashed), into: &file, at: 40)
}

/// Edits one section's bytes in place (same length) and fixes its checksum and the header's.
func editSection(_ kind: SectionKind, of file: inout [UInt8], _ edit: (inout [UInt8]) -> Void) {
    let all = sections(of: file)
    let index = all.firstIndex { $0.kind == kind.rawValue }!
    let s = all[index]
    var bytes = Array(file[s.offset..<s.offset + s.length])
    edit(&bytes)
    precondition(bytes.count == s.length)
    file.replaceSubrange(s.offset..<s.offset + s.length, with: bytes)
    if kind != .data { put(XXH64.hash(bytes), into: &file, at: 64 + index * 32 + 24) }
    resealHeader(&file)
}

/// Expects `body` to throw a ModelFileError matching `matches`; returns it.
@discardableResult
func expectModelError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation,
                      _ matches: (ModelFileError) -> Bool) -> ModelFileError? {
    do {
        try body()
        Issue.record("expected an error, got success", sourceLocation: sourceLocation)
        return nil
    } catch let e as ModelFileError {
        #expect(matches(e), "unexpected error: \(e)", sourceLocation: sourceLocation)
        #expect(!e.description.isEmpty, sourceLocation: sourceLocation)
        return e
    } catch {
        Issue.record("expected a ModelFileError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
