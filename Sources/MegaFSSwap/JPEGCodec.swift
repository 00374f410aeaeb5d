import CTurboJPEG
import Foundation

/// JPEG reading and writing with the TurboJPEG API of libjpeg-turbo (which handles libjpeg's
/// errors inside its own C frames and reports them through return codes).
enum JPEGCodec {
    private static func errorText(_ handle: tjhandle?) -> String {
        guard let cstr = tjGetErrorStr2(handle) else { return "TurboJPEG reported an error" }
        let s = String(cString: cstr)
        return s.isEmpty ? "TurboJPEG reported an error" : s
    }

    /// libjpeg warnings that leave the image intact (harmless quirks of some writers). Any other
    /// warning (damaged entropy-coded data, a missing end of file) makes the decode fail.
    static func tolerated(warning: String) -> Bool {
        let m = warning.lowercased()
        return m.contains("extraneous bytes before marker") || m.contains("jfif revision")
            || m.contains("unknown app") || m.contains("jfif extension") || m.contains("thumbnail")
    }

    private static func failure(_ message: String, name: String) -> ImageError {
        let m = message.lowercased()
        if m.contains("premature end of jpeg file") || m.contains("truncated") || m.contains("too short") {
            return .truncated(file: name, format: .jpeg, detail: message)
        }
        return .corrupt(file: name, format: .jpeg, detail: message)
    }

    /// Decodes to 8-bit RGB (libjpeg's default ISLOW DCT and fancy upsampling, as OpenCV's
    /// `imread`). Greyscale is replicated; CMYK/YCCK files are decoded to CMYK and converted
    /// with the Adobe (inverted) convention R = C*K/255. Progressive scans are limited to 500
    /// (TJFLAG_LIMITSCANS) against hostile files. libjpeg's warnings are errors (`truncated` for
    /// "premature end of JPEG file", `corrupt` for damaged data), except the harmless ones listed
    /// in `tolerated(warning:)` (e.g. extraneous bytes before a marker).
    /// When `applyOrientation`, the EXIF orientation is applied.
    static func decode(_ bytes: [UInt8], name: String, maxPixels: Int, applyOrientation: Bool) throws -> RGBImage {
        guard let handle = tjInitDecompress() else {
            throw ImageError.corrupt(file: name, format: .jpeg, detail: "cannot initialise TurboJPEG: \(errorText(nil))")
        }
        defer { tjDestroy(handle) }
        var w: Int32 = 0, h: Int32 = 0, subsamp: Int32 = 0, colorspace: Int32 = 0
        let headerOK = bytes.withUnsafeBufferPointer { buf in
            tjDecompressHeader3(handle, buf.baseAddress, UInt(buf.count), &w, &h, &subsamp, &colorspace)
        }
        guard headerOK == 0 else { throw failure(errorText(handle), name: name) }
        guard w > 0, h > 0 else {
            throw ImageError.corrupt(file: name, format: .jpeg, detail: "header size \(w)x\(h) is invalid")
        }
        let width = Int(w), height = Int(h)
        guard width * height <= maxPixels else {
            throw ImageError.tooLarge(file: name, detail: "the JPEG header announces \(width)x\(height) pixels, over the limit of \(maxPixels)")
        }
        let cmyk = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
        let channels = cmyk ? 4 : 3
        let pixelFormat = Int32(cmyk ? TJPF_CMYK.rawValue : TJPF_RGB.rawValue)
        var out = [UInt8](repeating: 0, count: width * height * channels)
        let flags = Int32(TJFLAG_LIMITSCANS) | Int32(TJFLAG_ACCURATEDCT)
        let rc = bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(handle, src.baseAddress, UInt(src.count), dst.baseAddress, w, 0, h, pixelFormat, flags)
            }
        }
        if rc != 0 {
            let text = errorText(handle)
            let fatal = tjGetErrorCode(handle) != Int32(TJERR_WARNING.rawValue)
            if fatal || !tolerated(warning: text) { throw failure(text, name: name) }
        }
        var image: RGBImage
        if cmyk {
            var rgb = [UInt8](repeating: 0, count: width * height * 3)
            for i in 0..<(width * height) {
                let k = Int(out[4 * i + 3])
                for c in 0..<3 { rgb[3 * i + c] = UInt8((Int(out[4 * i + c]) * k + 127) / 255) }
            }
            image = RGBImage(uncheckedWidth: width, height: height, pixels: rgb)
        } else {
            image = RGBImage(uncheckedWidth: width, height: height, pixels: out)
        }
        if applyOrientation, let o = EXIFOrientation.read(jpeg: bytes), o != 1 {
            image = image.applyingEXIFOrientation(o)
        }
        return image
    }

    /// Chroma subsampling of written JPEGs.
    enum Subsampling { case s444, s420 }

    static func encode(_ image: RGBImage, quality: Int, subsampling: Subsampling = .s444, name: String = "<memory>") throws -> [UInt8] {
        guard (1...100).contains(quality) else {
            throw ImageError.invalidArgument("JPEG quality \(quality) is not in 1...100")
        }
        guard image.width <= 65_535, image.height <= 65_535 else {
            throw ImageError.writeFailed(file: name, reason: "JPEG cannot hold \(image.width)x\(image.height) pixels (at most 65535 per side)")
        }
        guard let handle = tjInitCompress() else {
            throw ImageError.writeFailed(file: name, reason: "cannot initialise TurboJPEG: \(errorText(nil))")
        }
        defer { tjDestroy(handle) }
        var jpegBuf: UnsafeMutablePointer<UInt8>? = nil
        var jpegSize: UInt = 0
        defer { if let jpegBuf { tjFree(jpegBuf) } }
        let samp = Int32(subsampling == .s444 ? TJSAMP_444.rawValue : TJSAMP_420.rawValue)
        let rc = image.pixels.withUnsafeBufferPointer { src in
            tjCompress2(handle, src.baseAddress, Int32(image.width), 0, Int32(image.height),
                        Int32(TJPF_RGB.rawValue), &jpegBuf, &jpegSize, samp, Int32(quality),
                        Int32(TJFLAG_ACCURATEDCT))
        }
        guard rc == 0, let jpegBuf else { throw ImageError.writeFailed(file: name, reason: "JPEG encoder: \(errorText(handle))") }
        return Array(UnsafeBufferPointer(start: jpegBuf, count: Int(jpegSize)))
    }
}
