import Foundation

/// EXIF orientation (TIFF tag 0x0112) of a JPEG, read from its APP1 "Exif" segment.
///
/// The parser is bounded: it walks the JPEG marker segments up to the first SOS (start of
/// scan), reads at most the APP1 segment's own bytes, checks every offset against the segment's
/// length, and gives up (returns `nil`) on anything malformed instead of failing the decode.
public enum EXIFOrientation {
    /// The orientation value 1...8, or `nil` when the JPEG carries no (valid) one.
    public static func read(jpeg bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return nil }
        var i = 2
        var segments = 0
        while i + 4 <= bytes.count, segments < 1000 {
            guard bytes[i] == 0xFF else { return nil }
            var marker = bytes[i + 1]
            // fill bytes: FF FF ... FF xx
            var j = i + 1
            while marker == 0xFF, j + 1 < bytes.count { j += 1; marker = bytes[j] }
            i = j + 1
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { continue }
            if marker == 0xDA || marker == 0xD9 { return nil }   // start of scan / end of image
            guard i + 2 <= bytes.count else { return nil }
            let length = Int(bytes[i]) << 8 | Int(bytes[i + 1])
            guard length >= 2, i + length <= bytes.count else { return nil }
            if marker == 0xE1, length >= 2 + 6 + 8 {
                let start = i + 2
                if Array(bytes[start..<(start + 6)]) == Array("Exif\0\0".utf8),
                   let o = orientation(tiff: bytes[(start + 6)..<(i + length)]) {
                    return o
                }
            }
            i += length
            segments += 1
        }
        return nil
    }

    /// The orientation in a TIFF structure (the payload of an APP1 Exif segment after "Exif\0\0").
    static func orientation(tiff slice: ArraySlice<UInt8>) -> Int? {
        let t = Array(slice)
        guard t.count >= 8 else { return nil }
        let little: Bool
        switch (t[0], t[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, o + 2 <= t.count else { return nil }
            return little ? Int(t[o]) | Int(t[o + 1]) << 8 : Int(t[o]) << 8 | Int(t[o + 1])
        }
        func u32(_ o: Int) -> Int? {
            guard o >= 0, o + 4 <= t.count else { return nil }
            let b = (Int(t[o]), Int(t[o + 1]), Int(t[o + 2]), Int(t[o + 3]))
            return little ? b.0 | b.1 << 8 | b.2 << 16 | b.3 << 24 : b.0 << 24 | b.1 << 16 | b.2 << 8 | b.3
        }
        guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd) else { return nil }
        for e in 0..<min(count, 512) {
            let entry = ifd + 2 + 12 * e
            guard let tag = u16(entry), let type = u16(entry + 2), let n = u32(entry + 4) else { return nil }
            guard tag == 0x0112 else { continue }
            // SHORT (3), count 1: the value sits left-justified in the 4-byte value field.
            // Some writers use LONG (4); accept it too.
            let value: Int?
            switch (type, n) {
            case (3, 1): value = u16(entry + 8)
            case (4, 1): value = u32(entry + 8)
            default: value = nil
            }
            if let v = value, (1...8).contains(v) { return v }
            return nil
        }
        return nil
    }
}

extension RGBImage {
    /// The image as it should be displayed given an EXIF orientation 1...8 (1 and out-of-range
    /// values return the image unchanged): 2 mirror horizontally, 3 rotate 180, 4 mirror
    /// vertically, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
    public func applyingEXIFOrientation(_ orientation: Int) -> RGBImage {
        guard (2...8).contains(orientation) else { return self }
        let w = width, h = height
        let swaps = orientation >= 5
        let ow = swaps ? h : w, oh = swaps ? w : h
        var out = [UInt8](repeating: 0, count: ow * oh * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<oh {
                    for x in 0..<ow {
                        let sx: Int, sy: Int
                        switch orientation {
                        case 2: sx = w - 1 - x; sy = y
                        case 3: sx = w - 1 - x; sy = h - 1 - y
                        case 4: sx = x; sy = h - 1 - y
                        case 5: sx = y; sy = x
                        case 6: sx = y; sy = h - 1 - x
                        case 7: sx = w - 1 - y; sy = h - 1 - x
                        default: sx = w - 1 - y; sy = x   // 8
                        }
                        let s = (sy * w + sx) * 3, d = (y * ow + x) * 3
                        dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return RGBImage(uncheckedWidth: ow, height: oh, pixels: out)
    }
}
