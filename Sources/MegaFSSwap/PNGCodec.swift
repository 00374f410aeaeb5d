import CPNG
import Foundation

/// PNG reading and writing with libpng's simplified API (`png_image_*`), which reports errors
/// through return codes (libpng's `setjmp`/`longjmp` stays inside libpng's own C frames), so
/// hostile bytes cannot unwind through Swift frames.
enum PNGCodec {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The IHDR facts and the colour-related chunks before the first IDAT, parsed by hand.
    struct Header {
        var width: Int
        var height: Int
        var bitDepth: Int
        var colorType: Int
        /// gAMA chunk value (gamma x 100000), if any.
        var gamma: Int?
        var hasSRGB = false
        var hasICCP = false

        var colorTypeName: String {
            switch colorType {
            case 0: return "greyscale"
            case 2: return "RGB"
            case 3: return "palette"
            case 4: return "greyscale+alpha"
            case 6: return "RGBA"
            default: return "colour type \(colorType)"
            }
        }
    }

    /// Parses the signature and IHDR (which must be the first chunk), then walks the chunks up
    /// to the first IDAT for gAMA / sRGB / iCCP. Never reads past `bytes`.
    static func header(_ bytes: [UInt8], name: String) throws -> Header {
        guard bytes.count >= 8 + 8 + 13 else {
            throw ImageError.truncated(file: name, format: .png, detail: "\(bytes.count) bytes, shorter than the PNG signature and IHDR chunk")
        }
        func u32(_ o: Int) -> Int { Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3]) }
        guard Array(bytes[12..<16]) == Array("IHDR".utf8), u32(8) == 13 else {
            throw ImageError.corrupt(file: name, format: .png, detail: "the first chunk is not a 13-byte IHDR")
        }
        let w = u32(16), h = u32(20)
        guard w > 0, h > 0, w <= 0x7FFF_FFFF, h <= 0x7FFF_FFFF else {
            throw ImageError.corrupt(file: name, format: .png, detail: "IHDR size \(w)x\(h) is invalid")
        }
        var header = Header(width: w, height: h, bitDepth: Int(bytes[24]), colorType: Int(bytes[25]))
        var i = 8
        var chunks = 0
        while i + 8 <= bytes.count, chunks < 10_000 {
            let length = u32(i)
            let type = String(decoding: bytes[(i + 4)..<(i + 8)], as: UTF8.self)
            if type == "IDAT" || type == "IEND" { break }
            guard length <= bytes.count - i - 12 else { break }
            switch type {
            case "gAMA" where length == 4: header.gamma = u32(i + 8)
            case "sRGB": header.hasSRGB = true
            case "iCCP": header.hasICCP = true
            default: break
            }
            i += 12 + length
            chunks += 1
        }
        return header
    }

    private static func message(_ image: inout png_image) -> String {
        let text = withUnsafeBytes(of: &image.message) { raw -> String in
            let bytes = raw.bindMemory(to: UInt8.self)
            let end = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[0..<end], as: UTF8.self)
        }
        return text.isEmpty ? "libpng reported an error" : text
    }

    private static func failure(_ message: String, name: String) -> ImageError {
        let m = message.lowercased()
        if m.contains("not enough") || m.contains("truncated") || m.contains("unexpected end")
            || m.contains("read beyond") || m.contains("too short") || m.contains("eof") {
            return .truncated(file: name, format: .png, detail: message)
        }
        return .corrupt(file: name, format: .png, detail: message)
    }

    /// Decoded bytes in one of libpng's simplified formats (0 grey, 1 grey+alpha, 2 RGB,
    /// 3 RGBA), 8 bits per channel, sRGB-encoded.
    struct Raw {
        var width: Int
        var height: Int
        var channels: Int
        var bytes: [UInt8]
        var header: Header
    }

    /// Decodes to `format`, or when `format` is nil to grey / RGB, with an alpha channel when
    /// the file has one (alpha in the colour type or a tRNS chunk).
    static func decodeRaw(_ bytes: [UInt8], name: String, maxPixels: Int, format requested: UInt32? = nil) throws -> Raw {
        let h = try header(bytes, name: name)
        guard h.width.multipliedReportingOverflow(by: h.height).partialValue <= maxPixels,
              h.width <= maxPixels, h.height <= maxPixels else {
            throw ImageError.tooLarge(file: name, detail: "the PNG header announces \(h.width)x\(h.height) pixels, over the limit of \(maxPixels)")
        }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        let begun = bytes.withUnsafeBytes { raw in
            png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count)
        }
        guard begun != 0 else { throw failure(message(&image), name: name) }
        guard Int(image.width) == h.width, Int(image.height) == h.height else {
            throw ImageError.corrupt(file: name, format: .png, detail: "libpng read a size of \(image.width)x\(image.height), the IHDR says \(h.width)x\(h.height)")
        }
        let hasAlpha = image.format & 1 != 0
        let format = requested ?? ((image.format & 2 != 0 ? 2 : 0) | (hasAlpha ? 1 : 0))
        image.format = format
        image.flags = 0
        let channels = Int(format & 3) + 1
        let count = h.width * h.height * channels
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBytes { dst in
            png_image_finish_read(&image, nil, dst.baseAddress, 0, nil)
        }
        guard ok != 0 else { throw failure(message(&image), name: name) }
        return Raw(width: h.width, height: h.height, channels: channels, bytes: out, header: h)
    }

    /// Decodes to 8-bit RGB. Greyscale is replicated to the three channels; an alpha channel
    /// (RGBA, grey+alpha, palette with tRNS) is composited on white in the 8-bit sRGB-encoded
    /// values: c' = round((c*a + 255*(255-a)) / 255). 16-bit files are reduced to 8 bits by
    /// libpng; a gAMA chunk that is not sRGB-like makes libpng convert the values to sRGB.
    static func decode(_ bytes: [UInt8], name: String, maxPixels: Int) throws -> RGBImage {
        let raw = try decodeRaw(bytes, name: name, maxPixels: maxPixels)
        let n = raw.width * raw.height
        var rgb = [UInt8](repeating: 0, count: n * 3)
        raw.bytes.withUnsafeBufferPointer { s in
            rgb.withUnsafeMutableBufferPointer { d in
                func over(_ c: UInt8, _ a: UInt8) -> UInt8 {
                    let v = Int(c) * Int(a) + 255 * (255 - Int(a))
                    return UInt8((v + 127) / 255)
                }
                switch raw.channels {
                case 1:
                    for i in 0..<n { let g = s[i]; d[3 * i] = g; d[3 * i + 1] = g; d[3 * i + 2] = g }
                case 2:
                    for i in 0..<n { let g = over(s[2 * i], s[2 * i + 1]); d[3 * i] = g; d[3 * i + 1] = g; d[3 * i + 2] = g }
                case 3:
                    for i in 0..<(3 * n) { d[i] = s[i] }
                default:
                    for i in 0..<n {
                        let a = s[4 * i + 3]
                        d[3 * i] = over(s[4 * i], a); d[3 * i + 1] = over(s[4 * i + 1], a); d[3 * i + 2] = over(s[4 * i + 2], a)
                    }
                }
            }
        }
        return RGBImage(uncheckedWidth: raw.width, height: raw.height, pixels: rgb)
    }
}
