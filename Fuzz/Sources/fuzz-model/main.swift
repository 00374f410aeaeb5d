// The model-file (.mfs) reader: header, section table, frame table, tensor directory,
// metadata and graph sections, then every frame (decompression, unshuffle, checksums, copy
// into the tensors), then, for small models, an inference session (validation and planning).
//
// Every structure of the format is covered by an XXH64 checksum, so random mutations almost
// never get past the first check. Each input is therefore read twice: as it is (which tests
// the checksum checks and truncation), and with its checksums and declared file length
// recomputed by `repairChecksums`, which lets mutations reach the parsers behind them.
#if canImport(Glibc)
import Glibc
#endif
@testable import MegaFSFormat
import MegaFSGraph
import MegaFSRuntime

/// Raw tensor bytes the reader may allocate per input (the default cap is 8 GiB, which a
/// tiny hostile file can legitimately claim; the cap itself is what is tested here).
let maxTotalRawBytes: UInt64 = 64 << 20
/// Sessions are created only for models whose inputs are at most this many elements.
let maxSessionInputElements = 1 << 16

/// The reader takes a path: each input is written to this file (in memory under /dev/shm).
/// Removed at exit; after a crash it holds the input as read (with repaired checksums).
let scratchPath: String = {
    let dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    return "\(dir)/megafs-fuzz-model-\(getpid()).mfs"
}()

@_cdecl("LLVMFuzzerInitialize")
public func fuzzModelInitialize(_ argc: UnsafeMutablePointer<CInt>?,
                                _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    atexit { unlink(scratchPath) }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModel(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    load(bytes)
    let repaired = repairChecksums(bytes)
    if repaired != bytes { load(repaired) }
    return 0
}

func load(_ bytes: [UInt8]) {
    writeScratchFile(bytes)
    let options = ReadOptions(threads: 1, maxTotalRawBytes: maxTotalRawBytes)
    guard let reader = try? ModelFileReader(path: scratchPath, options: options) else { return }
    _ = reader.summary.description
    guard let graph = try? reader.readGraph() else { return }
    let inputElements = graph.inputs.map { ($0.type.concreteShape ?? []).reduce(1) { $0 &* max($1, 1) } }
    guard inputElements.allSatisfy({ $0 >= 0 && $0 <= maxSessionInputElements }) else { return }
    _ = try? InferenceSession(graph: graph, options: SessionOptions(threads: 1))
}

func writeScratchFile(_ bytes: [UInt8]) {
    let fd = open(scratchPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    precondition(fd >= 0, "cannot create \(scratchPath)")
    defer { close(fd) }
    var written = 0
    while written < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
        precondition(n > 0, "cannot write \(scratchPath)")
        written += n
    }
}

// MARK: - Checksum repair (a best effort on hostile bytes: everything is bounds-checked)

func readU32(_ b: [UInt8], _ at: Int) -> UInt64? {
    guard at >= 0, at + 4 <= b.count else { return nil }
    return (0..<4).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
}

func readU64(_ b: [UInt8], _ at: Int) -> UInt64? {
    guard at >= 0, at + 8 <= b.count else { return nil }
    return (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
}

func writeU64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) {
    guard at >= 0, at + 8 <= b.count else { return }
    for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
}

/// The byte range `offset ..< offset + length` if it lies inside `count` bytes.
func range(_ offset: UInt64?, _ length: UInt64?, within count: Int) -> Range<Int>? {
    guard let offset, let length, offset <= UInt64(count), length <= UInt64(count) - offset else { return nil }
    return Int(offset)..<Int(offset + length)
}

/// Recomputes, in this order, the frames' stored and raw checksums, the sections' checksums,
/// the declared file length and the header checksum (the layout of formats/FORMAT.md).
func repairChecksums(_ input: [UInt8]) -> [UInt8] {
    var b = input
    let headerSize = ModelFileFormat.headerSize
    guard b.count >= headerSize, Array(b[0..<8]) == ModelFileFormat.magic else { return b }
    writeU64(&b, 16, UInt64(b.count))
    guard let tableOffset = readU64(b, 24), let count = readU32(b, 32), let entrySize = readU32(b, 36),
          count <= UInt64(ModelFileLimits.maxSections), entrySize >= 32, entrySize <= 1024,
          let table = range(tableOffset, count * entrySize, within: b.count) else { return b }
    var sections: [(kind: UInt64, entry: Int, bytes: Range<Int>)] = []
    for i in 0..<Int(count) {
        let entry = table.lowerBound + i * Int(entrySize)
        if let kind = readU32(b, entry), let bytes = range(readU64(b, entry + 8), readU64(b, entry + 16), within: b.count) {
            sections.append((kind, entry, bytes))
        }
    }
    if let frames = sections.first(where: { $0.kind == UInt64(SectionKind.frames.rawValue) })?.bytes {
        repairFrames(&b, table: frames)
    }
    for s in sections { writeU64(&b, s.entry + 24, XXH64.hash(Array(b[s.bytes]))) }
    var hashed = Array(b[0..<headerSize])
    for i in 40..<48 { hashed[i] = 0 }
    hashed += b[table]
    writeU64(&b, 40, XXH64.hash(hashed))
    return b
}

/// Frame entries: file offset, stored length, raw offset, raw length, raw checksum, stored
/// checksum (u64 each), then codec, filter, element size (u8 each).
func repairFrames(_ b: inout [UInt8], table: Range<Int>) {
    guard let n = readU32(b, table.lowerBound), let entrySize = readU32(b, table.lowerBound + 4),
          entrySize >= 51, n <= (UInt64(table.count) / entrySize) else { return }
    for i in 0..<Int(n) {
        let entry = table.lowerBound + 8 + i * Int(entrySize)
        guard entry + 51 <= table.upperBound,
              let stored = range(readU64(b, entry), readU64(b, entry + 8), within: b.count),
              let rawLength = readU64(b, entry + 24), rawLength <= 16 << 20 else { continue }
        let storedBytes = Array(b[stored])
        writeU64(&b, entry + 40, XXH64.hash(storedBytes))
        let codec = b[entry + 48], filter = b[entry + 49], elementSize = Int(b[entry + 50])
        var raw: [UInt8]
        switch codec {
        case FrameCodec.stored.rawValue:
            raw = storedBytes
        case FrameCodec.zstd.rawValue:
            raw = [UInt8](repeating: 0, count: Int(rawLength))
            let problem = storedBytes.withUnsafeBytes { s in
                raw.withUnsafeMutableBytes { ZstdDecompressor().decompress(s, into: $0) }
            }
            guard problem == nil else { continue }
        default:
            continue
        }
        if filter == FrameFilter.byteShuffle.rawValue, elementSize >= 1 {
            var unshuffled = [UInt8](repeating: 0, count: raw.count)
            raw.withUnsafeBytes { s in
                unshuffled.withUnsafeMutableBytes { ByteShuffle.unshuffle(s, into: $0, elementSize: elementSize) }
            }
            raw = unshuffled
        }
        writeU64(&b, entry + 32, XXH64.hash(raw))
    }
}
