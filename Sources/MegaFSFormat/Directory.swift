import MegaFSGraph

/// How a tensor's stored values map to real values. Recorded per tensor in the directory.
public enum TensorQuantization: Sendable, Equatable, CustomStringConvertible {
    /// Values are stored as they are.
    case none
    /// Symmetric per-channel int8: the tensor's dtype is int8 and the real value of element
    /// `x` is `Float(x) * scales[c]`, where `c` is `x`'s index along `axis` and `scales` names
    /// a float32 tensor of shape `[shape[axis]]` in the same file. (Zero point 0.)
    case int8Symmetric(axis: Int, scales: String)

    /// Scheme codes on disk.
    public var schemeCode: UInt8 {
        switch self {
        case .none: return 0
        case .int8Symmetric: return 1
        }
    }

    public var description: String {
        switch self {
        case .none: return "none"
        case .int8Symmetric(let axis, let scales): return "int8 symmetric, axis \(axis), scales '\(scales)'"
        }
    }
}

/// One entry of the tensor directory, as stored.
public struct TensorRecord: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Offset of the tensor's first byte in the raw data stream (the concatenation of all
    /// frames' raw bytes); a multiple of 64.
    public var dataOffset: UInt64
    public var byteLength: UInt64
    /// The frames holding the tensor: `firstFrame ..< firstFrame + frameCount` (0 frames when empty).
    public var firstFrame: Int
    public var frameCount: Int
    public var quantization: TensorQuantization
}

/// One entry of the frame table, as stored.
public struct FrameRecord: Sendable, Equatable {
    /// Absolute file offset of the stored bytes (a multiple of 64, inside the data section).
    public var fileOffset: UInt64
    public var storedLength: UInt64
    /// Offset of the frame's raw bytes in the raw data stream (a multiple of 64).
    public var rawOffset: UInt64
    public var rawLength: UInt64
    /// XXH64 of the raw (decompressed, unfiltered) bytes.
    public var rawChecksum: UInt64
    /// XXH64 of the stored bytes as they are in the file.
    public var storedChecksum: UInt64
    public var codec: FrameCodec
    public var filter: FrameFilter
    /// Element size used by the filter (1 when none).
    public var elementSize: Int
}

enum TensorDirectory {
    static func encode(_ records: [TensorRecord], indexOf: [String: Int]) throws -> [UInt8] {
        var w = ByteWriter()
        w.u32(records.count)
        for t in records {
            var e = ByteWriter()
            e.string(t.name)
            e.i32(t.dtype.rawValue)
            e.u32(t.shape.count)
            for d in t.shape { e.i64(Int64(d)) }
            e.u64(t.dataOffset)
            e.u64(t.byteLength)
            e.u32(t.firstFrame)
            e.u32(t.frameCount)
            e.u8(t.quantization.schemeCode)
            e.u8(0); e.u8(0); e.u8(0)
            switch t.quantization {
            case .none:
                e.u32(0)
            case .int8Symmetric(let axis, let scales):
                guard let si = indexOf[scales] else {
                    throw ModelFileError.invalidInput("quantization of '\(t.name)' names scales '\(scales)', which is not an initializer")
                }
                e.u32(8)
                e.i32(Int32(axis))
                e.u32(si)
            }
            w.u32(e.bytes.count)
            w.raw(e.bytes)
        }
        return w.bytes
    }

    /// Decodes and validates entries on their own (cross-checks with frames come later).
    static func decode(_ reader: ByteReader, maxTotalRawBytes: UInt64) throws -> [TensorRecord] {
        var r = reader
        let path = r.path
        let n = try r.count("tensors", limit: ModelFileLimits.maxTensors, minItemBytes: 4 + 48)
        var records: [TensorRecord] = []
        records.reserveCapacity(n)
        var names = Set<String>()
        var pendingScales: [(Int, Int, Int)] = []   // (tensor, axis, scales index)
        var total: UInt64 = 0
        for i in 0..<n {
            let entryLength = try r.count("bytes of tensor entry \(i)", limit: Int(UInt32.max), minItemBytes: 1)
            let entryBytes = Array(try r.raw(entryLength, "tensor entry \(i)"))
            var e = ByteReader(bytes: entryBytes, path: path, section: "tensor directory",
                               base: r.fileOffset - UInt64(entryLength))
            let name = try e.string("name of tensor \(i)")
            let what = "tensor '\(name)'"
            guard names.insert(name).inserted else { throw e.malformed("\(what) appears twice") }
            let code = try e.i32("element type of \(what)")
            guard let dtype = DType(rawValue: code) else {
                throw e.malformed("\(what) has unsupported element type \(DType.onnxName(code: code))")
            }
            let rank = try e.count("dimensions of \(what)", limit: ModelFileLimits.maxRank, minItemBytes: 8)
            var shape: [Int] = []
            var elements: UInt64 = 1
            for _ in 0..<rank {
                let d = try e.i64("dimension of \(what)")
                guard d >= 0 else { throw e.malformed("\(what) has negative dimension \(d)") }
                let (m, o) = elements.multipliedReportingOverflow(by: UInt64(d))
                guard !o, m <= UInt64(ModelFileLimits.maxElementsPerTensor) else {
                    throw ModelFileError.limitExceeded(path: path, what: "elements of \(what)", value: o ? UInt64.max : m,
                                                       limit: UInt64(ModelFileLimits.maxElementsPerTensor))
                }
                elements = m
                shape.append(Int(d))
            }
            let dataOffset = try e.u64("data offset of \(what)")
            let byteLength = try e.u64("byte length of \(what)")
            guard byteLength == elements * UInt64(dtype.byteSize) else {
                throw e.malformed("\(what) declares \(byteLength) bytes, but \(dtype.name)\(shape) has \(elements * UInt64(dtype.byteSize))")
            }
            guard byteLength <= UInt64(ModelFileLimits.maxTensorBytes) else {
                throw ModelFileError.limitExceeded(path: path, what: "bytes of \(what)", value: byteLength,
                                                   limit: UInt64(ModelFileLimits.maxTensorBytes))
            }
            total += byteLength
            guard total <= maxTotalRawBytes else {
                throw ModelFileError.limitExceeded(path: path, what: "total bytes of tensors (reached at \(what))",
                                                   value: total, limit: maxTotalRawBytes)
            }
            guard dataOffset % UInt64(ModelFileFormat.alignment) == 0 else {
                throw e.malformed("data offset \(dataOffset) of \(what) is not a multiple of \(ModelFileFormat.alignment)")
            }
            let firstFrame = Int(try e.u32("first frame of \(what)"))
            let frameCount = Int(try e.u32("frame count of \(what)"))
            let scheme = try e.u8("quantization scheme of \(what)")
            try e.skip(3, "reserved bytes of \(what)")
            let payloadLength = try e.count("quantization bytes of \(what)", limit: ModelFileLimits.maxQuantizationPayload,
                                            minItemBytes: 1)
            var q = try ByteReader(bytes: Array(e.raw(payloadLength, "quantization of \(what)")), path: path,
                                   section: "tensor directory", base: e.fileOffset - UInt64(payloadLength))
            var quantization = TensorQuantization.none
            switch scheme {
            case 0:
                break
            case 1:
                let axis = Int(try q.i32("quantization axis of \(what)"))
                let scales = Int(try q.u32("scales of \(what)"))
                guard dtype == .int8 else { throw e.malformed("\(what) is int8-quantized but its type is \(dtype.name)") }
                guard axis >= 0, axis < shape.count else {
                    throw e.malformed("quantization axis \(axis) of \(what) is outside its rank \(shape.count)")
                }
                guard scales < n else { throw e.malformed("quantization scales of \(what) refer to tensor \(scales) of \(n)") }
                pendingScales.append((i, axis, scales))
                quantization = .int8Symmetric(axis: axis, scales: "")   // name filled below
            default:
                throw ModelFileError.unsupportedFeature(path: path, what: "quantization scheme \(scheme) of \(what)")
            }
            records.append(TensorRecord(name: name, dtype: dtype, shape: shape, dataOffset: dataOffset,
                                        byteLength: byteLength, firstFrame: firstFrame, frameCount: frameCount,
                                        quantization: quantization))
        }
        guard r.atEnd else { throw r.malformed("\(r.remaining) unexpected bytes after the last tensor") }
        for (i, axis, s) in pendingScales {
            let scales = records[s]
            let t = records[i]
            guard scales.dtype == .float32, scales.shape == [t.shape[axis]] else {
                throw ModelFileError.malformed(path: path, what: "tensor directory",
                                               detail: "scales '\(scales.name)' of tensor '\(t.name)' are \(scales.dtype.name)\(scales.shape), expected float32[\(t.shape[axis])]")
            }
            records[i].quantization = .int8Symmetric(axis: axis, scales: scales.name)
        }
        return records
    }
}

enum FrameTable {
    static func encode(_ frames: [FrameRecord]) -> [UInt8] {
        var w = ByteWriter()
        w.u32(frames.count)
        w.u32(ModelFileFormat.frameEntrySize)
        for f in frames {
            w.u64(f.fileOffset)
            w.u64(f.storedLength)
            w.u64(f.rawOffset)
            w.u64(f.rawLength)
            w.u64(f.rawChecksum)
            w.u64(f.storedChecksum)
            w.u8(f.codec.rawValue)
            w.u8(f.filter.rawValue)
            w.u8(UInt8(f.elementSize))
            for _ in 0..<5 { w.u8(0) }
        }
        return w.bytes
    }

    /// Decodes and validates frames against the data section: in order, aligned, inside it,
    /// not overlapping, raw offsets contiguous from 0.
    static func decode(_ reader: ByteReader, dataSection: FileRange) throws -> [FrameRecord] {
        var r = reader
        let path = r.path
        let n = Int(try r.u32("frame count"))
        let entrySize = Int(try r.u32("frame entry size"))
        guard n <= ModelFileLimits.maxFrames else {
            throw ModelFileError.limitExceeded(path: path, what: "frame count", value: UInt64(n), limit: UInt64(ModelFileLimits.maxFrames))
        }
        guard entrySize >= ModelFileFormat.frameEntrySize, entrySize <= ModelFileLimits.maxSectionEntrySize else {
            throw r.malformed("frame entry size \(entrySize) is not in \(ModelFileFormat.frameEntrySize)...\(ModelFileLimits.maxSectionEntrySize)")
        }
        guard n * entrySize == r.remaining else {
            throw r.malformed("\(n) frames of \(entrySize) bytes need \(n * entrySize) bytes, the section has \(r.remaining) left")
        }
        var frames: [FrameRecord] = []
        frames.reserveCapacity(n)
        var nextRaw: UInt64 = 0
        var nextFile = dataSection.offset
        let align = UInt64(ModelFileFormat.alignment)
        for i in 0..<n {
            let start = r.fileOffset
            let fileOffset = try r.u64("file offset of frame \(i)")
            let storedLength = try r.u64("stored length of frame \(i)")
            let rawOffset = try r.u64("raw offset of frame \(i)")
            let rawLength = try r.u64("raw length of frame \(i)")
            let rawChecksum = try r.u64("raw checksum of frame \(i)")
            let storedChecksum = try r.u64("stored checksum of frame \(i)")
            let codecCode = try r.u8("codec of frame \(i)")
            let filterCode = try r.u8("filter of frame \(i)")
            let elementSize = Int(try r.u8("element size of frame \(i)"))
            try r.skip(entrySize - 51, "rest of frame entry \(i)")
            guard let codec = FrameCodec(rawValue: codecCode) else {
                throw ModelFileError.unsupportedFeature(path: path, what: "codec \(codecCode) of frame \(i) (entry at file offset \(start))")
            }
            guard let filter = FrameFilter(rawValue: filterCode) else {
                throw ModelFileError.unsupportedFeature(path: path, what: "filter \(filterCode) of frame \(i) (entry at file offset \(start))")
            }
            guard elementSize >= 1, filter == .byteShuffle || elementSize == 1 else {
                throw r.malformed("frame \(i) has element size \(elementSize) with filter \(filter)")
            }
            guard rawLength >= 1, rawLength <= UInt64(ModelFileLimits.maxFrameRawBytes) else {
                throw ModelFileError.limitExceeded(path: path, what: "raw length of frame \(i)", value: rawLength,
                                                   limit: UInt64(ModelFileLimits.maxFrameRawBytes))
            }
            guard rawOffset == nextRaw else {
                throw r.malformed("frame \(i) starts at raw offset \(rawOffset), expected \(nextRaw) (frames must be contiguous)")
            }
            guard rawOffset % align == 0 else { throw r.malformed("raw offset \(rawOffset) of frame \(i) is not 64-aligned") }
            guard fileOffset % align == 0, fileOffset >= nextFile,
                  storedLength <= dataSection.end, fileOffset <= dataSection.end - storedLength else {
                throw ModelFileError.outOfRange(path: path, what: "stored bytes of frame \(i)", offset: fileOffset,
                                                length: storedLength,
                                                bound: "the data section [\(dataSection.offset), \(dataSection.end)) after frame \(i - 1), 64-aligned")
            }
            guard storedLength >= 1 else { throw r.malformed("frame \(i) stores no bytes") }
            if codec == .stored, storedLength != rawLength {
                throw r.malformed("stored frame \(i) has \(storedLength) stored bytes but \(rawLength) raw bytes")
            }
            nextRaw = rawOffset + rawLength
            nextFile = fileOffset + storedLength
            frames.append(FrameRecord(fileOffset: fileOffset, storedLength: storedLength, rawOffset: rawOffset,
                                      rawLength: rawLength, rawChecksum: rawChecksum, storedChecksum: storedChecksum,
                                      codec: codec, filter: filter, elementSize: elementSize))
        }
        return frames
    }
}

/// A byte range of the file, `[offset, end)`.
struct FileRange {
    var offset: UInt64
    var end: UInt64
}
