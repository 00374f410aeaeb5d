import Foundation

/// Limits and choices for decoding images.
public struct ImageDecodeOptions: Sendable, Equatable {
    /// Largest accepted width x height, checked from the header before any pixel is decoded.
    public var maxPixels: Int
    /// Largest accepted file, checked before the file is read.
    public var maxFileBytes: Int
    /// Apply a JPEG's EXIF orientation (1...8), as phone photos need.
    public var applyEXIFOrientation: Bool

    public static let defaultMaxPixels = 50_000_000

    public init(maxPixels: Int = ImageDecodeOptions.defaultMaxPixels, maxFileBytes: Int = 512 << 20,
                applyEXIFOrientation: Bool = true) {
        self.maxPixels = maxPixels
        self.maxFileBytes = maxFileBytes
        self.applyEXIFOrientation = applyEXIFOrientation
    }
}

/// Reading and writing PNG and JPEG images.
///
/// Decoding gives 8-bit RGB: greyscale is replicated to three channels; an alpha channel
/// (PNG RGBA, grey+alpha, palette with transparency) is composited on white; JPEG EXIF
/// orientation is applied unless disabled. Every failure is an `ImageError` naming the file.
public enum ImageIO {
    /// Reads and decodes the file at `path`.
    public static func read(path: String, options: ImageDecodeOptions = ImageDecodeOptions()) throws -> RGBImage {
        let bytes = try readFile(path: path, maxBytes: options.maxFileBytes)
        return try decode(bytes, name: path, options: options)
    }

    /// Decodes PNG or JPEG bytes (format sniffed from the signature). `name` is used in errors.
    public static func decode(_ bytes: [UInt8], name: String = "<memory>",
                              options: ImageDecodeOptions = ImageDecodeOptions()) throws -> RGBImage {
        guard !bytes.isEmpty else { throw ImageError.empty(file: name) }
        guard bytes.count <= options.maxFileBytes else {
            throw ImageError.tooLarge(file: name, detail: "\(bytes.count) bytes, over the limit of \(options.maxFileBytes)")
        }
        switch ImageFormat.detect(bytes) {
        case .png: return try PNGCodec.decode(bytes, name: name, maxPixels: options.maxPixels)
        case .jpeg: return try JPEGCodec.decode(bytes, name: name, maxPixels: options.maxPixels,
                                                applyOrientation: options.applyEXIFOrientation)
        case nil:
            if bytes.count < 8, ImageFormat.signaturePrefix(bytes) != nil {
                throw ImageError.truncated(file: name, format: ImageFormat.signaturePrefix(bytes)!, detail: "\(bytes.count) bytes, shorter than the signature")
            }
            throw ImageError.unknownFormat(file: name)
        }
    }

    public static func decode(_ data: Data, name: String = "<memory>",
                              options: ImageDecodeOptions = ImageDecodeOptions()) throws -> RGBImage {
        try decode([UInt8](data), name: name, options: options)
    }

    /// Encodes as PNG (8-bit RGB, lossless).
    public static func encodePNG(_ image: RGBImage) throws -> [UInt8] {
        try PNGWriter.encode(image.pixels, width: image.width, height: image.height, channels: 3)
    }

    /// Encodes 8-bit greyscale bytes (one per pixel) as a greyscale PNG, e.g. a label map or a
    /// mask scaled to 0...255.
    public static func encodeGrayPNG(_ values: [UInt8], width: Int, height: Int) throws -> [UInt8] {
        try PNGWriter.encode(values, width: width, height: height, channels: 1)
    }

    /// Encodes as baseline JPEG, quality 1...100, 4:4:4 chroma (no chroma subsampling) unless
    /// `subsampleChroma` asks for 4:2:0.
    public static func encodeJPEG(_ image: RGBImage, quality: Int = 95, subsampleChroma: Bool = false) throws -> [UInt8] {
        try JPEGCodec.encode(image, quality: quality, subsampling: subsampleChroma ? .s420 : .s444)
    }

    /// Encodes and writes atomically; the format is `format` or else the path's extension
    /// (`.png`, `.jpg`, `.jpeg`).
    public static func write(_ image: RGBImage, to path: String, format: ImageFormat? = nil, jpegQuality: Int = 95) throws {
        guard let fmt = format ?? ImageFormat(pathExtension: path) else {
            throw ImageError.writeFailed(file: path, reason: "cannot tell the format from the extension; use .png, .jpg or .jpeg")
        }
        let bytes: [UInt8]
        do {
            switch fmt {
            case .png: bytes = try encodePNG(image)
            case .jpeg: bytes = try encodeJPEG(image, quality: jpegQuality)
            }
        } catch let e as ImageError {
            if case .writeFailed(_, let r) = e { throw ImageError.writeFailed(file: path, reason: r) }
            throw e
        }
        try writeFile(bytes, to: path)
    }

    /// Writes bytes atomically (temporary file, then rename).
    static func writeFile(_ bytes: [UInt8], to path: String) throws {
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw ImageError.writeFailed(file: path, reason: error.localizedDescription)
        }
    }

    static func readFile(path: String, maxBytes: Int) throws -> [UInt8] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ImageError.unreadable(file: path, reason: "no such file")
        }
        guard !isDir.boolValue else { throw ImageError.unreadable(file: path, reason: "is a directory") }
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber,
           size.intValue > maxBytes {
            throw ImageError.tooLarge(file: path, detail: "\(size.intValue) bytes, over the limit of \(maxBytes)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImageError.unreadable(file: path, reason: "permission denied or not a regular file")
        }
        guard !data.isEmpty else { throw ImageError.empty(file: path) }
        guard data.count <= maxBytes else {
            throw ImageError.tooLarge(file: path, detail: "\(data.count) bytes, over the limit of \(maxBytes)")
        }
        return [UInt8](data)
    }
}

extension ImageFormat {
    /// A format whose signature starts with all of `bytes` (for inputs shorter than a signature).
    static func signaturePrefix(_ bytes: [UInt8]) -> ImageFormat? {
        guard !bytes.isEmpty else { return nil }
        if bytes.count <= 8, Array(PNGCodec.signature.prefix(bytes.count)) == bytes { return .png }
        if bytes.count <= 3, Array([UInt8]([0xFF, 0xD8, 0xFF]).prefix(bytes.count)) == bytes { return .jpeg }
        return nil
    }
}
