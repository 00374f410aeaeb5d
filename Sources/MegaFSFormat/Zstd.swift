import CZstd

/// Thin wrappers over libzstd: one context per worker thread, reused across frames.
final class ZstdCompressor {
    private let cctx: OpaquePointer

    init(level: Int, checksum: Bool = false) throws {
        guard let c = ZSTD_createCCtx() else { throw ModelFileError.invalidInput("cannot create a zstd context") }
        cctx = c
        try check(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, Int32(level)), "set level \(level)")
        try check(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1), "set content size flag")
        try check(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, checksum ? 1 : 0), "set checksum flag")
    }

    deinit { ZSTD_freeCCtx(cctx) }

    static func bound(_ n: Int) -> Int { ZSTD_compressBound(n) }

    /// Compresses `source` as one frame into `destination` (capacity at least `bound`); returns its size.
    func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        let r = ZSTD_compress2(cctx, destination.baseAddress, destination.count, source.baseAddress, source.count)
        try check(r, "compress")
        return r
    }

    private func check(_ r: Int, _ what: String) throws {
        if ZSTD_isError(r) != 0 {
            throw ModelFileError.invalidInput("zstd \(what): \(String(cString: ZSTD_getErrorName(r)))")
        }
    }
}

final class ZstdDecompressor {
    private let dctx: OpaquePointer
    static let contentSizeUnknown = UInt64.max
    static let contentSizeError = UInt64.max - 1

    init() {
        dctx = ZSTD_createDCtx()!
        // Frames hold at most ModelFileLimits.maxFrameRawBytes. One-shot decoding (below) writes
        // into the caller's buffer and allocates no window whatever a frame declares; this caps
        // the window should a streaming decoder ever be used.
        ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, 28)
    }

    deinit { ZSTD_freeDCtx(dctx) }

    /// The content size a frame header declares (or `contentSizeUnknown`/`contentSizeError`).
    static func declaredContentSize(_ header: UnsafeRawBufferPointer) -> UInt64 {
        ZSTD_getFrameContentSize(header.baseAddress, header.count)
    }

    /// Decodes exactly one zstd frame that fills `source` and whose declared content size is
    /// `destination.count`, into `destination`. Returns nil on success, else what is wrong.
    func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> String? {
        let declared = ZSTD_getFrameContentSize(source.baseAddress, source.count)
        if declared == Self.contentSizeError { return "not a valid zstd frame header" }
        if declared == Self.contentSizeUnknown { return "zstd frame does not declare its content size" }
        if declared != UInt64(destination.count) {
            return "zstd frame declares \(declared) decompressed bytes, the frame table says \(destination.count)"
        }
        let frameSize = ZSTD_findFrameCompressedSize(source.baseAddress, source.count)
        if ZSTD_isError(frameSize) != 0 { return "zstd: \(String(cString: ZSTD_getErrorName(frameSize)))" }
        if frameSize != source.count {
            return "zstd frame is \(frameSize) bytes but \(source.count) are stored (trailing bytes)"
        }
        let r = ZSTD_decompressDCtx(dctx, destination.baseAddress, destination.count, source.baseAddress, source.count)
        if ZSTD_isError(r) != 0 { return "zstd: \(String(cString: ZSTD_getErrorName(r)))" }
        if r != destination.count { return "zstd frame decoded to \(r) bytes, expected \(destination.count)" }
        return nil
    }
}
