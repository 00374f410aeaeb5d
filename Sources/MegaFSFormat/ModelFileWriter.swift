import Dispatch
import Foundation
import MegaFSGraph
import Synchronization

/// When to apply the byte-shuffle filter to a frame before zstd.
public enum ShufflePolicy: String, Sendable, CaseIterable {
    /// Shuffle every frame whose element size is above 1; frames of at most 1 MiB (small
    /// tensors packed together, tails of big ones) are compressed both ways and keep the
    /// smaller. (zstd Huffman-codes each 128 KiB block with one table, so the byte planes only
    /// pay off once they fill blocks of their own; on every large float frame measured the
    /// shuffle won, see FORMAT.md.)
    case auto
    /// Shuffle every frame whose element size is above 1.
    case on
    /// Never shuffle.
    case off
}

/// Options of `ModelFileWriter.write`.
public struct WriteOptions: Sendable {
    /// zstd level, `ZSTD_minCLevel()...ZSTD_maxCLevel()` (negative levels are zstd's fast modes).
    /// 1 is the default: on shuffled float weights it compressed *better* than levels 3-9
    /// (1.186 vs 1.168-1.176 on the exported encoder) and 2.5x faster than level 3; level 19
    /// gains 0.2% at 300x the time (measurements in FORMAT.md).
    public var compressionLevel: Int
    /// Frames compressed in parallel.
    public var threads: Int
    public var shuffle: ShufflePolicy
    /// False: every frame is stored as it is (codec 0, no filter), so that readers map the
    /// weights from the file instead of decoding them (a larger file, a much faster load).
    public var compress: Bool
    /// Raw bytes per frame: a multiple of 64 between 4 KiB and `ModelFileLimits.maxFrameRawBytes`.
    public var frameSize: Int
    /// Quantization records of tensors, by initializer name (`.none` for any other).
    public var quantization: [String: TensorQuantization]
    /// Called with the fraction of raw bytes done (0...1); return false to cancel, which
    /// throws `ModelFileError.cancelled` and leaves no file behind.
    public var progress: (@Sendable (Double) -> Bool)?

    public init(compressionLevel: Int = 1, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                shuffle: ShufflePolicy = .auto, compress: Bool = true, frameSize: Int = ModelFileFormat.defaultFrameSize,
                quantization: [String: TensorQuantization] = [:], progress: (@Sendable (Double) -> Bool)? = nil) {
        self.compressionLevel = compressionLevel
        self.compress = compress
        self.threads = threads
        self.shuffle = shuffle
        self.frameSize = frameSize
        self.quantization = quantization
        self.progress = progress
    }
}

/// What `ModelFileWriter.write` did.
public struct WriteSummary: Sendable, CustomStringConvertible {
    public var path: String
    public var tensorCount: Int
    /// Sum of the tensors' bytes.
    public var rawBytes: UInt64
    /// Sum of the frames' raw bytes (tensor bytes plus alignment padding).
    public var frameRawBytes: UInt64
    /// Sum of the frames' stored (compressed) bytes.
    public var compressedBytes: UInt64
    public var fileBytes: UInt64
    public var frames: Int
    public var shuffledFrames: Int
    /// Frames kept uncompressed because zstd did not make them smaller.
    public var storedFrames: Int
    public var seconds: Double

    /// Raw tensor bytes over compressed bytes.
    public var compressionRatio: Double { compressedBytes == 0 ? 1 : Double(frameRawBytes) / Double(compressedBytes) }

    public var description: String {
        "\(path): \(tensorCount) tensors, \(rawBytes) raw bytes in \(frames) frames (\(shuffledFrames) shuffled, \(storedFrames) stored) -> \(compressedBytes) compressed bytes (ratio \(String(format: "%.3f", compressionRatio))), file \(fileBytes) bytes, \(String(format: "%.2f", seconds)) s"
    }
}

/// Writes a `Graph` as a `.mfs` model file (see `formats/FORMAT.md`).
public enum ModelFileWriter {
    /// Writes `graph` to `path` atomically: everything goes to a temporary file in the same
    /// folder, which is fsynced and renamed over `path` only when complete. On any error
    /// (or cancellation) the temporary file is removed and an existing `path` is untouched.
    @discardableResult
    public static func write(_ graph: Graph, to path: String, options: WriteOptions = WriteOptions()) throws -> WriteSummary {
        let start = DispatchTime.now().uptimeNanoseconds
        let plan = try Plan(graph: graph, options: options)
        let graphBytes = try GraphSectionEncoder.encode(graph)
        let metadataBytes = try MetadataSection.encode(graph.metadata)
        for (name, bytes) in [("graph", graphBytes.count), ("metadata", metadataBytes.count)]
        where bytes > ModelFileLimits.maxSectionBytes {
            throw ModelFileError.invalidInput("the \(name) section would be \(bytes) bytes, above maxSectionBytes")
        }
        let directoryBytes = try TensorDirectory.encode(plan.records, indexOf: plan.indexOf)

        let file = try TemporaryFile(beside: path)
        defer { file.discard() }   // no-op after a successful commit

        let sectionCount = 5
        let tableEnd = ModelFileFormat.headerSize + sectionCount * ModelFileFormat.sectionEntrySize
        let dataStart = UInt64(alignUp(tableEnd))
        var frames: [FrameRecord] = []
        frames.reserveCapacity(plan.frames.count)
        var position = dataStart
        var rawDone: UInt64 = 0
        let totalRaw = max(plan.totalRaw, 1)
        if let progress = options.progress, !progress(0) { throw ModelFileError.cancelled }

        // Compress in batches so memory stays at a few frames per thread; write each batch in order.
        // More workers than frames (or than a few per core) would only cost scratch memory.
        let threads = max(1, min(options.threads, plan.frames.count, 4 * ProcessInfo.processInfo.activeProcessorCount))
        let batchSize = threads * 2
        let workers = WorkerPool(count: threads, level: options.compressionLevel, frameSize: options.frameSize)
        var batchStart = 0
        while batchStart < plan.frames.count {
            let batch = Array(plan.frames[batchStart..<min(batchStart + batchSize, plan.frames.count)])
            let results = try workers.compress(batch, graph: plan, shuffle: options.shuffle, compress: options.compress)
            for (frame, result) in zip(batch, results) {
                position = alignUp(position)
                try file.write(result.stored, at: position)
                frames.append(FrameRecord(fileOffset: position, storedLength: UInt64(result.stored.count),
                                          rawOffset: UInt64(frame.rawOffset), rawLength: UInt64(frame.rawLength),
                                          rawChecksum: result.rawChecksum, storedChecksum: result.storedChecksum,
                                          codec: result.codec, filter: result.filter, elementSize: result.elementSize))
                position += UInt64(result.stored.count)
                rawDone += UInt64(frame.rawLength)
            }
            batchStart += batch.count
            if let progress = options.progress, !progress(min(0.999, Double(rawDone) / Double(totalRaw))) {
                throw ModelFileError.cancelled
            }
        }
        let dataSection = SectionEntry(kind: .data, flags: SectionFlags.required, offset: dataStart,
                                       length: position - dataStart, checksum: 0)
        let frameBytes = FrameTable.encode(frames)
        var entries: [SectionEntry] = []
        for (kind, bytes) in [(SectionKind.graph, graphBytes), (.metadata, metadataBytes),
                              (.tensors, directoryBytes), (.frames, frameBytes)] {
            position = alignUp(position)
            try file.write(bytes, at: position)
            entries.append(SectionEntry(kind: kind, flags: SectionFlags.required, offset: position,
                                        length: UInt64(bytes.count), checksum: XXH64.hash(bytes)))
            position += UInt64(bytes.count)
        }
        entries.append(dataSection)
        // Pad the gap between the section table and the first frame with zeros (written explicitly
        // so the file has no holes), then the header and section table.
        // A file the reader would refuse as a decompression bomb is not written.
        let allowed = ModelFileLimits.expandedBytesAllowed(fileSize: position, ratio: UInt64(ModelFileLimits.maxExpansionRatio))
        guard plan.tensorBytes <= allowed else {
            throw ModelFileError.invalidInput("the tensors (\(plan.tensorBytes) bytes) compress to a \(position)-byte file, more than "
                + "maxExpansionRatio (\(ModelFileLimits.maxExpansionRatio)x) plus \(ModelFileLimits.expansionAllowance >> 20) MiB; "
                + "readers would refuse it (mostly constant-filled tensors?)")
        }
        let header = encodeHeader(fileLength: position, entries: entries)
        try file.write(header + [UInt8](repeating: 0, count: Int(dataStart) - header.count), at: 0)
        if let progress = options.progress, !progress(1) { throw ModelFileError.cancelled }
        try file.commit(to: path)

        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return WriteSummary(path: path, tensorCount: plan.records.count, rawBytes: plan.tensorBytes,
                            frameRawBytes: UInt64(plan.totalRaw),
                            compressedBytes: frames.reduce(0) { $0 + $1.storedLength }, fileBytes: position,
                            frames: frames.count, shuffledFrames: frames.filter { $0.filter == .byteShuffle }.count,
                            storedFrames: frames.filter { $0.codec == .stored }.count, seconds: seconds)
    }

    static func encodeHeader(fileLength: UInt64, entries: [SectionEntry]) -> [UInt8] {
        var w = ByteWriter()
        w.raw(ModelFileFormat.magic)
        w.u16(ModelFileFormat.majorVersion)
        w.u16(ModelFileFormat.minorVersion)
        w.u32(0)                                   // flags
        w.u64(fileLength)
        w.u64(UInt64(ModelFileFormat.headerSize))  // section table offset
        w.u32(entries.count)
        w.u32(ModelFileFormat.sectionEntrySize)
        w.u64(0)                                   // header checksum, patched below
        w.u64(0); w.u64(0)                         // reserved
        for e in entries {
            w.u32(e.kind.rawValue)
            w.u32(e.flags)
            w.u64(e.offset)
            w.u64(e.length)
            w.u64(e.checksum)
        }
        var bytes = w.bytes
        let sum = XXH64.hash(bytes)
        withUnsafeBytes(of: sum.littleEndian) { for i in 0..<8 { bytes[40 + i] = $0[i] } }
        return bytes
    }
}

struct SectionEntry {
    var kind: SectionKind
    var flags: UInt32
    var offset: UInt64
    var length: UInt64
    var checksum: UInt64
}

// MARK: - Layout plan

/// Where every tensor goes in the raw data stream and how the stream is cut into frames.
///
/// Tensors are ordered by element size (8, 4, 2, 1 bytes, so a frame has one element size for
/// the shuffle filter), then by first use in the node list, then by name. Each tensor starts
/// at a 64-aligned stream offset. A tensor that fits in a frame never straddles two; a larger
/// one starts a fresh frame and is cut into `frameSize` pieces. Frames are padded with zeros
/// to a multiple of 64 raw bytes.
struct Plan: @unchecked Sendable {
    struct Segment { var tensor: Int; var tensorOffset: Int; var frameOffset: Int; var length: Int }
    struct Frame { var rawOffset: Int; var rawLength: Int; var elementSize: Int; var segments: [Segment] }

    var tensors: [Tensor] = []
    var records: [TensorRecord] = []
    var indexOf: [String: Int] = [:]
    var frames: [Frame] = []
    var totalRaw = 0
    var tensorBytes: UInt64 = 0

    init(graph: Graph, options: WriteOptions) throws {
        let fs = options.frameSize
        guard fs % ModelFileFormat.alignment == 0, fs >= 4096, fs <= ModelFileLimits.maxFrameRawBytes else {
            throw ModelFileError.invalidInput("frame size \(fs) must be a multiple of 64 in 4096...\(ModelFileLimits.maxFrameRawBytes)")
        }
        let level = options.compressionLevel
        guard level >= Int(ZstdLevels.min), level <= Int(ZstdLevels.max) else {
            throw ModelFileError.invalidInput("zstd level \(level) is outside \(ZstdLevels.min)...\(ZstdLevels.max)")
        }
        guard graph.initializers.count <= ModelFileLimits.maxTensors else {
            throw ModelFileError.invalidInput("\(graph.initializers.count) initializers, above maxTensors")
        }
        // Order: element size (desc), first use, name.
        var firstUse: [String: Int] = [:]
        var useIndex = 0
        for node in graph.nodes {
            for input in node.inputs where graph.initializers[input] != nil && firstUse[input] == nil {
                firstUse[input] = useIndex; useIndex += 1
            }
        }
        let names = graph.initializers.keys.sorted { a, b in
            let ta = graph.initializers[a]!, tb = graph.initializers[b]!
            if ta.dtype.byteSize != tb.dtype.byteSize { return ta.dtype.byteSize > tb.dtype.byteSize }
            let ua = firstUse[a] ?? Int.max, ub = firstUse[b] ?? Int.max
            if ua != ub { return ua < ub }
            return a < b
        }
        for (i, name) in names.enumerated() { indexOf[name] = i }
        var total: UInt64 = 0
        for name in names {
            let t = graph.initializers[name]!
            guard name.utf8.count <= ModelFileLimits.maxStringBytes else {
                throw ModelFileError.invalidInput("initializer name of \(name.utf8.count) bytes exceeds maxStringBytes")
            }
            guard t.rank <= ModelFileLimits.maxRank, t.elementCount <= ModelFileLimits.maxElementsPerTensor,
                  t.byteCount <= ModelFileLimits.maxTensorBytes else {
                throw ModelFileError.invalidInput("initializer '\(name)' \(t) exceeds the rank, element or byte limits")
            }
            total += UInt64(t.byteCount)
            let q = options.quantization[name] ?? .none
            if case .int8Symmetric(let axis, let scalesName) = q {
                guard t.dtype == .int8, axis >= 0, axis < t.rank else {
                    throw ModelFileError.invalidInput("'\(name)' (\(t)) cannot be int8-quantized along axis \(axis)")
                }
                guard let s = graph.initializers[scalesName], s.dtype == .float32, s.shape == [t.shape[axis]] else {
                    throw ModelFileError.invalidInput("scales '\(scalesName)' of '\(name)' must be a float32[\(t.shape[axis])] initializer")
                }
            }
            tensors.append(t)
            records.append(TensorRecord(name: name, dtype: t.dtype, shape: t.shape, dataOffset: 0,
                                        byteLength: UInt64(t.byteCount), firstFrame: 0, frameCount: 0, quantization: q))
        }
        for name in options.quantization.keys where graph.initializers[name] == nil {
            throw ModelFileError.invalidInput("a quantization record names '\(name)', which is not an initializer")
        }
        guard total <= UInt64(ModelFileLimits.maxTotalRawBytes) else {
            throw ModelFileError.invalidInput("\(total) bytes of initializers, above maxTotalRawBytes")
        }
        tensorBytes = total

        var open: Frame? = nil
        var streamEnd = 0
        func close() {
            guard var f = open else { return }
            f.rawLength = alignUp(f.rawLength)
            streamEnd = f.rawOffset + f.rawLength
            frames.append(f)
            open = nil
        }
        for (i, t) in tensors.enumerated() where t.byteCount > 0 {
            let es = t.dtype.byteSize
            if let f = open, f.elementSize != es || t.byteCount > fs || alignUp(f.rawLength) + t.byteCount > fs {
                _ = f
                close()
            }
            var done = 0
            records[i].firstFrame = frames.count
            while done < t.byteCount {
                if open == nil { open = Frame(rawOffset: streamEnd, rawLength: 0, elementSize: es, segments: []) }
                let at = alignUp(open!.rawLength)
                let take = min(fs - at, t.byteCount - done)
                if done == 0 { records[i].dataOffset = UInt64(open!.rawOffset + at) }
                open!.segments.append(Segment(tensor: i, tensorOffset: done, frameOffset: at, length: take))
                open!.rawLength = at + take
                done += take
                if open!.rawLength == fs { close() }
            }
            records[i].frameCount = frames.count + (open == nil ? 0 : 1) - records[i].firstFrame
        }
        close()
        guard frames.count <= ModelFileLimits.maxFrames else {
            throw ModelFileError.invalidInput("\(frames.count) frames, above maxFrames; use a larger frame size")
        }
        totalRaw = streamEnd
    }
}

enum ZstdLevels {
    static var min: Int32 { ZSTD_minCLevel() }
    static var max: Int32 { ZSTD_maxCLevel() }
}

import CZstd

// MARK: - Parallel compression

struct CompressedFrame: Sendable {
    var stored: [UInt8]
    var rawChecksum: UInt64
    var storedChecksum: UInt64
    var codec: FrameCodec
    var filter: FrameFilter
    var elementSize: Int
}

/// Per-thread zstd contexts and scratch buffers.
final class WorkerPool: @unchecked Sendable {
    final class Worker {
        let compressor: ZstdCompressor?
        let raw: UnsafeMutableRawBufferPointer
        let shuffled: UnsafeMutableRawBufferPointer
        let out: UnsafeMutableRawBufferPointer
        let out2: UnsafeMutableRawBufferPointer
        init(level: Int, frameSize: Int) {
            compressor = try? ZstdCompressor(level: level)
            raw = .allocate(byteCount: frameSize, alignment: 64)
            shuffled = .allocate(byteCount: frameSize, alignment: 64)
            out = .allocate(byteCount: ZstdCompressor.bound(frameSize), alignment: 64)
            out2 = .allocate(byteCount: ZstdCompressor.bound(frameSize), alignment: 64)
        }
        deinit { raw.deallocate(); shuffled.deallocate(); out.deallocate(); out2.deallocate() }
    }

    let workers: [Worker]

    init(count: Int, level: Int, frameSize: Int) {
        workers = (0..<count).map { _ in Worker(level: level, frameSize: frameSize) }
    }

    func compress(_ frames: [Plan.Frame], graph plan: Plan, shuffle: ShufflePolicy, compress: Bool = true) throws -> [CompressedFrame] {
        let results = Mutex<[CompressedFrame?]>(Array(repeating: nil, count: frames.count))
        let next = Atomic<Int>(0)
        let failure = Mutex<ModelFileError?>(nil)
        let threads = Swift.min(workers.count, frames.count)
        DispatchQueue.concurrentPerform(iterations: threads) { w in
            let worker = workers[w]
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if i >= frames.count || failure.withLock({ $0 != nil }) { return }
                do {
                    let r = try Self.compress(frames[i], plan: plan, shuffle: shuffle, compress: compress, worker: worker)
                    results.withLock { $0[i] = r }
                } catch let e as ModelFileError {
                    failure.withLock { $0 = $0 ?? e }
                } catch {
                    failure.withLock { $0 = $0 ?? .invalidInput("\(error)") }
                }
            }
        }
        if let e = failure.withLock({ $0 }) { throw e }
        return results.withLock { $0.map { $0! } }
    }

    /// Frames up to this raw size are compressed both ways under `ShufflePolicy.auto`.
    static let autoTrialLimit = 1 << 20

    static func compress(_ frame: Plan.Frame, plan: Plan, shuffle: ShufflePolicy, compress: Bool = true,
                         worker: Worker) throws -> CompressedFrame {
        guard let compressor = worker.compressor else {
            throw ModelFileError.invalidInput("cannot create a zstd compression context")
        }
        let n = frame.rawLength
        let raw = UnsafeMutableRawBufferPointer(rebasing: worker.raw[0..<n])
        raw.initializeMemory(as: UInt8.self, repeating: 0)
        for s in frame.segments {
            let src = plan.tensors[s.tensor].bytes
            (raw.baseAddress! + s.frameOffset).copyMemory(from: src.baseAddress! + s.tensorOffset, byteCount: s.length)
        }
        let rawRO = UnsafeRawBufferPointer(raw)
        let rawChecksum = XXH64.hash(rawRO)
        if !compress {
            return CompressedFrame(stored: Array(rawRO), rawChecksum: rawChecksum, storedChecksum: rawChecksum,
                                   codec: .stored, filter: .none, elementSize: 1)
        }
        let es = frame.elementSize
        let tryShuffled: Bool, tryPlain: Bool
        switch shuffle {
        case .off: (tryShuffled, tryPlain) = (false, true)
        case .on: (tryShuffled, tryPlain) = (es > 1, es == 1)
        case .auto: (tryShuffled, tryPlain) = (es > 1, es == 1 || n <= autoTrialLimit)
        }
        var shuffledSize = Int.max, plainSize = Int.max
        if tryShuffled {
            let sh = UnsafeMutableRawBufferPointer(rebasing: worker.shuffled[0..<n])
            ByteShuffle.shuffle(rawRO, into: sh, elementSize: es)
            shuffledSize = try compressor.compress(UnsafeRawBufferPointer(sh), into: worker.out)
        }
        if tryPlain {
            plainSize = try compressor.compress(rawRO, into: worker.out2)
        }
        let useShuffled = shuffledSize <= plainSize
        let size = min(shuffledSize, plainSize)
        if size >= n {
            // zstd does not help: store the raw bytes (unfiltered, so they could be mapped).
            return CompressedFrame(stored: Array(rawRO), rawChecksum: rawChecksum, storedChecksum: rawChecksum,
                                   codec: .stored, filter: .none, elementSize: 1)
        }
        let out = useShuffled ? worker.out : worker.out2
        let stored = Array(UnsafeRawBufferPointer(rebasing: out[0..<size]))
        return CompressedFrame(stored: stored, rawChecksum: rawChecksum, storedChecksum: XXH64.hash(stored),
                               codec: .zstd, filter: useShuffled ? .byteShuffle : .none, elementSize: useShuffled ? es : 1)
    }
}
