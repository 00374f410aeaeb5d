import Dispatch
import Foundation
import MegaFSGraph
import Synchronization

/// Options of `ModelFileReader`.
public struct ReadOptions: Sendable {
    /// Frames decompressed in parallel.
    public var threads: Int
    /// The most raw tensor bytes the reader will allocate; files declaring more are rejected
    /// before any allocation.
    public var maxTotalRawBytes: UInt64
    /// The tensors may take at most this many times the file's size, plus
    /// `ModelFileLimits.expansionAllowance`: a decompression-bomb guard, checked before any
    /// allocation.
    public var maxExpansionRatio: UInt64
    /// Map the tensors stored uncompressed from the file instead of reading them
    /// (`ModelFileReader.mappedLayout`); default: true unless `MEGAFS_MAP_WEIGHTS` is `off` or `0`.
    public var mapWeights: Bool

    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                maxTotalRawBytes: UInt64 = UInt64(ModelFileLimits.maxTotalRawBytes),
                maxExpansionRatio: UInt64 = UInt64(ModelFileLimits.maxExpansionRatio),
                mapWeights: Bool = ModelFileReader.mapsWeightsByDefault) {
        self.threads = threads
        self.maxTotalRawBytes = maxTotalRawBytes
        self.maxExpansionRatio = maxExpansionRatio
        self.mapWeights = mapWeights
    }
}

/// One entry of the section table.
public struct SectionInfo: Sendable, CustomStringConvertible {
    public var kind: UInt32
    public var flags: UInt32
    public var offset: UInt64
    public var length: UInt64
    public var checksum: UInt64
    /// The kind's name, or "unknown kind N".
    public var name: String { SectionKind(rawValue: kind)?.description ?? "unknown kind \(kind)" }
    public var description: String { "\(name) @\(offset) +\(length)" }
}

/// Everything about a model file that can be learnt without decompressing weights.
public struct ModelFileSummary: Sendable, CustomStringConvertible {
    public var path: String
    public var fileBytes: UInt64
    public var majorVersion: Int
    public var minorVersion: Int
    public var sections: [SectionInfo]
    public var graphName: String
    public var nodeCount: Int
    public var operatorHistogram: [String: Int]
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var opsets: [String: Int]
    public var metadata: [String: String]
    public var tensors: [TensorRecord]
    public var frames: [FrameRecord]

    public var tensorCount: Int { tensors.count }
    /// Sum of the tensors' bytes.
    public var rawBytes: UInt64 { tensors.reduce(0) { $0 + $1.byteLength } }
    /// Sum of the frames' raw bytes (tensors plus alignment padding).
    public var frameRawBytes: UInt64 { frames.reduce(0) { $0 + $1.rawLength } }
    /// Sum of the frames' stored bytes.
    public var compressedBytes: UInt64 { frames.reduce(0) { $0 + $1.storedLength } }
    public var frameCount: Int { frames.count }
    public var shuffledFrames: Int { frames.filter { $0.filter == .byteShuffle }.count }
    public var storedFrames: Int { frames.filter { $0.codec == .stored }.count }
    public var quantizedTensors: Int { tensors.filter { $0.quantization != .none }.count }
    public var compressionRatio: Double { compressedBytes == 0 ? 1 : Double(frameRawBytes) / Double(compressedBytes) }

    public var description: String {
        var lines: [String] = []
        lines.append("\(path): MegaFS model file, format \(majorVersion).\(minorVersion), \(fileBytes) bytes")
        lines.append("sections:")
        for s in sections { lines.append("  \(s.name.padding(toLength: 17, withPad: " ", startingAt: 0)) offset \(s.offset), \(s.length) bytes") }
        lines.append("graph '\(graphName)': \(nodeCount) nodes, opsets \(opsets.sorted { $0.key < $1.key }.map { "\($0.key.isEmpty ? "ai.onnx" : $0.key)=\($0.value)" }.joined(separator: ", "))")
        for v in inputs { lines.append("  input  \(v)") }
        for v in outputs { lines.append("  output \(v)") }
        lines.append("tensors: \(tensorCount) (\(quantizedTensors) quantized), \(rawBytes) raw bytes")
        lines.append("frames: \(frameCount) (\(shuffledFrames) shuffled, \(storedFrames) stored), \(frameRawBytes) raw -> \(compressedBytes) compressed bytes, ratio \(String(format: "%.3f", compressionRatio))")
        lines.append("metadata:")
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) { lines.append("  \(k) = \(v)") }
        return lines.joined(separator: "\n")
    }
}

/// Reads `.mfs` model files. `init` reads and validates the header, section table and all
/// small sections (graph, metadata, tensor directory, frame table) and their checksums;
/// `readGraph()` then decompresses the frames in parallel and verifies each one.
public final class ModelFileReader: @unchecked Sendable {
    public let path: String
    public let options: ReadOptions
    public let fileSize: UInt64
    public let majorVersion: Int
    public let minorVersion: Int
    public let sections: [SectionInfo]
    public let metadata: [String: String]
    public let tensors: [TensorRecord]
    public let frames: [FrameRecord]
    /// The graph without initializers and metadata.
    let skeleton: Graph
    /// For each frame, the pieces of tensors it holds.
    let segments: [[Plan.Segment]]
    let file: ReadableFile

    /// Reads `path` into a Graph (all checksums verified).
    public static func read(_ path: String, options: ReadOptions = ReadOptions()) throws -> Graph {
        try ModelFileReader(path: path, options: options).readGraph()
    }

    /// The summary of `path` without decompressing any weights.
    public static func inspect(_ path: String, options: ReadOptions = ReadOptions()) throws -> ModelFileSummary {
        try ModelFileReader(path: path, options: options).summary
    }

    public init(path: String, options: ReadOptions = ReadOptions()) throws {
        self.path = path
        self.options = options
        file = try ReadableFile(path: path)
        fileSize = file.size

        // Header.
        let headerSize = UInt64(ModelFileFormat.headerSize)
        let magicCount = min(Int(fileSize), 8)
        let head = try file.readBytes(at: 0, count: magicCount, what: "magic")
        guard head == Array(ModelFileFormat.magic.prefix(magicCount)), magicCount == 8 || fileSize < 8 else {
            throw ModelFileError.notAModelFile(path: path, found: head.isEmpty ? "an empty file" : head.map { String(format: "%02X", $0) }.joined(separator: " "))
        }
        guard fileSize >= headerSize else {
            if fileSize >= 12 { try Self.checkVersion(path: path, try file.readBytes(at: 0, count: 12, what: "version")) }
            throw ModelFileError.truncated(path: path, what: "the header", needed: headerSize, fileSize: fileSize)
        }
        let header = try file.readBytes(at: 0, count: Int(headerSize), what: "header")
        (majorVersion, minorVersion) = try Self.checkVersion(path: path, header)
        var h = ByteReader(bytes: header, path: path, section: "header", base: 0)
        try h.skip(12, "magic and version")
        _ = try h.u32("flags")
        let declaredLength = try h.u64("file length")
        let tableOffset = try h.u64("section table offset")
        let sectionCount = Int(try h.u32("section count"))
        let entrySize = Int(try h.u32("section entry size"))
        let storedHeaderChecksum = try h.u64("header checksum")
        guard sectionCount <= ModelFileLimits.maxSections else {
            throw ModelFileError.limitExceeded(path: path, what: "section count", value: UInt64(sectionCount),
                                               limit: UInt64(ModelFileLimits.maxSections))
        }
        guard entrySize >= ModelFileFormat.sectionEntrySize, entrySize <= ModelFileLimits.maxSectionEntrySize else {
            throw ModelFileError.malformed(path: path, what: "header", detail: "section entry size \(entrySize) is not in \(ModelFileFormat.sectionEntrySize)...\(ModelFileLimits.maxSectionEntrySize)")
        }
        let tableLength = UInt64(sectionCount * entrySize)
        guard tableOffset >= headerSize, tableOffset <= fileSize, tableLength <= fileSize - tableOffset else {
            if declaredLength > fileSize {
                throw ModelFileError.truncated(path: path, what: "the file as its header declares it", needed: declaredLength,
                                               fileSize: fileSize)
            }
            throw ModelFileError.outOfRange(path: path, what: "section table", offset: tableOffset, length: tableLength,
                                            bound: "the file (\(fileSize) bytes, after the 64-byte header)")
        }
        let table = try file.readBytes(at: tableOffset, count: Int(tableLength), what: "section table")
        // Header checksum: XXH64 of the 64 header bytes (checksum field zeroed) followed by the
        // section table. Checked before any other field is trusted.
        var hashed = header
        for i in 40..<48 { hashed[i] = 0 }
        hashed += table
        let headerChecksum = XXH64.hash(hashed)
        guard headerChecksum == storedHeaderChecksum else {
            throw ModelFileError.checksumMismatch(path: path, what: "header and section table (file offsets 0..<64 and \(tableOffset)..<\(tableOffset + tableLength))",
                                                  expected: storedHeaderChecksum, actual: headerChecksum)
        }
        if declaredLength > fileSize {
            throw ModelFileError.truncated(path: path, what: "the file as its header declares it", needed: declaredLength,
                                           fileSize: fileSize)
        }
        if declaredLength < fileSize {
            throw ModelFileError.malformed(path: path, what: "header",
                                           detail: "the file has \(fileSize) bytes but its header declares \(declaredLength) (trailing data)")
        }

        // Section table.
        var t = ByteReader(bytes: table, path: path, section: "section table", base: tableOffset)
        var infos: [SectionInfo] = []
        for i in 0..<sectionCount {
            let kind = try t.u32("kind of section \(i)")
            let flags = try t.u32("flags of section \(i)")
            let offset = try t.u64("offset of section \(i)")
            let length = try t.u64("length of section \(i)")
            let checksum = try t.u64("checksum of section \(i)")
            try t.skip(entrySize - ModelFileFormat.sectionEntrySize, "rest of section entry \(i)")
            let info = SectionInfo(kind: kind, flags: flags, offset: offset, length: length, checksum: checksum)
            guard offset <= fileSize, length <= fileSize - offset else {
                throw ModelFileError.outOfRange(path: path, what: "\(info.name) section", offset: offset, length: length,
                                                bound: "the file (\(fileSize) bytes)")
            }
            guard offset % UInt64(ModelFileFormat.alignment) == 0 else {
                throw ModelFileError.malformed(path: path, what: "section table", detail: "\(info.name) section offset \(offset) is not 64-aligned")
            }
            guard offset >= tableOffset + tableLength || offset + length <= tableOffset, offset >= headerSize || length == 0 else {
                throw ModelFileError.outOfRange(path: path, what: "\(info.name) section", offset: offset, length: length,
                                                bound: "the file outside the header and section table")
            }
            if SectionKind(rawValue: kind) == nil, flags & SectionFlags.required != 0 {
                throw ModelFileError.unsupportedFeature(path: path, what: "required section of unknown kind \(kind) (format \(majorVersion).\(minorVersion))")
            }
            if let k = SectionKind(rawValue: kind), infos.contains(where: { $0.kind == k.rawValue }) {
                throw ModelFileError.malformed(path: path, what: "section table", detail: "the \(k) section appears twice")
            }
            infos.append(info)
        }
        let nonEmpty = infos.filter { $0.length > 0 }.sorted { $0.offset < $1.offset }
        for (a, b) in zip(nonEmpty, nonEmpty.dropFirst()) where a.offset + a.length > b.offset {
            throw ModelFileError.outOfRange(path: path, what: "\(b.name) section", offset: b.offset, length: b.length,
                                            bound: "the file after the \(a.name) section, which it overlaps")
        }
        sections = infos
        func section(_ kind: SectionKind) throws -> SectionInfo {
            guard let s = infos.first(where: { $0.kind == kind.rawValue }) else {
                throw ModelFileError.malformed(path: path, what: "section table", detail: "the \(kind) section is missing")
            }
            return s
        }
        let file = self.file
        func load(_ kind: SectionKind) throws -> ByteReader {
            let s = try section(kind)
            guard s.length <= UInt64(ModelFileLimits.maxSectionBytes) else {
                throw ModelFileError.limitExceeded(path: path, what: "length of the \(kind) section", value: s.length,
                                                   limit: UInt64(ModelFileLimits.maxSectionBytes))
            }
            let bytes = try file.readBytes(at: s.offset, count: Int(s.length), what: "\(kind) section")
            let sum = XXH64.hash(bytes)
            guard sum == s.checksum else {
                throw ModelFileError.checksumMismatch(path: path, what: "\(kind) section (file offset \(s.offset), \(s.length) bytes)",
                                                      expected: s.checksum, actual: sum)
            }
            return ByteReader(bytes: bytes, path: path, section: kind.description, base: s.offset)
        }
        let data = try section(.data)
        frames = try FrameTable.decode(try load(.frames), dataSection: FileRange(offset: data.offset, end: data.offset + data.length))
        tensors = try TensorDirectory.decode(try load(.tensors), maxTotalRawBytes: options.maxTotalRawBytes)
        let rawBytes = tensors.reduce(UInt64(0)) { $0 + $1.byteLength }
        let allowed = ModelFileLimits.expandedBytesAllowed(fileSize: fileSize, ratio: options.maxExpansionRatio)
        guard rawBytes <= allowed else {
            throw ModelFileError.limitExceeded(
                path: path, what: "tensor bytes for a file of \(fileSize) bytes (more than \(options.maxExpansionRatio)x its size "
                    + "plus \(ModelFileLimits.expansionAllowance >> 20) MiB: a decompression bomb, or raise ReadOptions.maxExpansionRatio)",
                value: rawBytes, limit: allowed)
        }
        metadata = try MetadataSection.decode(try load(.metadata))
        skeleton = try GraphSectionDecoder.decode(try load(.graph))
        segments = try Self.mapSegments(path: path, tensors: tensors, frames: frames)
    }

    @discardableResult
    static func checkVersion(path: String, _ header: [UInt8]) throws -> (Int, Int) {
        let major = Int(header[8]) | Int(header[9]) << 8
        let minor = Int(header[10]) | Int(header[11]) << 8
        guard major == Int(ModelFileFormat.majorVersion) else {
            throw ModelFileError.unsupportedVersion(path: path, major: major, minor: minor,
                                                    supportedMajor: Int(ModelFileFormat.majorVersion))
        }
        return (major, minor)
    }

    /// Checks each tensor's frames against the frame table and lists, per frame, the tensor
    /// pieces it holds. Tensors must not overlap.
    static func mapSegments(path: String, tensors: [TensorRecord], frames: [FrameRecord]) throws -> [[Plan.Segment]] {
        var segments = [[Plan.Segment]](repeating: [], count: frames.count)
        let streamEnd = frames.last.map { $0.rawOffset + $0.rawLength } ?? 0
        func bad(_ t: TensorRecord, _ detail: String) -> ModelFileError {
            .malformed(path: path, what: "tensor directory", detail: "tensor '\(t.name)': \(detail)")
        }
        for (i, t) in tensors.enumerated() {
            if t.byteLength == 0 {
                guard t.frameCount == 0 else { throw bad(t, "empty but assigned \(t.frameCount) frames") }
                continue
            }
            guard t.dataOffset <= streamEnd, t.byteLength <= streamEnd - t.dataOffset else {
                throw ModelFileError.outOfRange(path: path, what: "data of tensor '\(t.name)'", offset: t.dataOffset,
                                                length: t.byteLength, bound: "the raw data stream of \(streamEnd) bytes")
            }
            guard t.frameCount >= 1, t.firstFrame < frames.count, t.frameCount <= frames.count - t.firstFrame else {
                throw bad(t, "frames \(t.firstFrame)..<\(t.firstFrame + t.frameCount) are not in the \(frames.count) frames")
            }
            let end = t.dataOffset + t.byteLength
            let first = frames[t.firstFrame], last = frames[t.firstFrame + t.frameCount - 1]
            guard first.rawOffset <= t.dataOffset, t.dataOffset < first.rawOffset + first.rawLength,
                  last.rawOffset < end, end <= last.rawOffset + last.rawLength else {
                throw bad(t, "raw bytes \(t.dataOffset)..<\(end) do not match frames \(t.firstFrame)..<\(t.firstFrame + t.frameCount)")
            }
            for f in t.firstFrame..<(t.firstFrame + t.frameCount) {
                let fr = frames[f]
                let lo = max(t.dataOffset, fr.rawOffset), hi = min(end, fr.rawOffset + fr.rawLength)
                segments[f].append(Plan.Segment(tensor: i, tensorOffset: Int(lo - t.dataOffset),
                                                frameOffset: Int(lo - fr.rawOffset), length: Int(hi - lo)))
            }
        }
        let placed = tensors.filter { $0.byteLength > 0 }.sorted { $0.dataOffset < $1.dataOffset }
        for (a, b) in zip(placed, placed.dropFirst()) where a.dataOffset + a.byteLength > b.dataOffset {
            throw ModelFileError.malformed(path: path, what: "tensor directory",
                                           detail: "tensors '\(a.name)' and '\(b.name)' overlap in the raw data stream")
        }
        return segments
    }

    public var summary: ModelFileSummary {
        ModelFileSummary(path: path, fileBytes: fileSize, majorVersion: majorVersion, minorVersion: minorVersion,
                         sections: sections, graphName: skeleton.name, nodeCount: skeleton.nodes.count,
                         operatorHistogram: skeleton.operatorHistogram, inputs: skeleton.inputs,
                         outputs: skeleton.outputs, opsets: skeleton.opsets, metadata: metadata,
                         tensors: tensors, frames: frames)
    }

    /// Float32 matrices from this size on go into the model's huge-page slab (`TensorSlab`).
    static let slabMinBytes: UInt64 = 64 << 10

    static func belongsInSlab(_ t: TensorRecord) -> Bool {
        t.dtype == .float32 && t.shape.count == 2 && t.byteLength >= slabMinBytes
    }

    /// Decompresses every frame (in parallel, `options.threads`), verifies both checksums of
    /// each, and returns the graph with its initializers and metadata. Each tensor gets its
    /// own 64-byte aligned `TensorStorage` (the large float32 matrices in one huge-page slab);
    /// a frame is decoded into per-thread scratch buffers and its pieces are copied out, so
    /// peak memory is the tensors plus a few frames.
    public func readGraph() throws -> Graph {
        try checkFrameHeaders()
        // The slab holds the large float32 matrices: the one-row linears' weights, which the
        // GEMV streams from memory on every call (the FTM's 336). Conv weights stay separate
        // allocations: with all large float32 tensors in the slab, loading the encoder right
        // after other engines' processes took 1.0-1.2 s against 0.5-0.8 s (the kernel finding
        // free huge pages), for no measurable gain in its run. Small and int8 tensors too, which
        // malloc can reuse once the runtime has packed and dropped them (int8 in the slab cost
        // the int8 swap 8-12 MB of peak RSS: 805 against 793 MB).
        let inFile = mappedLayout()
        var placed = TensorStorage.slabbed(
            byteCounts: tensors.indices.map { inFile?.tensorOffsets[$0] == nil ? Int(tensors[$0].byteLength) : 0 },
            inSlab: tensors.indices.map { inFile?.tensorOffsets[$0] == nil && Self.belongsInSlab(tensors[$0]) },
            // Not cleared first: mapSegments checked that each tensor's frames cover all of its
            // bytes, and a frame that fails to decode fails the load. The pages then fault in
            // on the decoding threads instead of in a serial memset of the whole model.
            zeroed: false)
        if let inFile {
            for (i, offset) in inFile.tensorOffsets.enumerated() {
                if let offset { placed[i] = TensorStorage(slab: inFile.slab, offset: offset, byteCount: Int(tensors[i].byteLength)) }
            }
        }
        let storages = placed
        let maxStored = Int(frames.map(\.storedLength).max() ?? 0)
        let maxRaw = Int(frames.map(\.rawLength).max() ?? 0)
        let threads = max(1, min(options.threads, frames.count, 4 * ProcessInfo.processInfo.activeProcessorCount))
        let next = Atomic<Int>(0)
        let failure = Mutex<ModelFileError?>(nil)
        if !frames.isEmpty {
            DispatchQueue.concurrentPerform(iterations: threads) { _ in
                let stored = UnsafeMutableRawBufferPointer.allocate(byteCount: max(maxStored, 1), alignment: 64)
                let a = UnsafeMutableRawBufferPointer.allocate(byteCount: max(maxRaw, 1), alignment: 64)
                let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(maxRaw, 1), alignment: 64)
                defer { stored.deallocate(); a.deallocate(); b.deallocate() }
                let zstd = ZstdDecompressor()
                while true {
                    let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    if i >= frames.count || failure.withLock({ $0 != nil }) { return }
                    do {
                        if let inFile, let at = inFile.frameOffsets[i] {
                            try checkMappedFrame(i, bytes: UnsafeRawBufferPointer(start: inFile.slab.base + at, count: Int(frames[i].storedLength)))
                            continue
                        }
                        try decodeFrame(i, stored: stored, a: a, b: b, zstd: zstd, storages: storages)
                    } catch let e as ModelFileError {
                        failure.withLock { $0 = $0 ?? e }
                    } catch {
                        failure.withLock { $0 = $0 ?? .io(path: path, operation: "read frame \(i)", message: "\(error)") }
                    }
                }
            }
        }
        if let e = failure.withLock({ $0 }) { throw e }
        var g = skeleton
        g.metadata = metadata
        g.initializers.reserveCapacity(tensors.count)
        for (t, s) in zip(tensors, storages) {
            g.initializers[t.name] = Tensor(dtype: t.dtype, shape: t.shape, storage: s)
        }
        return g
    }

    /// Where uncompressed weights are mapped from the file instead of read (`TensorSlab(file:)`):
    /// the slab and, relative to its base, each mapped tensor's and each in-place frame's bytes.
    struct MappedLayout {
        let slab: TensorSlab
        let tensorOffsets: [Int?]
        let frameOffsets: [Int?]
    }

    /// Weights are mapped unless `MEGAFS_MAP_WEIGHTS` is `off` (or `0`).
    public static let mapsWeightsByDefault: Bool = {
        guard let v = getenv("MEGAFS_MAP_WEIGHTS").map({ String(cString: $0) }) else { return true }
        return v != "off" && v != "0"
    }()

    /// A tensor is mapped when all of its frames are stored as they are (codec 0, no filter) at
    /// one distance between file and raw offsets (so its bytes are contiguous in the file) and its
    /// file offset is 64-byte aligned; such a frame whose pieces all belong to mapped tensors is
    /// checked in place. Nil when nothing qualifies or the mapping fails (everything is read).
    /// The large matrices are mapped too, in 4 kB pages: the FTM's steady run took 13.0-14.4
    /// against 12.1-13.1 ms from the huge-page slab, but copying them there made its load as slow
    /// as decompressing (398 against 80 ms mapped; 337 ms from the compressed file).
    func mappedLayout() -> MappedLayout? {
        guard options.mapWeights else { return nil }
        func asIs(_ f: FrameRecord) -> Bool {
            f.codec == .stored && f.filter == .none && f.storedLength == f.rawLength && f.fileOffset + f.storedLength <= fileSize
        }
        var tensorFileOffsets = [Int?](repeating: nil, count: tensors.count)
        for (i, t) in tensors.enumerated() where t.byteLength > 0 {
            let range = t.firstFrame..<(t.firstFrame + t.frameCount)
            let first = frames[t.firstFrame]
            let shift = Int64(bitPattern: first.fileOffset &- first.rawOffset)
            guard range.allSatisfy({ asIs(frames[$0]) && Int64(bitPattern: frames[$0].fileOffset &- frames[$0].rawOffset) == shift })
            else { continue }
            let offset = Int(first.fileOffset) + Int(t.dataOffset - first.rawOffset)
            if offset % TensorStorage.alignment == 0 { tensorFileOffsets[i] = offset }
        }
        var inPlace = [Bool](repeating: false, count: frames.count)
        for (f, frame) in frames.enumerated() where asIs(frame) && !segments[f].isEmpty {
            inPlace[f] = segments[f].allSatisfy { tensorFileOffsets[$0.tensor] != nil }
        }
        // One mapping from the first to the last byte of what is mapped.
        var low = Int.max, high = 0
        for (i, offset) in tensorFileOffsets.enumerated() {
            if let offset { low = min(low, offset); high = max(high, offset + Int(tensors[i].byteLength)) }
        }
        for (f, frame) in frames.enumerated() where inPlace[f] {
            low = min(low, Int(frame.fileOffset)); high = max(high, Int(frame.fileOffset + frame.storedLength))
        }
        guard high > 0 else { return nil }
        low = low / TensorStorage.alignment * TensorStorage.alignment
        guard let slab = TensorSlab(file: file.fd, offset: low, byteCount: high - low) else { return nil }
        return MappedLayout(slab: slab, tensorOffsets: tensorFileOffsets.map { $0.map { $0 - low } },
                            frameOffsets: frames.indices.map { inPlace[$0] ? Int(frames[$0].fileOffset) - low : nil })
    }

    /// A frame stored as it is, checked where it is mapped (its stored bytes are its raw bytes).
    private func checkMappedFrame(_ i: Int, bytes: UnsafeRawBufferPointer) throws {
        let f = frames[i]
        let sum = XXH64.hash(bytes)
        guard sum == f.storedChecksum else {
            throw ModelFileError.checksumMismatch(path: path, what: "stored bytes of frame \(i) (file offset \(f.fileOffset), \(bytes.count) bytes)",
                                                  expected: f.storedChecksum, actual: sum)
        }
        guard sum == f.rawChecksum else {
            throw ModelFileError.checksumMismatch(path: path, what: "decompressed bytes of frame \(i) (file offset \(f.fileOffset))",
                                                  expected: f.rawChecksum, actual: sum)
        }
    }

    /// Before allocating anything for the tensors: each zstd frame's header must declare the
    /// raw length the frame table claims (reads at most 18 bytes per frame). On a mismatch the
    /// whole frame is checked against its stored checksum first, so damage is reported as such.
    func checkFrameHeaders() throws {
        var head = [UInt8](repeating: 0, count: 18)
        for (i, f) in frames.enumerated() where f.codec == .zstd {
            let n = Int(min(f.storedLength, 18))
            try head.withUnsafeMutableBytes { try file.read(at: f.fileOffset, count: n, into: $0.baseAddress!, what: "frame \(i)") }
            let declared = head.withUnsafeBytes { ZstdDecompressor.declaredContentSize(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            guard declared != f.rawLength else { continue }
            let stored = try file.readBytes(at: f.fileOffset, count: Int(f.storedLength), what: "frame \(i)")
            let sum = XXH64.hash(stored)
            guard sum == f.storedChecksum else {
                throw ModelFileError.checksumMismatch(path: path, what: "stored bytes of frame \(i) (file offset \(f.fileOffset), \(f.storedLength) bytes)",
                                                      expected: f.storedChecksum, actual: sum)
            }
            let what = declared == ZstdDecompressor.contentSizeError ? "has no valid zstd frame header"
                : declared == ZstdDecompressor.contentSizeUnknown ? "does not declare its content size"
                : "declares \(declared) decompressed bytes"
            throw ModelFileError.corruptFrame(path: path, frame: i,
                                              detail: "zstd frame \(what), the frame table says \(f.rawLength) (file offset \(f.fileOffset))")
        }
    }

    private func decodeFrame(_ i: Int, stored: UnsafeMutableRawBufferPointer, a: UnsafeMutableRawBufferPointer,
                             b: UnsafeMutableRawBufferPointer, zstd: ZstdDecompressor, storages: [TensorStorage]) throws {
        let f = frames[i]
        let n = Int(f.storedLength), raw = Int(f.rawLength)
        try file.read(at: f.fileOffset, count: n, into: stored.baseAddress!, what: "frame \(i)")
        let storedBytes = UnsafeRawBufferPointer(rebasing: stored[0..<n])
        let sum = XXH64.hash(storedBytes)
        guard sum == f.storedChecksum else {
            throw ModelFileError.checksumMismatch(path: path, what: "stored bytes of frame \(i) (file offset \(f.fileOffset), \(n) bytes)",
                                                  expected: f.storedChecksum, actual: sum)
        }
        var data: UnsafeRawBufferPointer
        switch f.codec {
        case .stored:
            data = storedBytes
        case .zstd:
            let out = UnsafeMutableRawBufferPointer(rebasing: a[0..<raw])
            if let problem = zstd.decompress(storedBytes, into: out) {
                throw ModelFileError.corruptFrame(path: path, frame: i, detail: "\(problem) (file offset \(f.fileOffset))")
            }
            data = UnsafeRawBufferPointer(out)
        }
        if f.filter == .byteShuffle {
            let out = UnsafeMutableRawBufferPointer(rebasing: b[0..<raw])
            ByteShuffle.unshuffle(data, into: out, elementSize: f.elementSize)
            data = UnsafeRawBufferPointer(out)
        }
        let rawSum = XXH64.hash(data)
        guard rawSum == f.rawChecksum else {
            throw ModelFileError.checksumMismatch(path: path, what: "decompressed bytes of frame \(i) (file offset \(f.fileOffset))",
                                                  expected: f.rawChecksum, actual: rawSum)
        }
        for s in segments[i] {
            (storages[s.tensor].pointer + s.tensorOffset).copyMemory(from: data.baseAddress! + s.frameOffset, byteCount: s.length)
        }
    }
}
