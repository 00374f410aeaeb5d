import Foundation

/// The image formats the swap reads and writes.
public enum ImageFormat: String, Sendable, CaseIterable, CustomStringConvertible {
    case png = "PNG"
    case jpeg = "JPEG"

    public var description: String { rawValue }

    /// Sniffs the format from the first bytes (PNG signature, JPEG SOI marker `FF D8 FF`).
    public static func detect<C: Collection>(_ bytes: C) -> ImageFormat? where C.Element == UInt8 {
        let head = Array(bytes.prefix(8))
        if head.count >= 8, head == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        if head.count >= 3, head[0] == 0xFF, head[1] == 0xD8, head[2] == 0xFF { return .jpeg }
        return nil
    }

    /// The format a file name asks for when writing: `.png`, `.jpg`/`.jpeg` (any case).
    public init?(pathExtension path: String) {
        switch (path as NSString).pathExtension.lowercased() {
        case "png": self = .png
        case "jpg", "jpeg", "jpe": self = .jpeg
        default: return nil
        }
    }
}

/// Errors of image reading, writing and processing. Each names the file it is about
/// (`<memory>` for bytes not read from a file).
public enum ImageError: Error, Equatable, CustomStringConvertible {
    /// The file could not be read (missing, a directory, permissions...).
    case unreadable(file: String, reason: String)
    /// The file or buffer has no bytes.
    case empty(file: String)
    /// Neither a PNG nor a JPEG signature.
    case unknownFormat(file: String)
    /// The data ends before the image does.
    case truncated(file: String, format: ImageFormat, detail: String)
    /// The data is not a valid image of its format.
    case corrupt(file: String, format: ImageFormat, detail: String)
    /// The header announces more pixels than allowed (checked before any pixel is decoded),
    /// or the file is larger than allowed.
    case tooLarge(file: String, detail: String)
    /// A valid image this code does not handle.
    case unsupported(file: String, detail: String)
    /// A face-parsing label map with a wrong pixel type, values outside 0...18, or a size that
    /// does not fit the image it belongs to.
    case invalidLabelMap(file: String, reason: String)
    /// Encoding or writing failed.
    case writeFailed(file: String, reason: String)
    /// A caller passed inconsistent arguments (sizes, counts, shapes).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .unreadable(let f, let r): return "cannot read image \(f): \(r)"
        case .empty(let f): return "image \(f) is empty (0 bytes)"
        case .unknownFormat(let f): return "image \(f) is neither PNG nor JPEG (unknown signature)"
        case .truncated(let f, let fmt, let d): return "\(fmt) image \(f) is truncated: \(d)"
        case .corrupt(let f, let fmt, let d): return "\(fmt) image \(f) is corrupt: \(d)"
        case .tooLarge(let f, let d): return "image \(f) is too large: \(d)"
        case .unsupported(let f, let d): return "image \(f) is not supported: \(d)"
        case .invalidLabelMap(let f, let r): return "face-parsing label map \(f) is invalid: \(r)"
        case .writeFailed(let f, let r): return "cannot write image \(f): \(r)"
        case .invalidArgument(let d): return "invalid image argument: \(d)"
        }
    }
}
