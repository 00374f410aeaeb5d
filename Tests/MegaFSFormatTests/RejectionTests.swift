import Foundation
import MegaFSGraph
import Testing
@testable import MegaFSFormat

/// A tiny valid file to damage: two small tensors, a few nodes, 4 KiB frames.
func tinyModel(in dir: TempDir) throws -> (path: String, graph: Graph, bytes: [UInt8]) {
    let graph = Graph(
        name: "tiny",
        inputs: [ValueInfo(name: "x", type: TensorType(dtype: .float32, shape: [.symbolic("N"), .fixed(4)]))],
        outputs: [ValueInfo(name: "y", type: TensorType(dtype: .float32, dims: [1, 4]))],
        initializers: ["w": Tensor(normalWeights(1100, scale: 0.05, seed: 1), shape: [1100]),
                       "b": Tensor([Int64(1), 2, 3], shape: [3]),
                       "z": Tensor([Int8](repeating: 0, count: 200), shape: [200])],
        nodes: [Node(name: "n", opType: "Add", inputs: ["x", "w"], outputs: ["y"], attributes: ["k": .ints([1, 2])])],
        metadata: ["model.kind": "tiny"])
    let path = dir.file("tiny.mfs")
    try ModelFileWriter.write(graph, to: path, options: smallFrames())
    return (path, graph, try readBytes(path))
}

func isTruncated(_ e: ModelFileError) -> Bool { if case .truncated = e { return true } else { return false } }
func isChecksum(_ e: ModelFileError) -> Bool { if case .checksumMismatch = e { return true } else { return false } }
func isOutOfRange(_ e: ModelFileError) -> Bool { if case .outOfRange = e { return true } else { return false } }
func isLimit(_ e: ModelFileError) -> Bool { if case .limitExceeded = e { return true } else { return false } }
func isMalformed(_ e: ModelFileError) -> Bool { if case .malformed = e { return true } else { return false } }

@Suite struct RejectionTests {
    @Test func badMagic() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let (path, _, bytes) = try tinyModel(in: dir)
        var b = bytes
        b[1] = UInt8(ascii: "X")
        try writeBytes(b, to: path)
        let e = expectModelError({ _ = try ModelFileReader.read(path) }) {
            if case .notAModelFile = $0 { return true } else { return false }
        }
        #expect(e?.description.contains("89 58 46 53") == true)
        // An ONNX-looking file (protobuf) and a text file.
        try writeBytes([0x08, 0x07, 0x12, 0x07] + Array("pytorch".utf8) + [UInt8](repeating: 0, count: 100), to: path)
        expectModelError({ _ = try ModelFileReader.inspect(path) }) {
            if case .notAModelFile = $0 { return true } else { return false }
        }
        try writeBytes(Array("hi".utf8), to: path)
        expectModelError({ _ = try ModelFileReader.inspect(path) }) {
            if case .notAModelFile = $0 { return true } else { return false }
        }
        expectModelError({ _ = try ModelFileReader.inspect(dir.file("missing.mfs")) }) {
            if case .io = $0 { return true } else { return false }
        }
        expectModelError({ _ = try ModelFileReader.inspect(dir.path) }) {   // a folder
            if case .io = $0 { return true } else { return false }
        }
    }

    @Test func unknownMajorVersionIsRejectedKnownMinorIsNot() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let (path, graph, bytes) = try tinyModel(in: dir)
        var b = bytes
        put(UInt16(2), into: &b, at: 8)
        resealHeader(&b)
        try writeBytes(b, to: path)
        expectModelError({ _ = try ModelFileReader.read(path) }) {
            $0 == .unsupportedVersion(path: path, major: 2, minor: 0, supportedMajor: 1)
        }
        put(UInt16(0), into: &b, at: 8)   // major 0 is not ours either
        resealHeader(&b)
        try writeBytes(b, to: path)
        expectModelError({ _ = try ModelFileReader.read(path) }) {
            if case .unsupportedVersion = $0 { return true } else { return false }
        }
        // A newer minor version of major 1 still reads.
        b = bytes
        put(UInt16(7), into: &b, at: 10)
        resealHeader(&b)
        try writeBytes(b, to: path)
        let reader = try ModelFileReader(path: path)
        #expect(reader.minorVersion == 7)
        #expect(difference(graph, try reader.readGraph()) == nil)
    }

    @Test func truncationAtEveryLength() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let (_, _, bytes) = try tinyModel(in: dir)
        #expect(bytes.count < 8192)
        let cut = dir.file("cut.mfs")
        for n in 0..<bytes.count {
            try writeBytes(Array(bytes[0..<n]), to: cut)
            expectModelError({ _ = try ModelFileReader.read(cut) }, isTruncated)
        }
        // Appended bytes are refused too.
        try writeBytes(bytes + [0], to: cut)
        expectModelError({ _ = try ModelFileReader.read(cut) }, isMalformed)
    }

    /// Flip every byte of a tiny file: reading must fail or give the identical graph (padding
    /// only), and must fail with a checksum error inside any section or frame.
    @Test func flippedByteEverywhere() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let (path, graph, bytes) = try tinyModel(in: dir)
        let reader = try ModelFileReader(path: path)
        var checked: [Range<Int>] = []
        for s in reader.sections where s.kind != SectionKind.data.rawValue {
            checked.append(Int(s.offset)..<Int(s.offset + s.length))
        }
        for f in reader.frames { checked.append(Int(f.fileOffset)..<Int(f.fileOffset + f.storedLength)) }
        let headerEnd = 64 + reader.sections.count * 32
        let flipped = dir.file("flipped.mfs")
        var failures = 0, identical = 0
        for i in 0..<bytes.count {
            var b = bytes
            b[i] ^= 0x10
            try writeBytes(b, to: flipped)
            do {
                let g = try ModelFileReader.read(flipped)
                #expect(difference(graph, g) == nil, "byte \(i) flipped gave a different graph")
                #expect(i >= headerEnd && !checked.contains { $0.contains(i) }, "byte \(i) flipped went unnoticed")
                identical += 1
            } catch let e as ModelFileError {
                failures += 1
                if i >= headerEnd && checked.contains(where: { $0.contains(i) }) {
                    #expect(isChecksum(e), "byte \(i): \(e)")
                }
            }
        }
        #expect(failures > bytes.count * 3 / 4)
        #expect(identical > 0)   // the zero padding before the first frame and between sections
    }

    @Test func sectionOutsideTheFile() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let (path, _, bytes) = try tinyModel(in: dir)
        var b = bytes
        let index = sections(of: b).firstIndex { $0.kind == SectionKind.metadata.rawValue }!
        put(UInt64(bytes.count + 64), into: &b, at: 64 + index * 32 + 8)   // offset past the end
        resealHeader(&b)
        try writeBytes(b, to: path)
        expectModelError({ _ = try ModelFileReader.inspect(path) }, isOutOfRange)
        b = bytes
        put(UInt64.max - 10, into: &b, at: 64 + index * 32 + 16)        // length that overflows
        resealHeader(&b)
        try writeBytes(b, to: path)
        expectModelError({ _ = try ModelFileReader.inspect(path) }, isOutOfRange)
        b = bytes
        let graphIndex = sections(of: b).firstIndex { $0.kind == SectionKind.graph.rawValue }!
        put(UInt64(0), into: &b, at: 64 + graphIndex * 32 + 8)           // overlapping the header
        resealHeader(&b)
        try writeBytes(b, to: path)
        expectModelError({ _ = try ModelFileReader.inspect(path) }, isOutOfRange)
        b = bytes
        put(UInt32(1000), into: &b, at: 32)                              // section count (checked before the checksum)
        try writeBytes(b, to: path)
        expectModelError({ _ = try ModelFileReader.inspect(path) }, isLimit)
    }

    @Test func frameOutsideTheDataSection() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let (path, _, bytes) = try tinyModel(in: dir)
        var b = bytes
        editSection(.frames, of: &b) { put(UInt64(1 << 40), into: &$0, at: 8) }            // frame 0 file offset
        try writeBytes(b, to: path)
        expectModelError({ _ = try ModelFileReader.inspect(path) }, isOutOfRange)
        b = bytes
        editSection(.frames, of: &b) { put(UInt64(1 << 20), into: &$0, at: 8 + 8) }        // frame 0 stored length
        try writeBytes(b, to: path)
        expectModelError({ _ = try ModelFileReader.inspect(path) }, isOutOfRange)
    }

    @Test func lyingSizeFields() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let (path, _, bytes) = try tinyModel(in: dir)
        func check(_ kind: SectionKind, _ at: @escaping ([UInt8]) -> Int, _ value: some FixedWidthInteger,
                   _ matches: (ModelFileError) -> Bool, sourceLocation: SourceLocation = #_sourceLocation) throws {
            var b = bytes
            editSection(kind, of: &b) { put(value, into: &$0, at: at($0)) }
            try writeBytes(b, to: path)
            expectModelError({ _ = try ModelFileReader.read(path) }, sourceLocation: sourceLocation, matches)
        }
        // Counts far beyond the limits or the bytes left.
        try check(.tensors, { _ in 0 }, UInt32.max, isLimit)
        try check(.tensors, { _ in 0 }, UInt32(1000), isOutOfRange)
        try check(.metadata, { _ in 0 }, UInt32(50_000), isOutOfRange)
        try check(.graph, { _ in 0 }, UInt32.max, isLimit)                     // string count
        try check(.graph, { _ in 4 }, UInt32(1 << 30), isLimit)                // first string's length
        try check(.graph, { _ in 4 }, UInt32(5000), isOutOfRange)
        try check(.frames, { _ in 0 }, UInt32(7), isMalformed)                 // frame count vs section length
        // Tensor 0 is "b" (int64 sorts first). Its entry: u32 entry length, u32 name length,
        // name, i32 dtype, u32 rank, i64 dims[1], u64 dataOffset, u64 byteLength, ...
        let dim = 4 + 4 + 4 + 1 + 4 + 4
        try check(.tensors, { _ in dim }, Int64(1 << 40), isLimit)             // elements per tensor
        try check(.tensors, { _ in dim }, Int64(-3), isMalformed)              // negative dimension
        try check(.tensors, { _ in dim }, Int64(4), isMalformed)               // shape disagrees with byte length
        try check(.tensors, { _ in dim + 16 }, UInt64(1 << 40), isMalformed)   // byte length
        try check(.tensors, { _ in dim + 8 }, UInt64(1 << 40), isOutOfRange)   // data offset beyond the stream
        try check(.tensors, { _ in dim + 8 }, UInt64(64), { isOutOfRange($0) || isMalformed($0) })
        try check(.tensors, { _ in dim + 24 }, UInt32(99), isMalformed)        // first frame
        try check(.tensors, { _ in dim + 28 }, UInt32(99), isMalformed)        // frame count
        try check(.tensors, { _ in 4 }, UInt32(1 << 30), isOutOfRange)         // entry length
        try check(.tensors, { _ in 8 }, UInt32(1 << 30), isLimit)              // name length
        // The total allocation limit of the reader, set below the file's needs.
        let tooSmall = ReadOptions(maxTotalRawBytes: 100)
        expectModelError({ _ = try ModelFileReader(path: dir.file("tiny.mfs"), options: tooSmall) }) { _ in true }
        try writeBytes(bytes, to: path)
        expectModelError({ _ = try ModelFileReader(path: path, options: tooSmall) }, isLimit)
    }

    /// A frame whose zstd header declares another size than the frame table: made by giving
    /// the last frame a larger raw length (still a valid layout), checksums resealed.
    @Test func zstdContentSizeDisagreement() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let (path, _, bytes) = try tinyModel(in: dir)
        let reader = try ModelFileReader(path: path)
        let last = reader.frames.count - 1
        #expect(reader.frames[last].codec == .zstd)
        var b = bytes
        editSection(.frames, of: &b) { put(reader.frames[last].rawLength + 64, into: &$0, at: 8 + last * 56 + 24) }
        try writeBytes(b, to: path)
        let e = expectModelError({ _ = try ModelFileReader.read(path) }) {
            if case .corruptFrame(_, let frame, let detail) = $0 { return frame == last && detail.contains("declares") }
            return false
        }
        #expect(e?.description.contains("frame \(last)") == true)
    }

    /// A frame table and directory that agree on a 200 MiB tensor the tiny file cannot hold:
    /// refused on opening as a decompression bomb; a reader allowing the expansion still
    /// refuses it at the zstd frame header check, before the tensors are allocated.
    @Test func zipBombDeclarationIsRefused() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let (path, _, bytes) = try tinyModel(in: dir)
        let reader = try ModelFileReader(path: path)
        let last = reader.frames.count - 1
        let z = reader.tensors.firstIndex { $0.name == "z" }!
        #expect(z == reader.tensors.count - 1 && reader.tensors[z].firstFrame == last)
        let huge = UInt64(200 << 20)
        var b = bytes
        editSection(.frames, of: &b) { put(huge, into: &$0, at: 8 + last * 56 + 24) }
        editSection(.tensors, of: &b) { d in
            // The last entry ("z", int8, rank 1): dims at +13 after its name, byte length at +29.
            let start = d.count - (4 + 4 + 1 + 4 + 4 + 8 + 8 + 8 + 4 + 4 + 4 + 4)
            #expect(d[start + 8] == UInt8(ascii: "z"))
            put(Int64(huge), into: &d, at: start + 9 + 8)
            put(huge, into: &d, at: start + 9 + 8 + 8 + 8)
        }
        try writeBytes(b, to: path)
        expectModelError({ _ = try ModelFileReader(path: path) }) {
            if case .limitExceeded(_, let what, _, _) = $0 { return what.contains("decompression bomb") } else { return false }
        }
        let r = try ModelFileReader(path: path, options: ReadOptions(maxExpansionRatio: 1 << 20))   // structurally consistent
        #expect(r.summary.rawBytes > huge)
        expectModelError({ _ = try r.readGraph() }) {
            if case .corruptFrame(_, let frame, let detail) = $0 { return frame == last && detail.contains("declares") }
            return false
        }
    }

    @Test func corruptedFrameWithResealedStoredChecksumStillCaught() throws {
        // Damage the compressed bytes and fix the stored checksum: zstd or the raw checksum
        // must still catch it.
        let dir = try TempDir()
        defer { dir.cleanup() }
        let (path, _, bytes) = try tinyModel(in: dir)
        let reader = try ModelFileReader(path: path)
        let f = reader.frames[reader.frames.count - 1]
        for pos in stride(from: Int(f.fileOffset) + 6, to: Int(f.fileOffset + f.storedLength), by: 7) {
            var b = bytes
            b[pos] ^= 0x01
            let stored = XXH64.hash(Array(b[Int(f.fileOffset)..<Int(f.fileOffset + f.storedLength)]))
            editSection(.frames, of: &b) { put(stored, into: &$0, at: 8 + (reader.frames.count - 1) * 56 + 40) }
            try writeBytes(b, to: path)
            expectModelError({ _ = try ModelFileReader.read(path) }) {
                if case .corruptFrame = $0 { return true }
                return isChecksum($0)
            }
        }
    }

    @Test func unknownSectionsAndSchemes() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let (path, graph, bytes) = try tinyModel(in: dir)
        // Append a sixth section (room for its entry before the first frame at 256).
        func withExtraSection(flags: UInt32) -> [UInt8] {
            var b = bytes
            while b.count % 64 != 0 { b.append(0) }
            let offset = b.count
            let payload: [UInt8] = Array("future".utf8)
            b += payload
            put(UInt32(6), into: &b, at: 32)
            let e = 64 + 5 * 32
            put(UInt32(99), into: &b, at: e); put(flags, into: &b, at: e + 4)
            put(UInt64(offset), into: &b, at: e + 8); put(UInt64(payload.count), into: &b, at: e + 16)
            put(XXH64.hash(payload), into: &b, at: e + 24)
            put(UInt64(b.count), into: &b, at: 16)
            resealHeader(&b)
            return b
        }
        try writeBytes(withExtraSection(flags: 0), to: path)
        let reader = try ModelFileReader(path: path)
        #expect(reader.sections.contains { $0.name == "unknown kind 99" })
        #expect(difference(graph, try reader.readGraph()) == nil)
        try writeBytes(withExtraSection(flags: SectionFlags.required), to: path)
        expectModelError({ _ = try ModelFileReader.inspect(path) }) {
            if case .unsupportedFeature = $0 { return true } else { return false }
        }
        // An unknown quantization scheme on tensor 0.
        var b = bytes
        let nameLength = Int(le(Array(b[Int(section(.tensors, of: b).offset) + 8..<Int(section(.tensors, of: b).offset) + 12]), 0, UInt32.self))
        editSection(.tensors, of: &b) { $0[4 + 4 + nameLength + 4 + 4 + 8 + 8 + 8 + 4 + 4 + 4] = 7 }
        try writeBytes(b, to: path)
        expectModelError({ _ = try ModelFileReader.inspect(path) }) {
            if case .unsupportedFeature(_, let what) = $0 { return what.contains("quantization scheme 7") }
            return false
        }
    }

    @Test func invalidUTF8AndDuplicates() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let (path, _, bytes) = try tinyModel(in: dir)
        var b = bytes
        editSection(.metadata, of: &b) { $0[8] = 0xFF }   // first byte of the first key
        try writeBytes(b, to: path)
        expectModelError({ _ = try ModelFileReader.inspect(path) }) {
            if case .malformed(_, _, let detail) = $0 { return detail.contains("UTF-8") } else { return false }
        }
        // Rename tensor "w" to "b": a duplicate name.
        b = bytes
        editSection(.tensors, of: &b) { d in
            let secondEntry = 4 + 4 + Int(le(d, 4, UInt32.self))
            #expect(d[secondEntry + 8] == UInt8(ascii: "w"))
            d[secondEntry + 8] = UInt8(ascii: "b")
        }
        try writeBytes(b, to: path)
        expectModelError({ _ = try ModelFileReader.inspect(path) }) {
            if case .malformed(_, _, let detail) = $0 { return detail.contains("twice") } else { return false }
        }
    }
}
