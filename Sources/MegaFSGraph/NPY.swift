import Foundation

/// Reading and writing NumPy `.npy` files (format versions 1-3, little-endian, C order):
/// the exchange format for golden data, `megafs run` inputs and outputs.
public enum NPY {
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case unreadable(path: String, String)
        case malformed(String)
        case unsupported(String)

        public var description: String {
            switch self {
            case .unreadable(let path, let why): return "cannot read \(path): \(why)"
            case .malformed(let why): return "not a valid .npy file: \(why)"
            case .unsupported(let why): return "unsupported .npy file: \(why)"
            }
        }
    }

    /// Sane bound on header length: NumPy headers are a few hundred bytes.
    static let maxHeaderLength = 1 << 16

    static let descrs: [String: DType] = [
        "<f4": .float32, "<f2": .float16, "<i8": .int64, "<i4": .int32,
        "|i1": .int8, "|u1": .uint8, "|b1": .bool, "<i1": .int8, "<u1": .uint8,
    ]

    public static func read(path: String) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Error.unreadable(path: path, FileManager.default.fileExists(atPath: path) ? "permission denied or not a file" : "no such file")
        }
        do {
            return try decode(data)
        } catch let error as Error {
            if case .unreadable = error { throw error }
            throw Error.unreadable(path: path, error.description)
        }
    }

    public static func decode(_ data: Data) throws -> Tensor {
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw Error.malformed("missing the \\x93NUMPY magic")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw Error.malformed("truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw Error.unsupported("format version \(major)")
        }
        guard headerLength <= maxHeaderLength, headerStart + headerLength <= data.count else {
            throw Error.malformed("header length \(headerLength) runs past the end of the file (\(data.count) bytes)")
        }
        let headerBytes = data.subdata(in: data.startIndex + headerStart ..< data.startIndex + headerStart + headerLength)
        guard let header = String(data: headerBytes, encoding: .utf8) else {
            throw Error.malformed("header is not text")
        }
        guard let descr = field("descr", in: header)?.trimmingCharacters(in: CharacterSet(charactersIn: "'\"")) else {
            throw Error.malformed("header has no descr")
        }
        guard let dtype = descrs[descr] else {
            throw Error.unsupported("element type '\(descr)' (supported: float32, float16, int64, int32, int8, uint8, bool, little-endian)")
        }
        if let order = field("fortran_order", in: header), order.hasPrefix("True") {
            throw Error.unsupported("Fortran-ordered arrays")
        }
        guard let shapeText = field("shape", in: header) else { throw Error.malformed("header has no shape") }
        let inner = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "()"))
        var shape: [Int] = []
        for part in inner.split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let v = Int(trimmed), v >= 0 else { throw Error.malformed("bad shape \(shapeText)") }
            shape.append(v)
        }
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= 1 << 40 else { throw Error.malformed("shape \(shape) is too large") }
            count = product
        }
        let payloadStart = headerStart + headerLength
        let needed = count * dtype.byteSize
        guard data.count - payloadStart == needed else {
            throw Error.malformed("\(data.count - payloadStart) bytes of data for \(dtype.name)\(shape), which needs \(needed)")
        }
        return try data.withUnsafeBytes { raw in
            try Tensor(dtype: dtype, shape: shape, bytes: UnsafeRawBufferPointer(rebasing: raw[payloadStart...]))
        }
    }

    /// The text of `key`'s value in a NumPy header dict (up to the next top-level comma).
    private static func field(_ key: String, in header: String) -> String? {
        guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[keyRange.upperBound...].drop { $0 == " " || $0 == ":" }
        var depth = 0
        var out = ""
        while let c = rest.first {
            if c == "(" { depth += 1 }
            if c == ")" { depth -= 1; if depth < 0 { break } }
            if (c == "," && depth == 0) || c == "}" { break }
            out.append(c)
            rest = rest.dropFirst()
        }
        return out.trimmingCharacters(in: .whitespaces)
    }

    public static func encode(_ tensor: Tensor) -> Data {
        let descr = descrs.first { $0.value == tensor.dtype && !$0.key.hasPrefix("<i1") && !$0.key.hasPrefix("<u1") }!.key
        let shapeText = tensor.shape.isEmpty ? "()" :
            tensor.shape.count == 1 ? "(\(tensor.shape[0]),)" : "(\(tensor.shape.map(String.init).joined(separator: ", ")))"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xff), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.append(contentsOf: tensor.bytes)
        return data
    }

    /// Writes atomically (no partial file on failure).
    public static func write(_ tensor: Tensor, to path: String) throws {
        do {
            try encode(tensor).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw Error.unreadable(path: path, "cannot write: \(error.localizedDescription)")
        }
    }
}
