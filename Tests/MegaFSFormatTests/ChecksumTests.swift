import CZstd
import Foundation
import Testing
@testable import MegaFSFormat

@Suite struct XXH64Tests {
    @Test func knownVectors() {
        #expect(XXH64.hash(Array("".utf8)) == 0xEF46_DB37_51D8_E999)
        #expect(XXH64.hash(Array("a".utf8)) == 15_154_266_338_359_012_955)
        #expect(XXH64.hash(Array("abc".utf8)) == 0x44BC_2CF5_AD77_0999)
        #expect(XXH64.hash(Array("a".utf8), seed: 1) == 16_051_599_287_423_682_246)
        #expect(XXH64.hash(Array("abc".utf8), seed: 1) != XXH64.hash(Array("abc".utf8)))
    }

    /// zstd's frame checksum is the low 32 bits of XXH64 (seed 0) of the content: compare
    /// against libzstd's own implementation at every length class (tail paths, 32-byte stripes).
    @Test func agreesWithZstdFrameChecksum() throws {
        var rng = SplitMix(state: 1)
        let compressor = try ZstdCompressor(level: 1, checksum: true)
        for n in [0, 1, 3, 4, 7, 8, 15, 31, 32, 33, 63, 64, 100, 1000, 4099, 65_536 + 13] {
            let data = rng.bytes(n)
            var out = [UInt8](repeating: 0, count: ZstdCompressor.bound(n))
            let size = try data.withUnsafeBytes { src in
                try out.withUnsafeMutableBytes { try compressor.compress(src, into: $0) }
            }
            let zstdSum = le(Array(out[size - 4..<size]), 0, UInt32.self)
            #expect(UInt32(truncatingIfNeeded: XXH64.hash(data)) == zstdSum, "length \(n)")
        }
    }
}

@Suite struct SHA256Tests {
    @Test func knownVectors() {
        #expect(SHA256.hash([UInt8]()).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hash(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hex
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func millionAsInUnevenPieces() {
        var h = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 997)
        var left = 1_000_000
        while left > 0 {
            let n = min(left, chunk.count - left % 7)   // uneven pieces across block boundaries
            chunk.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            left -= n
        }
        #expect(h.finalize().hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func paddingBoundaries() {
        // Lengths around the 55/56/64-byte padding boundaries, one-shot vs byte-at-a-time.
        var rng = SplitMix(state: 3)
        for n in [55, 56, 57, 63, 64, 65, 119, 120, 128] {
            let data = rng.bytes(n)
            var h = SHA256()
            for b in data { h.update([b]) }
            #expect(h.finalize() == SHA256.hash(data), "length \(n)")
        }
    }

    @Test func fileInChunks() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        var rng = SplitMix(state: 9)
        let data = rng.bytes(10_000)
        try writeBytes(data, to: dir.file("f.bin"))
        for chunk in [1, 63, 64, 1000, 1 << 20] {
            #expect(try SHA256.hashFile(atPath: dir.file("f.bin"), chunkSize: chunk) == SHA256.hash(data))
        }
        try writeBytes([], to: dir.file("empty"))
        #expect(try SHA256.hashFile(atPath: dir.file("empty")).hex.hasPrefix("e3b0c442"))
        expectModelError({ _ = try SHA256.hashFile(atPath: dir.file("missing")) }) {
            if case .io = $0 { return true } else { return false }
        }
    }
}

@Suite struct ByteShuffleTests {
    @Test func layout() {
        let src: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]   // two 4-byte elements + 3 tail bytes
        var dst = [UInt8](repeating: 0, count: src.count)
        src.withUnsafeBytes { s in dst.withUnsafeMutableBytes { ByteShuffle.shuffle(s, into: $0, elementSize: 4) } }
        #expect(dst == [1, 5, 2, 6, 3, 7, 4, 8, 9, 10, 11])
    }

    @Test func roundTripEveryElementSize() {
        var rng = SplitMix(state: 5)
        for es in 1...9 {
            for n in [0, 1, es - 1, es, 3 * es + 1, 1000] where n >= 0 {
                let src = rng.bytes(n)
                var mid = [UInt8](repeating: 0, count: n), back = [UInt8](repeating: 0, count: n)
                src.withUnsafeBytes { s in mid.withUnsafeMutableBytes { ByteShuffle.shuffle(s, into: $0, elementSize: es) } }
                mid.withUnsafeBytes { s in back.withUnsafeMutableBytes { ByteShuffle.unshuffle(s, into: $0, elementSize: es) } }
                #expect(back == src, "element size \(es), \(n) bytes")
                if es > 1 && n >= 2 * es && n % es == 0 { #expect(mid[1] == src[es]) }
            }
        }
    }
}
