/// The Blosc-style byte-shuffle filter. For `n = count / elementSize` elements, byte `k` of
/// element `i` moves to `k * n + i`: all first bytes, then all second bytes, ... The
/// `count % elementSize` trailing bytes are copied unchanged to the end. For float32 weights
/// this puts the sign/exponent bytes (few distinct values) together, which zstd then
/// compresses well, while the low mantissa bytes stay noise.
public enum ByteShuffle {
    /// Writes the shuffled `source` into `destination` (same count, must not overlap).
    public static func shuffle(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer,
                               elementSize: Int) {
        precondition(destination.count >= source.count && elementSize >= 1)
        guard let src = source.baseAddress, let dst = destination.baseAddress, source.count > 0 else { return }
        let es = elementSize
        let n = source.count / es
        let tail = source.count - n * es
        switch es {
        case 1:
            dst.copyMemory(from: src, byteCount: source.count)
            return
        case 4:
            let d0 = dst.assumingMemoryBound(to: UInt8.self)
            let d1 = d0 + n, d2 = d0 + 2 * n, d3 = d0 + 3 * n
            for i in 0..<n {
                let v = UInt32(littleEndian: src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
                d0[i] = UInt8(truncatingIfNeeded: v)
                d1[i] = UInt8(truncatingIfNeeded: v >> 8)
                d2[i] = UInt8(truncatingIfNeeded: v >> 16)
                d3[i] = UInt8(truncatingIfNeeded: v >> 24)
            }
        case 2:
            let d0 = dst.assumingMemoryBound(to: UInt8.self)
            let d1 = d0 + n
            for i in 0..<n {
                let v = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
                d0[i] = UInt8(truncatingIfNeeded: v)
                d1[i] = UInt8(truncatingIfNeeded: v >> 8)
            }
        default:
            let s = src.assumingMemoryBound(to: UInt8.self)
            let d = dst.assumingMemoryBound(to: UInt8.self)
            for k in 0..<es {
                let out = d + k * n
                for i in 0..<n { out[i] = s[i * es + k] }
            }
        }
        if tail > 0 { (dst + n * es).copyMemory(from: src + n * es, byteCount: tail) }
    }

    /// Inverse of `shuffle`.
    public static func unshuffle(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer,
                                 elementSize: Int) {
        precondition(destination.count >= source.count && elementSize >= 1)
        guard let src = source.baseAddress, let dst = destination.baseAddress, source.count > 0 else { return }
        let es = elementSize
        let n = source.count / es
        let tail = source.count - n * es
        switch es {
        case 1:
            dst.copyMemory(from: src, byteCount: source.count)
            return
        case 4:
            let s0 = src.assumingMemoryBound(to: UInt8.self)
            let s1 = s0 + n, s2 = s0 + 2 * n, s3 = s0 + 3 * n
            for i in 0..<n {
                let v = UInt32(s0[i]) | UInt32(s1[i]) << 8 | UInt32(s2[i]) << 16 | UInt32(s3[i]) << 24
                dst.storeBytes(of: v.littleEndian, toByteOffset: i * 4, as: UInt32.self)
            }
        case 2:
            let s0 = src.assumingMemoryBound(to: UInt8.self)
            let s1 = s0 + n
            for i in 0..<n {
                let v = UInt16(s0[i]) | UInt16(s1[i]) << 8
                dst.storeBytes(of: v.littleEndian, toByteOffset: i * 2, as: UInt16.self)
            }
        default:
            let s = src.assumingMemoryBound(to: UInt8.self)
            let d = dst.assumingMemoryBound(to: UInt8.self)
            for k in 0..<es {
                let input = s + k * n
                for i in 0..<n { d[i * es + k] = input[i] }
            }
        }
        if tail > 0 { (dst + n * es).copyMemory(from: src + n * es, byteCount: tail) }
    }
}
