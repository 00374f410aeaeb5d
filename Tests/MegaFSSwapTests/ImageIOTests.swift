import CZlib
import Foundation
import Testing
@testable import MegaFSSwap

@Suite struct ImageIOTests {
    @Test func pngRoundTripIsExact() throws {
        let img = gradientImage(width: 37, height: 23)
        let png = try ImageIO.encodePNG(img)
        #expect(ImageFormat.detect(png) == .png)
        let back = try ImageIO.decode(png)
        #expect(back == img)
    }

    /// Our PNG writer against libpng's reader: every channel count, sizes that take one, two
    /// and three deflate parts, noisy and smooth content (so that rows pick different filters).
    @Test func pngWriterRoundTripsThroughLibpng() throws {
        var rng = SeededRNG(seed: 11)
        for (w, h) in [(1, 1), (5, 3), (257, 200), (300, 301)] {
            for channels in 1...4 {
                var px = [UInt8](repeating: 0, count: w * h * channels)
                for y in 0..<h {
                    for x in 0..<w {
                        for c in 0..<channels {
                            // smooth in the left half, noise in the right, a flat band at the top
                            let v = y < h / 8 ? 77 : x < w / 2 ? (x * 3 + y * 2 + c * 40) & 255 : Int.random(in: 0...255, using: &rng)
                            px[(y * w + x) * channels + c] = UInt8(v)
                        }
                    }
                }
                for threads in [1, 3] {
                    let png = try PNGWriter.encode(px, width: w, height: h, channels: channels, threads: threads)
                    let raw = try PNGCodec.decodeRaw(png, name: "test", maxPixels: 1 << 24)
                    #expect(raw.width == w && raw.height == h && raw.channels == channels, "\(w)x\(h)x\(channels)")
                    #expect(raw.bytes == px, "\(w)x\(h)x\(channels), \(threads) threads")
                }
                if w >= 257 {
                    let kinds = Set(PNGWriter.filter(px, rowBytes: w * channels, height: h, bpp: channels)
                        .enumerated().filter { $0.offset % (w * channels + 1) == 0 }.map(\.element))
                    #expect(kinds.count >= 2, "filters chosen: \(kinds)")
                }
            }
        }
    }

    /// The parts joined into one zlib stream inflate to the input, with one Adler-32, and cost
    /// little over one part.
    @Test func deflatePartsJoinIntoOneStream() throws {
        var rng = SeededRNG(seed: 5)
        let data: [UInt8] = (0..<400_000).map { i in i % 1000 < 500 ? UInt8(i % 7) : UInt8.random(in: 0...40, using: &rng) }
        let one = try PNGWriter.compress(data, parts: 1)
        for parts in [1, 2, 5] {
            let z = try PNGWriter.compress(data, parts: parts)
            var out = [UInt8](repeating: 0, count: data.count + 16)
            var len = UInt(out.count)
            let rc = out.withUnsafeMutableBufferPointer { o in
                z.withUnsafeBufferPointer { zi in uncompress(o.baseAddress!, &len, zi.baseAddress!, UInt(zi.count)) }
            }
            #expect(rc == Z_OK, "\(parts) parts: zlib \(rc)")
            #expect(Int(len) == data.count && Array(out.prefix(Int(len))) == data, "\(parts) parts")
            #expect(Double(z.count) <= Double(one.count) * 1.02, "\(parts) parts: \(z.count) against \(one.count) bytes")
        }
    }

    @Test func jpegRoundTripWithinTolerance() throws {
        let img = gradientImage(width: 64, height: 48)
        let jpeg = try ImageIO.encodeJPEG(img, quality: 95)
        #expect(ImageFormat.detect(jpeg) == .jpeg)
        let back = try ImageIO.decode(jpeg)
        #expect(back.width == 64 && back.height == 48)
        var worst = 0, total = 0
        for i in 0..<img.pixels.count {
            let d = abs(Int(img.pixels[i]) - Int(back.pixels[i]))
            worst = max(worst, d); total += d
        }
        #expect(worst <= 8)
        #expect(Double(total) / Double(img.pixels.count) < 2)
        // lower quality: smaller file
        let small = try ImageIO.encodeJPEG(img, quality: 20)
        #expect(small.count < jpeg.count)
        #expect(throws: ImageError.self) { try ImageIO.encodeJPEG(img, quality: 0) }
        #expect(throws: ImageError.self) { try ImageIO.encodeJPEG(img, quality: 101) }
    }

    @Test func greyPNGIsReplicated() throws {
        let grey: [UInt8] = (0..<12).map { UInt8($0 * 20) }
        let png = try ImageIO.encodeGrayPNG(grey, width: 4, height: 3)
        let img = try ImageIO.decode(png)
        #expect(img.width == 4 && img.height == 3)
        for i in 0..<12 { #expect(img.pixels[3 * i] == grey[i] && img.pixels[3 * i + 1] == grey[i] && img.pixels[3 * i + 2] == grey[i]) }
    }

    @Test func alphaIsCompositedOnWhite() throws {
        // RGBA: opaque red, transparent blue, half-transparent black
        let rgba: [UInt8] = [255, 0, 0, 255, 0, 0, 255, 0, 0, 0, 0, 128]
        let png = try PNGWriter.encode(rgba, width: 3, height: 1, channels: 4)
        let img = try ImageIO.decode(png)
        #expect(img[0, 0] == (255, 0, 0))
        #expect(img[1, 0] == (255, 255, 255))
        // 0*128 + 255*127 = 32385, /255 = 127
        #expect(img[2, 0] == (127, 127, 127))
        // grey+alpha
        let ga = try PNGWriter.encode([10, 255, 200, 0], width: 2, height: 1, channels: 2)
        let g = try ImageIO.decode(ga)
        #expect(g[0, 0] == (10, 10, 10))
        #expect(g[1, 0] == (255, 255, 255))
    }

    @Test func greyJPEGDecodesToRGB() throws {
        // A JPEG written from a grey-looking RGB image still decodes to 3 equal-ish channels.
        var img = RGBImage(width: 16, height: 16)
        for y in 0..<16 { for x in 0..<16 { let v = UInt8(x * 16); img[x, y] = (v, v, v) } }
        let back = try ImageIO.decode(try ImageIO.encodeJPEG(img, quality: 100))
        for i in 0..<(16 * 16) {
            let r = Int(back.pixels[3 * i]), g = Int(back.pixels[3 * i + 1]), b = Int(back.pixels[3 * i + 2])
            #expect(abs(r - g) <= 2 && abs(g - b) <= 2)
        }
    }

    @Test func writeAndReadFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("megafs-swap-io-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let img = gradientImage(width: 20, height: 10)
        try ImageIO.write(img, to: dir + "/a.png")
        try ImageIO.write(img, to: dir + "/a.JPG", jpegQuality: 90)
        #expect(try ImageIO.read(path: dir + "/a.png") == img)
        let j = try ImageIO.read(path: dir + "/a.JPG")
        #expect(j.width == 20 && j.height == 10)
        #expect(throws: ImageError.self) { try ImageIO.write(img, to: dir + "/a.bmp") }
    }

    @Test func errorsNameTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("megafs-swap-err-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = dir + "/missing.png"
        do { _ = try ImageIO.read(path: missing); Issue.record("no error") } catch let e as ImageError {
            guard case .unreadable = e else { Issue.record("wrong error \(e)"); return }
            #expect(e.description.contains("missing.png"))
        }
        _ = FileManager.default.createFile(atPath: dir + "/empty.jpg", contents: Data())
        do { _ = try ImageIO.read(path: dir + "/empty.jpg"); Issue.record("no error") } catch let e as ImageError {
            #expect(e == .empty(file: dir + "/empty.jpg"))
            #expect(e.description.contains("empty.jpg"))
        }
        _ = FileManager.default.createFile(atPath: dir + "/text.png", contents: Data("hello, not an image".utf8))
        do { _ = try ImageIO.read(path: dir + "/text.png"); Issue.record("no error") } catch let e as ImageError {
            #expect(e == .unknownFormat(file: dir + "/text.png"))
        }
        #expect(throws: ImageError.unreadable(file: dir, reason: "is a directory")) { try ImageIO.read(path: dir) }
        // file size limit, checked before reading
        let png = try ImageIO.encodePNG(gradientImage(width: 8, height: 8))
        try Data(png).write(to: URL(fileURLWithPath: dir + "/ok.png"))
        do { _ = try ImageIO.read(path: dir + "/ok.png", options: ImageDecodeOptions(maxFileBytes: 10)); Issue.record("no error") }
        catch let e as ImageError { guard case .tooLarge = e else { Issue.record("wrong error \(e)"); return } }
    }

    @Test func pixelLimitIsCheckedFromThePNGHeader() throws {
        // A PNG that is only a signature and an IHDR claiming 100000 x 100000 (no pixel data):
        // rejected as too large, not as truncated, so the check happens before decoding.
        var bytes = PNGCodec.signature
        bytes += [0, 0, 0, 13] + Array("IHDR".utf8)
        for v in [100_000, 100_000] { bytes += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
        bytes += [8, 2, 0, 0, 0] + [0, 0, 0, 0]   // 8-bit RGB; CRC not checked before the limit
        do { _ = try ImageIO.decode(bytes, name: "huge.png"); Issue.record("no error") } catch let e as ImageError {
            guard case .tooLarge(let f, let d) = e else { Issue.record("wrong error \(e)"); return }
            #expect(f == "huge.png")
            #expect(d.contains("100000x100000"))
        }
        // a real small image over a custom limit
        let png = try ImageIO.encodePNG(gradientImage(width: 16, height: 16))
        #expect(throws: ImageError.self) { try ImageIO.decode(png, options: ImageDecodeOptions(maxPixels: 255)) }
        #expect(try ImageIO.decode(png, options: ImageDecodeOptions(maxPixels: 256)).width == 16)
    }

    @Test func harmlessJPEGWarningIsTolerated() throws {
        let img = gradientImage(width: 16, height: 16)
        let jpeg = try ImageIO.encodeJPEG(img, quality: 90)
        #expect(Array(jpeg.suffix(2)) == [0xFF, 0xD9])
        // garbage between the scan and EOI: libjpeg warns "extraneous bytes before marker 0xd9"
        let extra = Array(jpeg.dropLast(2)) + [0x12, 0x34, 0x56] + [0xFF, 0xD9]
        #expect(try ImageIO.decode(extra) == ImageIO.decode(jpeg))
        #expect(JPEGCodec.tolerated(warning: "Corrupt JPEG data: 3 extraneous bytes before marker 0xd9"))
        #expect(!JPEGCodec.tolerated(warning: "Corrupt JPEG data: premature end of data segment"))
    }

    @Test func pixelLimitIsCheckedFromTheJPEGHeader() throws {
        var jpeg = try ImageIO.encodeJPEG(gradientImage(width: 16, height: 16), quality: 80)
        // patch the SOF0 frame size to 60000 x 60000 (3.6 gigapixels)
        guard let sof = (0..<(jpeg.count - 9)).first(where: { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 }) else {
            Issue.record("no SOF0"); return
        }
        jpeg[sof + 5] = 0xEA; jpeg[sof + 6] = 0x60; jpeg[sof + 7] = 0xEA; jpeg[sof + 8] = 0x60
        do { _ = try ImageIO.decode(jpeg, name: "huge.jpg"); Issue.record("no error") } catch let e as ImageError {
            guard case .tooLarge(let f, _) = e else { Issue.record("wrong error \(e)"); return }
            #expect(f == "huge.jpg")
        }
    }

    /// Every truncation of a small PNG and JPEG either throws an ImageError or (for a cut in
    /// trailing chunks) decodes to the right size; nothing crashes.
    @Test func truncationsNeverCrash() throws {
        let img = gradientImage(width: 24, height: 16)
        for (format, data) in [(ImageFormat.png, try ImageIO.encodePNG(img)), (.jpeg, try ImageIO.encodeJPEG(img, quality: 85))] {
            var thrown = 0
            for n in 0..<data.count {
                do {
                    let out = try ImageIO.decode(Array(data.prefix(n)), name: "cut-\(n)")
                    #expect(out.width == 24 && out.height == 16)
                } catch let e as ImageError {
                    thrown += 1
                    #expect(e.description.contains("cut-\(n)") || n == 0 || e == .unknownFormat(file: "cut-\(n)"))
                    if n > 40 {   // past the signature and header: truncated (or corrupt), with the format
                        switch e {
                        case .truncated(_, let f, _), .corrupt(_, let f, _): #expect(f == format)
                        default: Issue.record("cut at \(n) of \(format): \(e)")
                        }
                    }
                }
            }
            // all but (at most) the cuts in the last few bytes are errors
            #expect(thrown >= data.count - 16, "\(format): \(thrown) of \(data.count) truncations threw")
        }
    }

    @Test func randomByteFlipsNeverCrash() throws {
        let img = gradientImage(width: 24, height: 16)
        var rng = SeededRNG(seed: 42)
        for data in [try ImageIO.encodePNG(img), try ImageIO.encodeJPEG(img, quality: 85)] {
            for trial in 0..<400 {
                var d = data
                for _ in 0..<(1 + trial % 4) {
                    let i = Int.random(in: 0..<d.count, using: &rng)
                    d[i] = UInt8.random(in: 0...255, using: &rng)
                }
                do {
                    let out = try ImageIO.decode(d, options: ImageDecodeOptions(maxPixels: 1 << 20))
                    #expect(out.pixels.count == out.width * out.height * 3)
                } catch is ImageError {
                } catch {
                    Issue.record("unexpected error type \(error)")
                }
            }
        }
    }
}

@Suite struct EXIFTests {
    /// A 3x2 image with a distinct value per pixel.
    let image: RGBImage = {
        var img = RGBImage(width: 3, height: 2)
        for y in 0..<2 { for x in 0..<3 { img[x, y] = (UInt8(10 * y + x), 0, 0) } }
        return img
    }()

    /// Expected displayed images (rows of the red values), written out by hand from the EXIF
    /// definitions for the stored image [[0,1,2],[10,11,12]].
    let expected: [Int: [[UInt8]]] = [
        1: [[0, 1, 2], [10, 11, 12]],
        2: [[2, 1, 0], [12, 11, 10]],          // mirror horizontal
        3: [[12, 11, 10], [2, 1, 0]],          // rotate 180
        4: [[10, 11, 12], [0, 1, 2]],          // mirror vertical
        5: [[0, 10], [1, 11], [2, 12]],        // transpose
        6: [[10, 0], [11, 1], [12, 2]],        // rotate 90 clockwise
        7: [[12, 2], [11, 1], [10, 0]],        // transverse
        8: [[2, 12], [1, 11], [0, 10]],        // rotate 90 counter-clockwise
    ]

    @Test func allEightOrientations() {
        for o in 1...8 {
            let out = image.applyingEXIFOrientation(o)
            let rows = expected[o]!
            #expect(out.height == rows.count && out.width == rows[0].count, "orientation \(o)")
            for y in 0..<out.height { for x in 0..<out.width { #expect(out[x, y].r == rows[y][x], "orientation \(o) at \(x),\(y)") } }
        }
    }

    @Test func jpegWithOrientation6IsRotated() throws {
        // 32 wide x 16 high: left half red, right half blue.
        var img = RGBImage(width: 32, height: 16)
        for y in 0..<16 { for x in 0..<32 { img[x, y] = x < 16 ? (255, 0, 0) : (0, 0, 255) } }
        let plain = try ImageIO.encodeJPEG(img, quality: 95)
        for bigEndian in [false, true] {
            let tagged = jpegWithOrientation(plain, orientation: 6, bigEndian: bigEndian)
            #expect(EXIFOrientation.read(jpeg: tagged) == 6)
            let out = try ImageIO.decode(tagged)
            // rotated 90 clockwise: 16 wide x 32 high, the left (red) half on top
            #expect(out.width == 16 && out.height == 32)
            let top = out[8, 4], bottom = out[8, 27]
            #expect(top.r > 200 && top.b < 60)
            #expect(bottom.b > 200 && bottom.r < 60)
            // orientation ignored on request
            let raw = try ImageIO.decode(tagged, options: ImageDecodeOptions(applyEXIFOrientation: false))
            #expect(raw.width == 32 && raw.height == 16)
        }
        #expect(EXIFOrientation.read(jpeg: plain) == nil)
        #expect(EXIFOrientation.read(jpeg: jpegWithOrientation(plain, orientation: 9)) == nil)
    }

    @Test func malformedExifIsIgnored() throws {
        let plain = try ImageIO.encodeJPEG(gradientImage(width: 8, height: 8), quality: 90)
        let tagged = jpegWithOrientation(plain, orientation: 3)
        var rng = SeededRNG(seed: 7)
        // corrupt bytes inside the APP1 segment (offsets 4..<50): parse never crashes, decode works
        for _ in 0..<300 {
            var d = tagged
            let i = Int.random(in: 4..<50, using: &rng)
            d[i] = UInt8.random(in: 0...255, using: &rng)
            let o = EXIFOrientation.read(jpeg: d)
            #expect(o == nil || (1...8).contains(o!))
            _ = try? ImageIO.decode(d)
        }
        // a segment length running past the end
        #expect(EXIFOrientation.read(jpeg: [0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 0x45]) == nil)
    }
}

import CTurboJPEG

@Suite struct CMYKTests {
    /// TurboJPEG writes CMYK pixels as a YCCK JPEG; the decoder converts with R = C*K/255
    /// (Adobe's inverted convention: 255 means no ink).
    @Test func ycckJPEGDecodesToRGB() throws {
        let w = 16, h = 8
        var cmyk = [UInt8](repeating: 0, count: w * h * 4)
        for y in 0..<h { for x in 0..<w {
            let px: [UInt8] = x < 8 ? [255, 0, 0, 255] : [255, 255, 255, 128]
            for c in 0..<4 { cmyk[(y * w + x) * 4 + c] = px[c] }
        } }
        guard let handle = tjInitCompress() else { Issue.record("no TurboJPEG"); return }
        defer { tjDestroy(handle) }
        var buf: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let rc = cmyk.withUnsafeBufferPointer {
            tjCompress2(handle, $0.baseAddress, Int32(w), 0, Int32(h), Int32(TJPF_CMYK.rawValue), &buf, &size,
                        Int32(TJSAMP_444.rawValue), 95, 0)
        }
        #expect(rc == 0)
        guard let buf else { return }
        let jpeg = Array(UnsafeBufferPointer(start: buf, count: Int(size)))
        tjFree(buf)
        let img = try ImageIO.decode(jpeg)
        #expect(img.width == w && img.height == h)
        let red = img[3, 4], grey = img[12, 4]
        #expect(red.r > 240 && red.g < 15 && red.b < 15)
        #expect(abs(Int(grey.r) - 128) <= 6 && abs(Int(grey.g) - 128) <= 6 && abs(Int(grey.b) - 128) <= 6)
    }
}
