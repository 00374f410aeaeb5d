import CZlib
import Foundation

/// PNG encoding with zlib directly, the compressed stream cut in parts that the runtime's
/// worker pool deflates at once.
///
/// libpng's writer (which `PNGCodec` used) filters and deflates on one thread: 21 ms for the
/// swap's 256 x 256 result, about as long as the mask and the blend together. The file is the
/// same kind: 8-bit, non-interlaced, an sRGB chunk (as libpng's simplified writer adds), each
/// row filtered with libpng's default choice (the filter whose bytes, read as signed, have
/// the smallest absolute sum), zlib level 6. The parts are joined the way pigz joins them:
/// every part but the last ends on a byte boundary (`Z_SYNC_FLUSH`), each part after the
/// first starts from the previous 32 kB as its dictionary (matches may reach back into the
/// part before), and the Adler-32 checksums are combined, so the result is one ordinary zlib
/// stream that every decoder reads.
enum PNGWriter {
    /// Below this many filtered bytes one part is cheaper than starting threads.
    static let bytesPerPart = 64 << 10

    /// Encodes 8-bit pixels with `channels` 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA).
    static func encode(_ pixels: [UInt8], width: Int, height: Int, channels: Int,
                       threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws -> [UInt8] {
        precondition((1...4).contains(channels))
        let rowBytes = width * channels
        guard width > 0, height > 0, width <= 0x7FFF_FFFF / channels, height <= 0x7FFF_FFFF,
              pixels.count == rowBytes * height else {
            throw ImageError.invalidArgument("\(pixels.count) bytes for a \(width)x\(height)x\(channels) PNG")
        }
        let filtered = filter(pixels, rowBytes: rowBytes, height: height, bpp: channels)
        let zlib = try compress(filtered, parts: max(1, min(threads, filtered.count / bytesPerPart)))

        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        out.reserveCapacity(zlib.count + 64)
        var header: [UInt8] = []
        appendBE32(&header, UInt32(width))
        appendBE32(&header, UInt32(height))
        header += [8, [0, 4, 2, 6][channels - 1], 0, 0, 0]   // depth, colour type, deflate, filters, no interlace
        appendChunk(&out, "IHDR", header)
        appendChunk(&out, "sRGB", [0])                         // perceptual intent
        appendChunk(&out, "IDAT", zlib)
        appendChunk(&out, "IEND", [])
        return out
    }

    /// Each row as its filter byte and the filtered bytes, rows spread over the processors.
    static func filter(_ pixels: [UInt8], rowBytes n: Int, height: Int, bpp: Int) -> [UInt8] {
        let stride = n + 1
        return [UInt8](unsafeUninitializedCapacity: stride * height) { out, count in
            pixels.withUnsafeBufferPointer { px in
                let src = px.baseAddress!, dst = out.baseAddress!
                imageThreads.forRanges(height, minPerThread: max(1, 65536 / stride)) { rows in
                    // candidates for filters 1...4 of one row
                    let cand = UnsafeMutablePointer<UInt8>.allocate(capacity: 4 * n)
                    defer { cand.deallocate() }
                    for y in rows {
                        let cur = src + y * n
                        let prev: UnsafePointer<UInt8>? = y > 0 ? UnsafePointer(src + (y - 1) * n) : nil
                        filterRow(cur, prev: prev, count: n, bpp: bpp, into: cand)
                        var best = 0, bestSum = absSum(cur, n)
                        for f in 1...4 {
                            let s = absSum(cand + (f - 1) * n, n)
                            if s < bestSum { best = f; bestSum = s }
                        }
                        let row = dst + y * stride
                        row[0] = UInt8(best)
                        (row + 1).update(from: best == 0 ? cur : UnsafePointer(cand + (best - 1) * n), count: n)
                    }
                }
            }
            count = stride * height
        }
    }

    /// Sum over the bytes read as signed of their absolute values (libpng's heuristic).
    @inline(__always)
    static func absSum(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int {
        var s = 0
        for i in 0..<n { let v = Int(p[i]); s += v < 128 ? v : 256 - v }
        return s
    }

    /// Filters Sub, Up, Average and Paeth of one row into out[0..<n], out[n..<2n], ...
    /// (PNG specification, section 9); `prev` nil is the first row (a row of zeros above).
    static func filterRow(_ cur: UnsafePointer<UInt8>, prev: UnsafePointer<UInt8>?, count n: Int, bpp: Int,
                          into out: UnsafeMutablePointer<UInt8>) {
        let sub = out, up = out + n, avg = out + 2 * n, paeth = out + 3 * n
        for i in 0..<n {
            let x = cur[i]
            let a = i >= bpp ? cur[i - bpp] : 0
            let b = prev?[i] ?? 0
            let c = i >= bpp ? (prev?[i - bpp] ?? 0) : 0
            sub[i] = x &- a
            up[i] = x &- b
            avg[i] = x &- UInt8((Int(a) + Int(b)) >> 1)
            let p = Int(a) + Int(b) - Int(c)
            let pa = abs(p - Int(a)), pb = abs(p - Int(b)), pc = abs(p - Int(c))
            paeth[i] = x &- (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)
        }
    }

    /// One zlib stream (level 6) of `data`, deflated in `parts` pieces at once.
    static func compress(_ data: [UInt8], parts: Int) throws -> [UInt8] {
        let n = data.count
        let bounds = (0...parts).map { n * $0 / parts }
        // Each part writes only its own slot.
        let results = UnsafeMutableBufferPointer<(bytes: [UInt8], adler: UInt, code: Int32)>.allocate(capacity: parts)
        results.initialize(repeating: ([], 0, Z_OK))
        defer { results.deinitialize(); results.deallocate() }
        data.withUnsafeBufferPointer { buf in
            let base = buf.baseAddress!
            imageThreads.forEach(parts) { k in
                results[k] = deflatePart(base, from: bounds[k], to: bounds[k + 1], last: k == parts - 1)
            }
        }
        if let bad = results.first(where: { $0.code != Z_OK }) {
            throw ImageError.writeFailed(file: "<memory>", reason: "zlib deflate failed (code \(bad.code))")
        }
        var adler = adler32(0, nil, 0)
        for k in 0..<parts { adler = adler32_combine(adler, results[k].adler, off_t(bounds[k + 1] - bounds[k])) }
        var z: [UInt8] = [0x78, 0x9C]   // deflate, 32 kB window, default level, no dictionary
        z.reserveCapacity(results.reduce(6) { $0 + $1.bytes.count })
        for r in results { z += r.bytes }
        appendBE32(&z, UInt32(truncatingIfNeeded: adler))
        return z
    }

    /// Raw deflate of base[lo..<hi], primed with the 32 kB before lo; ends on a byte boundary
    /// (`Z_SYNC_FLUSH`) unless `last`. Returns the bytes, the part's Adler-32 and Z_OK or the
    /// zlib error.
    static func deflatePart(_ base: UnsafePointer<UInt8>, from lo: Int, to hi: Int, last: Bool) -> (bytes: [UInt8], adler: UInt, code: Int32) {
        var stream = z_stream()
        var rc = deflateInit2_(&stream, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { return ([], 0, rc) }
        defer { deflateEnd(&stream) }
        if lo > 0 {
            let start = max(0, lo - 32768)
            rc = deflateSetDictionary(&stream, base + start, UInt32(lo - start))
            guard rc == Z_OK else { return ([], 0, rc) }
        }
        let capacity = Int(deflateBound(&stream, UInt(hi - lo))) + 64
        var out = [UInt8](repeating: 0, count: capacity)
        out.withUnsafeMutableBufferPointer { o in
            stream.next_in = UnsafeMutablePointer(mutating: base + lo)
            stream.avail_in = UInt32(hi - lo)
            stream.next_out = o.baseAddress!
            stream.avail_out = UInt32(capacity)
            rc = deflate(&stream, last ? Z_FINISH : Z_SYNC_FLUSH)
        }
        let done = last ? rc == Z_STREAM_END : (rc == Z_OK && stream.avail_in == 0 && stream.avail_out > 0)
        guard done else { return ([], 0, rc == Z_OK || rc == Z_STREAM_END ? Z_BUF_ERROR : rc) }
        out.removeLast(Int(stream.avail_out))
        return (out, adler32(adler32(0, nil, 0), base + lo, UInt32(hi - lo)), Z_OK)   // seed 1, as zlib starts
    }

    static func appendBE32(_ a: inout [UInt8], _ v: UInt32) {
        a += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }

    static func appendChunk(_ out: inout [UInt8], _ type: String, _ body: [UInt8]) {
        appendBE32(&out, UInt32(body.count))
        let typeBytes = Array(type.utf8)
        out += typeBytes
        out += body
        var crc = crc32(0, typeBytes, 4)
        crc = body.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, UInt32($0.count)) }
        appendBE32(&out, UInt32(truncatingIfNeeded: crc))
    }
}
