/// Little-endian encoder for the small sections.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { append(v.littleEndian) }
    mutating func u32(_ v: UInt32) { append(v.littleEndian) }
    mutating func u64(_ v: UInt64) { append(v.littleEndian) }
    mutating func i32(_ v: Int32) { append(v.littleEndian) }
    mutating func i64(_ v: Int64) { append(v.littleEndian) }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    mutating func u32(_ v: Int) { u32(UInt32(v)) }
    mutating func u64(_ v: Int) { u64(UInt64(v)) }
    /// u32 byte length + UTF-8 bytes.
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        u32(UInt32(utf8.count))
        bytes.append(contentsOf: utf8)
    }
    mutating func raw(_ b: UnsafeRawBufferPointer) { bytes.append(contentsOf: b) }
    mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }

    private mutating func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v) { bytes.append(contentsOf: $0) }
    }

    /// Overwrites a u32 at `offset` (for counts known only later).
    mutating func patchU32(_ v: UInt32, at offset: Int) {
        withUnsafeBytes(of: v.littleEndian) { for i in 0..<4 { bytes[offset + i] = $0[i] } }
    }
}

/// Bounds-checked little-endian decoder over one section's bytes. Every error names the
/// file, the section and the absolute file offset of the field.
struct ByteReader {
    let bytes: [UInt8]
    let path: String
    let section: String
    /// File offset of `bytes[0]`.
    let base: UInt64
    private(set) var position = 0

    init(bytes: [UInt8], path: String, section: String, base: UInt64) {
        self.bytes = bytes
        self.path = path
        self.section = section
        self.base = base
    }

    var remaining: Int { bytes.count - position }
    var atEnd: Bool { position == bytes.count }
    var fileOffset: UInt64 { base + UInt64(position) }

    func malformed(_ detail: String) -> ModelFileError {
        .malformed(path: path, what: "\(section) section", detail: "\(detail) (at file offset \(fileOffset))")
    }

    private mutating func need(_ n: Int, _ what: String) throws {
        guard n <= remaining else {
            throw ModelFileError.outOfRange(path: path, what: "\(what) in the \(section) section", offset: fileOffset,
                                            length: UInt64(n),
                                            bound: "the section (ends at file offset \(base + UInt64(bytes.count)))")
        }
    }

    private mutating func load<T: FixedWidthInteger>(_: T.Type, _ what: String) throws -> T {
        try need(MemoryLayout<T>.size, what)
        let v = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: position, as: T.self) }
        position += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    mutating func u8(_ what: String) throws -> UInt8 { try load(UInt8.self, what) }
    mutating func u16(_ what: String) throws -> UInt16 { try load(UInt16.self, what) }
    mutating func u32(_ what: String) throws -> UInt32 { try load(UInt32.self, what) }
    mutating func u64(_ what: String) throws -> UInt64 { try load(UInt64.self, what) }
    mutating func i32(_ what: String) throws -> Int32 { try load(Int32.self, what) }
    mutating func i64(_ what: String) throws -> Int64 { try load(Int64.self, what) }
    mutating func f32(_ what: String) throws -> Float { Float(bitPattern: try u32(what)) }

    /// A count that is checked against `limit` and against the bytes left, assuming each item
    /// takes at least `minItemBytes` — so a lying count fails before anything is allocated.
    mutating func count(_ what: String, limit: Int, minItemBytes: Int) throws -> Int {
        let at = fileOffset
        let n = Int(try u32("count of \(what)"))
        if n > limit {
            throw ModelFileError.limitExceeded(path: path, what: "count of \(what) (\(section) section, file offset \(at))",
                                               value: UInt64(n), limit: UInt64(limit))
        }
        if n * minItemBytes > remaining {
            throw ModelFileError.outOfRange(path: path, what: "\(n) \(what) in the \(section) section", offset: fileOffset,
                                            length: UInt64(n * minItemBytes),
                                            bound: "the section (\(remaining) bytes left)")
        }
        return n
    }

    /// u32 length + UTF-8 bytes, validated.
    mutating func string(_ what: String) throws -> String {
        let at = fileOffset
        let n = Int(try u32("length of \(what)"))
        if n > ModelFileLimits.maxStringBytes {
            throw ModelFileError.limitExceeded(path: path, what: "length of \(what) (\(section) section, file offset \(at))",
                                               value: UInt64(n), limit: UInt64(ModelFileLimits.maxStringBytes))
        }
        try need(n, what)
        let slice = bytes[position..<position + n]
        guard let s = String(validating: slice, as: UTF8.self) else {
            throw malformed("\(what) is not valid UTF-8")
        }
        position += n
        return s
    }

    mutating func raw(_ n: Int, _ what: String) throws -> ArraySlice<UInt8> {
        try need(n, what)
        defer { position += n }
        return bytes[position..<position + n]
    }

    mutating func skip(_ n: Int, _ what: String) throws {
        try need(n, what)
        position += n
    }
}
