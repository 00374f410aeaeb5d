import Foundation

extension LabelMap {
    /// Reads a face-parsing label map from a PNG file: 8-bit greyscale, one CelebAMask-HQ label
    /// (0...18) per pixel. An 8-bit RGB PNG whose three channels are equal everywhere (a label
    /// map saved as a colour image, e.g. by `cv2.imwrite` of a 3-channel array) is accepted too.
    /// Rejected with `ImageError.invalidLabelMap`: JPEG (lossy), other bit depths or colour
    /// types (palette, alpha, 16-bit, 1/2/4-bit), RGB with unequal channels, values above 18,
    /// and a gAMA chunk that would make libpng rescale the values.
    public static func read(path: String, options: ImageDecodeOptions = ImageDecodeOptions()) throws -> LabelMap {
        let bytes = try ImageIO.readFile(path: path, maxBytes: options.maxFileBytes)
        return try decode(bytes, name: path, options: options)
    }

    /// Decodes label-map PNG bytes; see `read(path:options:)`.
    public static func decode(_ bytes: [UInt8], name: String = "<memory>",
                              options: ImageDecodeOptions = ImageDecodeOptions()) throws -> LabelMap {
        guard !bytes.isEmpty else { throw ImageError.empty(file: name) }
        switch ImageFormat.detect(bytes) {
        case .png: break
        case .jpeg:
            throw ImageError.invalidLabelMap(file: name, reason: "a JPEG cannot hold labels (lossy compression changes the values); use an 8-bit greyscale PNG")
        case nil:
            if let f = ImageFormat.signaturePrefix(bytes) {
                throw ImageError.truncated(file: name, format: f, detail: "\(bytes.count) bytes, shorter than the signature")
            }
            throw ImageError.unknownFormat(file: name)
        }
        let header = try PNGCodec.header(bytes, name: name)
        guard header.bitDepth == 8, header.colorType == 0 || header.colorType == 2 else {
            throw ImageError.invalidLabelMap(file: name, reason: "\(header.bitDepth)-bit \(header.colorTypeName) PNG; a label map must be an 8-bit greyscale PNG")
        }
        if let g = header.gamma, !header.hasSRGB, abs(g - 45455) > 2273 {
            throw ImageError.invalidLabelMap(file: name, reason: "its gAMA chunk (\(Double(g) / 100000)) would make the PNG decoder rescale the label values; write the PNG without a gamma chunk")
        }
        let raw = try PNGCodec.decodeRaw(bytes, name: name, maxPixels: options.maxPixels,
                                         format: header.colorType == 0 ? 0 : 2)
        var labels: [UInt8]
        if raw.channels == 1 {
            labels = raw.bytes
        } else {
            let n = raw.width * raw.height
            labels = [UInt8](repeating: 0, count: n)
            for i in 0..<n {
                let r = raw.bytes[3 * i], g = raw.bytes[3 * i + 1], b = raw.bytes[3 * i + 2]
                guard r == g, g == b else {
                    throw ImageError.invalidLabelMap(file: name, reason: "RGB PNG with different channel values (\(r),\(g),\(b)) at (x \(i % raw.width), y \(i / raw.width)): a colour visualisation, not labels; expected an 8-bit greyscale PNG")
                }
                labels[i] = r
            }
        }
        return try LabelMap(width: raw.width, height: raw.height, labels: labels, name: name)
    }

    /// Encodes as an 8-bit greyscale PNG (the format `read` expects).
    public func encodePNG() throws -> [UInt8] {
        try ImageIO.encodeGrayPNG(labels, width: width, height: height)
    }
}
