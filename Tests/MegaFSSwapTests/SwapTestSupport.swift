import Foundation
import MegaFSGraph
@testable import MegaFSSwap

/// The repository root, found from this file's path (Tests/MegaFSSwapTests/<file>).
let swapRepoRoot: String = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
}()

/// The "chain" entry of fixtures/manifest.json, or nil when the fixtures are not there.
struct ChainFixture {
    let root: String
    let entry: [String: Any]
    let files: [String: [String: Any]]

    static func load() -> ChainFixture? {
        let root = swapRepoRoot + "/fixtures"
        guard let data = FileManager.default.contents(atPath: root + "/manifest.json"),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let chain = json["chain"] as? [String: Any],
              let files = chain["files"] as? [String: [String: Any]] else { return nil }
        return ChainFixture(root: root, entry: chain, files: files)
    }

    /// The tensor of file `key`, nil when the manifest does not list it or the file is missing.
    func tensor(_ key: String) -> Tensor? {
        guard let rel = files[key]?["file"] as? String else { return nil }
        let path = root + "/" + rel
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try? NPY.read(path: path)
    }

    var generatorSize: Int? { entry["generator_size"] as? Int }
}

/// Deterministic generator for test data (SplitMix64).
struct SeededRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A smooth colourful test picture (compresses well as JPEG, round-trips closely).
func gradientImage(width: Int, height: Int) -> RGBImage {
    var img = RGBImage(width: width, height: height)
    for y in 0..<height {
        for x in 0..<width {
            img[x, y] = (UInt8(x * 255 / max(width - 1, 1)), UInt8(y * 255 / max(height - 1, 1)),
                         UInt8((x + y) * 127 / max(width + height - 2, 1)))
        }
    }
    return img
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "\(a.count) vs \(b.count)")
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return m
}

/// Inserts an APP1 Exif segment (TIFF with one IFD0 entry: Orientation) right after SOI.
func jpegWithOrientation(_ jpeg: [UInt8], orientation: UInt16, bigEndian: Bool = false) -> [UInt8] {
    func u16(_ v: UInt16) -> [UInt8] { bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)] }
    func u32(_ v: UInt32) -> [UInt8] {
        let b = [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)]
        return bigEndian ? b.reversed() : b
    }
    var tiff: [UInt8] = bigEndian ? [0x4D, 0x4D] : [0x49, 0x49]
    tiff += u16(42) + u32(8)                      // IFD0 right after the header
    tiff += u16(2)                                // two entries: an unrelated one, then Orientation
    tiff += u16(0x010F) + u16(2) + u32(4) + u32(0) // Make (ASCII), offset 0: ignored
    tiff += u16(0x0112) + u16(3) + u32(1) + u16(orientation) + [0, 0]
    tiff += u32(0)                                // no next IFD
    let payload = Array("Exif\0\0".utf8) + tiff
    let length = payload.count + 2
    let segment: [UInt8] = [0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + payload
    return [0xFF, 0xD8] + segment + Array(jpeg[2...])
}

/// A PNG without the chunks of the given types (CRCs of the others are kept as they are).
func pngRemovingChunks(_ png: [UInt8], types: Set<String>) -> [UInt8] {
    var out = Array(png[0..<8])
    var i = 8
    while i + 12 <= png.count {
        let length = Int(png[i]) << 24 | Int(png[i + 1]) << 16 | Int(png[i + 2]) << 8 | Int(png[i + 3])
        let type = String(decoding: png[(i + 4)..<(i + 8)], as: UTF8.self)
        let end = min(png.count, i + 12 + length)
        if !types.contains(type) { out += png[i..<end] }
        i = end
    }
    return out
}

/// CPU time of the whole process (all threads), for timings on a loaded machine.
func processCPUNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}
