import Foundation
import MegaFSGraph
import Testing
@testable import MegaFSFormat

/// Hostile model files (issue 10): files claiming 10^12-element tensors, a million nodes, a
/// cycle, or zstd frames that expand far beyond what they declare. Each is assembled with
/// valid checksums (so only the lie itself can be caught) and must be refused with a
/// `ModelFileError` naming it, before anything the size of the claim is allocated. Times are
/// printed, not asserted.
@Suite struct ModelFileResourceLimitTests {
    // MARK: - Tensors and values claiming 10^12 elements

    @Test(arguments: [true, false])
    func tensorClaimingATrillionElements(withData: Bool) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let frame = HandmadeZstd.frame(contentSize: 4096, windowLog: 17, blocks: [(4096, 0)])
        let record = TensorRecord(name: "huge", dtype: .float32, shape: [1_000_000, 1_000_000], dataOffset: 0,
                                  byteLength: 4_000_000_000_000, firstFrame: 0, frameCount: withData ? 1 : 0,
                                  quantization: .none)
        let path = dir.file("huge.mfs")
        try writeBytes(AssembledFile.make(tensors: [record], frames: withData ? [(frame, 4096, nil)] : []), to: path)
        let (e, seconds) = timed { expectModelError({ _ = try ModelFileReader.read(path) }, isLimit) }
        report("tensor [10^6, 10^6] \(withData ? "with" : "without") data", seconds, e)
        #expect(e?.description.contains("tensor 'huge'") == true)
        #expect(e?.description.contains("1000000000000") == true && e?.description.contains("\(1 << 34)") == true)
    }

    @Test func valueTypeClaimingATrillionElements() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        // The writer refuses to write such a type ...
        var graph = Graph(name: "g", opsets: ["": 17])
        graph.inputs = [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [1_000_000, 1_000_000]))]
        graph.outputs = [ValueInfo(name: "x", type: TensorType(dtype: .float32, shape: nil))]
        expectModelError({ _ = try ModelFileWriter.write(graph, to: dir.file("w.mfs")) }) {
            if case .invalidInput(let m) = $0 { return m.contains("1000000000000 elements") } else { return false }
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("w.mfs")))
        // ... and the reader refuses a file that has one, as a graph input or a value type.
        for asInput in [true, false] {
            let path = dir.file("v.mfs")
            let section = RawGraphSection.make(inputDims: asInput ? [1_000_000, 1_000_000] : [4],
                                               valueDims: asInput ? nil : [1_000_000, 1_000_000], nodes: 1)
            try writeBytes(AssembledFile.make(graph: section), to: path)
            let (e, seconds) = timed { expectModelError({ _ = try ModelFileReader.inspect(path) }, isLimit) }
            report("\(asInput ? "graph input" : "value type") [10^6, 10^6]", seconds, e)
            #expect(e?.description.contains("1000000000000") == true, "\(String(describing: e))")
        }
        // A negative fixed dimension is malformed.
        try writeBytes(AssembledFile.make(graph: RawGraphSection.make(inputDims: [-4], nodes: 1)), to: dir.file("n.mfs"))
        expectModelError({ _ = try ModelFileReader.inspect(dir.file("n.mfs")) }, isMalformed)
    }

    // MARK: - A million nodes

    @Test func aMillionNodesAreRefused() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = dir.file("million.mfs")
        let file = AssembledFile.make(graph: RawGraphSection.make(inputDims: [4], nodes: 1_000_000))
        try writeBytes(file, to: path)
        let (e, seconds) = timed { expectModelError({ _ = try ModelFileReader.inspect(path) }, isLimit) }
        report("1000000 nodes (\(file.count) bytes)", seconds, e)
        #expect(e?.description.contains("count of nodes") == true)
        #expect(e?.description.contains("1000000, above the limit of \(ModelFileLimits.maxNodes)") == true)
    }

    @Test func nodeLimitBoundary() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = dir.file("n.mfs")
        try writeBytes(AssembledFile.make(graph: RawGraphSection.make(inputDims: [4], nodes: ModelFileLimits.maxNodes + 1)), to: path)
        expectModelError({ _ = try ModelFileReader.inspect(path) }, isLimit)
        try writeBytes(AssembledFile.make(graph: RawGraphSection.make(inputDims: [4], nodes: ModelFileLimits.maxNodes)), to: path)
        let (summary, seconds) = try timed { try ModelFileReader.inspect(path) }
        print("ResourceLimit: \(ModelFileLimits.maxNodes) nodes read in \(ms(seconds))")
        #expect(summary.nodeCount == ModelFileLimits.maxNodes)
        // The writer enforces the same limit.
        var graph = Graph(name: "g", opsets: ["": 17])
        graph.nodes = Array(repeating: Node(name: "", opType: "Relu", inputs: ["x"], outputs: ["y"]), count: ModelFileLimits.maxNodes + 1)
        expectModelError({ _ = try ModelFileWriter.write(graph, to: dir.file("w.mfs")) }) {
            if case .invalidInput(let m) = $0 { return m.contains("nodes") } else { return false }
        }
    }

    // MARK: - A cycle

    /// The format stores nodes as written; the reader returns them, and ordering them for
    /// execution (what every consumer does: the runtime session, the converter's passes)
    /// refuses the cycle by name. (Tests/MegaFSRuntimeTests covers the session.)
    @Test func cycleIsRefusedWhenOrdered() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        var graph = Graph(name: "cycle", opsets: ["": 17])
        graph.inputs = [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [4]))]
        graph.nodes = [Node(name: "a", opType: "Add", inputs: ["x", "b_out"], outputs: ["a_out"]),
                       Node(name: "b", opType: "Relu", inputs: ["a_out"], outputs: ["b_out"])]
        graph.outputs = [ValueInfo(name: "a_out", type: TensorType(dtype: .float32, dims: [4]))]
        let path = dir.file("cycle.mfs")
        try ModelFileWriter.write(graph, to: path)
        var read = try ModelFileReader.read(path)
        let (error, seconds) = timed { () -> Error? in
            do { try read.sortTopologically(); return nil } catch { return error }
        }
        report("cycle of 2 nodes", seconds, error)
        guard case .invalidGraph(let message)? = error as? GraphError else {
            Issue.record("expected GraphError.invalidGraph, got \(String(describing: error))")
            return
        }
        #expect(message.contains("cycle") && message.contains("a") && message.contains("b"), "\(message)")
    }

    // MARK: - zstd frames that expand far beyond their claims

    @Test func handcraftedFramesAreValidZstd() throws {
        // The bombs below are built like this honest frame; it must read back exactly.
        let dir = try TempDir()
        defer { dir.cleanup() }
        let raw = 3 * 131_072
        let frame = HandmadeZstd.frame(contentSize: UInt64(raw), windowLog: 17, blocks: [(131_072, 0x3F), (131_072, 0x40), (131_072, 0x41)])
        let record = TensorRecord(name: "t", dtype: .uint8, shape: [raw], dataOffset: 0, byteLength: UInt64(raw),
                                  firstFrame: 0, frameCount: 1, quantization: .none)
        let expected = [UInt8](repeating: 0x3F, count: 131_072) + [UInt8](repeating: 0x40, count: 131_072)
            + [UInt8](repeating: 0x41, count: 131_072)
        let path = dir.file("ok.mfs")
        try writeBytes(AssembledFile.make(tensors: [record], frames: [(frame, UInt64(raw), XXH64.hash(expected))]), to: path)
        let graph = try ModelFileReader.read(path)
        #expect(Array(graph.initializers["t"]!.storage.bytes) == expected)
    }

    /// The zstd header says 256 MiB (or 1 TiB), the frame table 4 KiB: refused before any
    /// tensor memory is allocated.
    @Test(arguments: [UInt64(256 << 20), UInt64(1) << 40])
    func frameDeclaringFarMoreThanTheTable(declared: UInt64) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let blocks = Array(repeating: (131_072, UInt8(0)), count: 2048)   // really 256 MiB of zeros
        let frame = HandmadeZstd.frame(contentSize: declared, windowLog: 17, blocks: blocks)
        let path = dir.file("bomb.mfs")
        try writeBytes(AssembledFile.make(tensors: [.floats("w", 1024)], frames: [(frame, 4096, nil)]), to: path)
        let (e, seconds) = timed {
            expectModelError({ _ = try ModelFileReader.read(path) }) {
                if case .corruptFrame(_, 0, let d) = $0 { return d.contains("declares \(declared)") && d.contains("says 4096") }
                return false
            }
        }
        report("zstd frame declaring \(declared) bytes (\(frame.count) stored) for 4096", seconds, e)
    }

    /// Header and frame table agree on 4 KiB, but the blocks hold 256 MiB: decoding stops at
    /// the end of the 4 KiB buffer.
    @Test func frameExpandingBeyondItsDeclaredSize() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let blocks = Array(repeating: (131_072, UInt8(0)), count: 2048)
        let frame = HandmadeZstd.frame(contentSize: 4096, windowLog: 17, blocks: blocks)
        let path = dir.file("bomb.mfs")
        try writeBytes(AssembledFile.make(tensors: [.floats("w", 1024)], frames: [(frame, 4096, nil)]), to: path)
        let (e, seconds) = timed {
            expectModelError({ _ = try ModelFileReader.read(path) }) {
                if case .corruptFrame(_, 0, let d) = $0 { return d.contains("zstd") } else { return false }
            }
        }
        report("zstd frame declaring 4096, holding 256 MiB (\(frame.count) stored)", seconds, e)
    }

    /// 96 MiB of zeros in a 25 kB file (valid frames, honest sizes): a decompression bomb,
    /// refused when the reader opens it, before any tensor memory is allocated; a reader told
    /// to allow the expansion reads it.
    @Test func tensorsFarLargerThanTheFileAreRefused() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let raw = 96 << 20
        let frame = HandmadeZstd.frame(contentSize: UInt64(raw), windowLog: 17, blocks: Array(repeating: (131_072, 0), count: raw / 131_072))
        let record = TensorRecord(name: "zeros", dtype: .uint8, shape: [raw], dataOffset: 0, byteLength: UInt64(raw),
                                  firstFrame: 0, frameCount: 1, quantization: .none)
        let sum = XXH64.hash([UInt8](repeating: 0, count: raw))
        let path = dir.file("bomb.mfs")
        let bytes = AssembledFile.make(tensors: [record], frames: [(frame, UInt64(raw), sum)])
        try writeBytes(bytes, to: path)
        let (e, seconds) = timed { expectModelError({ _ = try ModelFileReader(path: path) }, isLimit) }
        report("\(raw >> 20) MiB of tensors in a \(bytes.count)-byte file", seconds, e)
        #expect(e?.description.contains("decompression bomb") == true, "\(String(describing: e))")
        #expect(e?.description.contains("\(raw)") == true)
        let graph = try ModelFileReader(path: path, options: ReadOptions(maxExpansionRatio: 1 << 20)).readGraph()
        #expect(graph.initializers["zeros"]!.storage.bytes.allSatisfy { $0 == 0 })
    }

    /// The writer does not write a file its readers would refuse as a bomb.
    @Test func writerRefusesAFileThatWouldReadAsABomb() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        var graph = Graph(name: "g", opsets: ["": 17])
        graph.inputs = [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [4]))]
        graph.outputs = [ValueInfo(name: "x", type: TensorType(dtype: .float32, dims: [4]))]
        graph.initializers["zeros"] = Tensor(zeros: .float32, shape: [20 << 20])
        let path = dir.file("w.mfs")
        expectModelError({ _ = try ModelFileWriter.write(graph, to: path) }) {
            if case .invalidInput(let m) = $0 { return m.contains("readers would refuse it") } else { return false }
        }
        #expect(!FileManager.default.fileExists(atPath: path))
        graph.initializers["zeros"] = Tensor(zeros: .float32, shape: [1 << 20])   // 4 MiB: within the allowance
        try ModelFileWriter.write(graph, to: path)
        #expect(try ModelFileReader.read(path).initializers["zeros"]?.shape == [1 << 20])
    }

    @Test func frameTableClaimingMoreThanTheFrameLimit() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let raw = UInt64(ModelFileLimits.maxFrameRawBytes) + 64
        let frame = HandmadeZstd.frame(contentSize: raw, windowLog: 17, blocks: [(131_072, 0)])
        let record = TensorRecord(name: "t", dtype: .uint8, shape: [Int(raw)], dataOffset: 0, byteLength: raw,
                                  firstFrame: 0, frameCount: 1, quantization: .none)
        let path = dir.file("big.mfs")
        try writeBytes(AssembledFile.make(tensors: [record], frames: [(frame, raw, nil)]), to: path)
        let (e, seconds) = timed { expectModelError({ _ = try ModelFileReader.inspect(path) }, isLimit) }
        report("frame table raw length \(raw)", seconds, e)
        #expect(e?.description.contains("raw length of frame 0") == true)
    }

    @Test func frameDeclaringAHugeWindowAllocatesNoWindow() throws {
        // Window log 31 (2 GiB) for 1 MiB of content. The reader decodes each frame in one
        // shot straight into a buffer of the frame table's raw length, so the window a frame
        // declares allocates nothing: the frame simply decodes (with `ZSTD_d_windowLogMax` 28
        // a streaming decoder would refuse it).
        let dir = try TempDir()
        defer { dir.cleanup() }
        let frame = HandmadeZstd.frame(contentSize: 1 << 20, windowLog: 31, blocks: Array(repeating: (131_072, 7), count: 8))
        let raw = [UInt8](repeating: 7, count: 1 << 20)
        let record = TensorRecord(name: "t", dtype: .uint8, shape: [1 << 20], dataOffset: 0, byteLength: 1 << 20,
                                  firstFrame: 0, frameCount: 1, quantization: .none)
        let path = dir.file("window.mfs")
        try writeBytes(AssembledFile.make(tensors: [record], frames: [(frame, 1 << 20, XXH64.hash(raw))]), to: path)
        let (graph, seconds) = try timed { try ModelFileReader.read(path) }
        report("zstd frame declaring a 2^31 window for 1 MiB", seconds, nil)
        #expect(Array(graph.initializers["t"]!.storage.bytes) == raw)
    }

    @Test func frameWithoutContentSize() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let frame = HandmadeZstd.frame(contentSize: nil, windowLog: 17, blocks: [(4096, 0)])
        let path = dir.file("nosize.mfs")
        try writeBytes(AssembledFile.make(tensors: [.floats("w", 1024)], frames: [(frame, 4096, nil)]), to: path)
        expectModelError({ _ = try ModelFileReader.read(path) }) {
            if case .corruptFrame(_, 0, let d) = $0 { return d.contains("does not declare its content size") }
            return false
        }
    }
}

// MARK: - Building hostile files

extension TensorRecord {
    /// A float32 vector at raw offset 0 in frame 0.
    static func floats(_ name: String, _ count: Int) -> TensorRecord {
        TensorRecord(name: name, dtype: .float32, shape: [count], dataOffset: 0, byteLength: UInt64(4 * count),
                     firstFrame: 0, frameCount: 1, quantization: .none)
    }
}

/// zstd frames written by hand (RFC 8878), so the header can say anything.
enum HandmadeZstd {
    /// Magic, a frame header with a window descriptor (no single-segment flag) and an 8-byte
    /// content size when given, then RLE blocks of (size <= 128 KiB, byte).
    static func frame(contentSize: UInt64?, windowLog: Int, blocks: [(Int, UInt8)]) -> [UInt8] {
        var out: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]
        out.append(contentSize == nil ? 0x00 : 0xC0)          // FCS field: none, or 8 bytes
        out.append(UInt8((windowLog - 10) << 3))               // window descriptor, mantissa 0
        if let contentSize { withUnsafeBytes(of: contentSize.littleEndian) { out += $0 } }
        for (i, (size, byte)) in blocks.enumerated() {
            let header = UInt32(size) << 3 | 1 << 1 | (i == blocks.count - 1 ? 1 : 0)   // RLE block
            out += [UInt8(header & 0xFF), UInt8(header >> 8 & 0xFF), UInt8(header >> 16 & 0xFF), byte]
        }
        return out
    }
}

/// Writes the five sections of a model file with correct checksums around whatever they
/// hold (the way a writer that checks nothing would).
enum AssembledFile {
    static let dataOffset = 256   // after the 64-byte header and five 32-byte section entries

    static let emptyGraph = RawGraphSection.make(inputDims: [4], nodes: 1)

    /// `frames`: stored bytes, raw length and raw checksum (nil: a placeholder, for frames
    /// that must fail before it is checked).
    static func make(graph: [UInt8] = emptyGraph, metadata: [String: String] = [:], tensors: [TensorRecord] = [],
                     frames: [([UInt8], UInt64, UInt64?)] = []) -> [UInt8] {
        var data: [UInt8] = []
        var records: [FrameRecord] = []
        var rawOffset: UInt64 = 0
        for (stored, rawLength, rawChecksum) in frames {
            records.append(FrameRecord(fileOffset: UInt64(dataOffset + data.count), storedLength: UInt64(stored.count),
                                       rawOffset: rawOffset, rawLength: rawLength, rawChecksum: rawChecksum ?? 0,
                                       storedChecksum: XXH64.hash(stored), codec: .zstd, filter: .none, elementSize: 1))
            data += stored
            data += [UInt8](repeating: 0, count: alignUp(data.count) - data.count)
            rawOffset += rawLength   // contiguous; every frame but the last is a multiple of 64 long
        }
        let sections: [(SectionKind, [UInt8])] = [
            (.data, data),
            (.graph, graph),
            (.metadata, try! MetadataSection.encode(metadata)),
            (.tensors, try! TensorDirectory.encode(tensors, indexOf: [:])),
            (.frames, FrameTable.encode(records)),
        ]
        var file = [UInt8](repeating: 0, count: dataOffset)
        for (i, (kind, bytes)) in sections.enumerated() {
            let offset = file.count
            file += bytes
            file += [UInt8](repeating: 0, count: alignUp(file.count) - file.count)
            let entry = 64 + 32 * i
            put(kind.rawValue, into: &file, at: entry)
            put(SectionFlags.required, into: &file, at: entry + 4)
            put(UInt64(offset), into: &file, at: entry + 8)
            put(UInt64(bytes.count), into: &file, at: entry + 16)
            put(kind == .data ? 0 : XXH64.hash(bytes), into: &file, at: entry + 24)
        }
        file.replaceSubrange(0..<8, with: ModelFileFormat.magic)
        put(ModelFileFormat.majorVersion, into: &file, at: 8)
        put(ModelFileFormat.minorVersion, into: &file, at: 10)
        put(UInt64(file.count), into: &file, at: 16)
        put(UInt64(64), into: &file, at: 24)
        put(UInt32(sections.count), into: &file, at: 32)
        put(UInt32(32), into: &file, at: 36)
        resealHeader(&file)
        return file
    }
}

/// A graph section written field by field (the encoder would refuse what these hold).
enum RawGraphSection {
    /// Strings "", "g", "x", "Relu", "y", "v"; input x float32 `inputDims`; output y; an
    /// optional value type v; `nodes` nodes Relu(x) -> y.
    static func make(inputDims: [Int64], valueDims: [Int64]? = nil, nodes: Int) -> [UInt8] {
        var w = ByteWriter()
        let strings = ["", "g", "x", "Relu", "y", "v"]
        w.u32(strings.count)
        for s in strings { w.string(s) }
        w.u32(1)                                   // graph name
        w.u32(1); w.u32(0); w.i64(17)              // opset "" 17
        func type(_ dims: [Int64]?) {
            w.i32(DType.float32.rawValue)
            guard let dims else { w.i32(-1); return }
            w.i32(Int32(dims.count))
            for d in dims { w.u8(0); w.i64(d) }
        }
        w.u32(1); w.u32(2); type(inputDims)        // inputs
        w.u32(1); w.u32(4); type(nil)              // outputs
        if let valueDims { w.u32(1); w.u32(5); type(valueDims) } else { w.u32(0) }
        w.u32(nodes)
        for _ in 0..<nodes {
            w.u32(0); w.u32(3); w.u32(0)           // name, op, domain
            w.u32(1); w.u32(2)                     // inputs
            w.u32(1); w.u32(4)                     // outputs
            w.u32(0)                               // attributes
        }
        return w.bytes
    }
}

func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let start = DispatchTime.now().uptimeNanoseconds
    let result = try body()
    return (result, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}

func ms(_ seconds: Double) -> String { String(format: "%.1f ms", seconds * 1000) }

func report(_ what: String, _ seconds: Double, _ error: Any?) {
    print("ResourceLimit: \(what): \(ms(seconds)): \(error.map { "\($0)" }.map { String($0.prefix(220)) } ?? "no error")")
}
