#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads tensors stored as ONNX external data (`data_location = EXTERNAL`), straight into their
/// storage with positioned reads. Locations must stay inside the model's folder; files are
/// opened once and kept open until the reader goes away.
final class ExternalDataReader {
    /// The model's folder as given (nil when the model came from memory with no folder).
    let baseDirectory: String?
    private var resolvedBase: String?
    private var files: [String: (fd: Int32, size: Int64)] = [:]

    init(baseDirectory: String?) {
        self.baseDirectory = baseDirectory
    }

    deinit {
        for file in files.values { close(file.fd) }
    }

    /// The parsed `external_data` keys of one tensor.
    struct Entry {
        var location: String
        var offset: Int64
        var length: Int64?
    }

    static func parseEntry(tensor: String, keys: [(String, String)]) throws -> Entry {
        var location: String?
        var offset: Int64 = 0
        var length: Int64?
        for (key, value) in keys {
            switch key {
            case "location":
                location = value
            case "offset", "length":
                guard !value.isEmpty, value.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int64(value) else {
                    throw ONNXError.externalDataFailed(tensor: tensor, path: location ?? "?",
                                                       reason: "the '\(key)' key is '\(value)', not a non-negative integer")
                }
                if key == "offset" { offset = number } else { length = number }
            default:
                break  // "checksum" and unknown keys carry nothing we need.
            }
        }
        guard let location else {
            throw ONNXError.invalidTensor(tensor: tensor, detail: "stored as external data but has no 'location' key")
        }
        return Entry(location: location, offset: offset, length: length)
    }

    /// Checks `location` and reads `byteCount` bytes from it into `destination`.
    func read(tensor: String, entry: Entry, typeLabel: String, byteCount: Int,
              into destination: UnsafeMutableRawPointer) throws {
        let location = entry.location
        if let length = entry.length, length != Int64(byteCount) {
            throw ONNXError.invalidTensor(tensor: tensor,
                                          detail: "\(length) bytes of external data in '\(location)', but \(typeLabel) needs \(byteCount)")
        }
        let file = try open(tensor: tensor, location: location)
        let (end, overflow) = entry.offset.addingReportingOverflow(Int64(byteCount))
        if overflow || end > file.size {
            throw ONNXError.externalRangeOutOfBounds(tensor: tensor, path: location, offset: entry.offset,
                                                     length: Int64(byteCount), fileSize: file.size)
        }
        if let reason = FileIO.readFully(fd: file.fd, into: destination, count: byteCount, offset: entry.offset) {
            throw ONNXError.externalDataFailed(tensor: tensor, path: location, reason: reason)
        }
    }

    /// Validates `location` (relative, inside the model's folder, also after resolving symlinks,
    /// a regular file) and opens it, once per location.
    private func open(tensor: String, location: String) throws -> (fd: Int32, size: Int64) {
        if let file = files[location] { return file }
        guard !location.isEmpty else {
            throw ONNXError.unsafeExternalPath(tensor: tensor, location: location, reason: "the location is empty")
        }
        guard !location.hasPrefix("/") else {
            throw ONNXError.unsafeExternalPath(tensor: tensor, location: location,
                                               reason: "absolute paths are not allowed; it must be relative to the model's folder")
        }
        // Lexical check: ".." must never climb above the model's folder.
        var depth = 0
        for component in location.split(separator: "/", omittingEmptySubsequences: true) {
            if component == ".." {
                depth -= 1
                if depth < 0 {
                    throw ONNXError.unsafeExternalPath(tensor: tensor, location: location,
                                                       reason: "it escapes the model's folder through '..'")
                }
            } else if component != "." {
                depth += 1
            }
        }
        guard let baseDirectory else {
            throw ONNXError.invalidTensor(tensor: tensor,
                                          detail: "stored as external data in '\(location)', but the model was read from memory with no base directory")
        }
        if resolvedBase == nil {
            guard let base = FileIO.realPath(baseDirectory) else {
                throw ONNXError.missingExternalFile(tensor: tensor, path: location)
            }
            resolvedBase = base
        }
        let base = resolvedBase!
        let fullPath = base == "/" ? "/" + location : base + "/" + location
        let fd = FileIO.openForReading(fullPath)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR {
                throw ONNXError.missingExternalFile(tensor: tensor, path: location)
            }
            throw ONNXError.externalDataFailed(tensor: tensor, path: location, reason: FileIO.errorString(code))
        }
        var keep = false
        defer { if !keep { close(fd) } }
        // Symlinks may point anywhere: the resolved file must still live under the model's folder.
        guard let resolved = FileIO.realPath(fullPath) else {
            throw ONNXError.missingExternalFile(tensor: tensor, path: location)
        }
        let prefix = base.hasSuffix("/") ? base : base + "/"
        guard resolved.hasPrefix(prefix) else {
            throw ONNXError.unsafeExternalPath(tensor: tensor, location: location,
                                               reason: "it resolves to '\(resolved)', outside the model's folder '\(base)'")
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw ONNXError.externalDataFailed(tensor: tensor, path: location, reason: FileIO.errorString())
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw ONNXError.externalDataFailed(tensor: tensor, path: location, reason: "not a regular file")
        }
        keep = true
        let file = (fd: fd, size: Int64(info.st_size))
        files[location] = file
        return file
    }
}
