import Foundation

/// One anonymous mapping that backs many tensors (a model's weights), 2 MB aligned and asked of
/// the kernel as transparent huge pages: the bandwidth-bound layers stream their weights with a
/// TLB miss per 2 MB instead of per 4 kB (336 FTM layers of 0.5-1 MB: 11.2-12.0 ms against
/// 12.2-13.4 ms in a C loop over the same products, 2 threads, Zen 4). Each tensor owns its range;
/// a tensor freed before the slab gives its whole pages back (`MADV_DONTNEED`).
///
/// The price: right after other processes freed their memory, the kernel took longer to find
/// huge pages (the encoder's conv weights loaded in 1.0-1.2 s against 0.5-0.8 s, which is why
/// the model reader keeps conv weights out). `MEGAFS_HUGE_PAGES=off` keeps 4 kB pages.
public final class TensorSlab: @unchecked Sendable {
    /// False when `MEGAFS_HUGE_PAGES` is `off` (or `0`).
    public static let asksForHugePages: Bool = {
        guard let v = getenv("MEGAFS_HUGE_PAGES").map({ String(cString: $0) }) else { return true }
        return v != "off" && v != "0"
    }()
    static let hugePage = 2 << 20
    static let page = 4096
    public let byteCount: Int
    public let base: UnsafeMutableRawPointer
    private let mapping: UnsafeMutableRawPointer
    private let mappedBytes: Int
    /// True for a range of a file (`init(file:offset:byteCount:)`).
    public let isFileBacked: Bool

    /// Nil when the mapping fails (the caller then allocates tensor by tensor).
    public init?(byteCount: Int) {
        let bytes = max(byteCount, 1)
        let mapped = bytes + Self.hugePage
        guard let m = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), m != MAP_FAILED else {
            return nil
        }
        mapping = m
        mappedBytes = mapped
        let aligned = (Int(bitPattern: m) + Self.hugePage - 1) / Self.hugePage * Self.hugePage
        base = UnsafeMutableRawPointer(bitPattern: aligned)!
        self.byteCount = bytes
        isFileBacked = false
        // Advice only: without THP the pages stay 4 kB and everything else holds.
        if Self.asksForHugePages {
            _ = madvise(base, (bytes + Self.hugePage - 1) / Self.hugePage * Self.hugePage, Int32(MADV_HUGEPAGE))
        }
    }

    /// Bytes [offset, offset + byteCount) of an open file (`offset` a multiple of 64), mapped
    /// copy-on-write: weights stored uncompressed are read from the page cache as they are, with
    /// no copy and no fresh pages to clear, and processes mapping one file share its pages. Nil
    /// when the mapping fails (the caller then reads the bytes).
    public init?(file descriptor: Int32, offset: Int, byteCount: Int) {
        guard offset >= 0, offset % TensorStorage.alignment == 0, byteCount > 0 else { return nil }
        let pageStart = offset / Self.page * Self.page
        let mapped = offset - pageStart + byteCount
        guard let m = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE, descriptor, off_t(pageStart)), m != MAP_FAILED else {
            return nil
        }
        mapping = m
        mappedBytes = mapped
        base = m + (offset - pageStart)
        self.byteCount = byteCount
        isFileBacked = true
    }

    deinit { munmap(mapping, mappedBytes) }

    /// Returns the whole pages inside [pointer, pointer + count) to the system (they read as
    /// zeros, or for a file's range as the file's bytes again).
    func release(_ pointer: UnsafeMutableRawPointer, count: Int) {
        let start = (Int(bitPattern: pointer) + Self.page - 1) / Self.page * Self.page
        let end = (Int(bitPattern: pointer) + count) / Self.page * Self.page
        if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, Int32(MADV_DONTNEED)) }
    }
}

/// An immutable, 64-byte aligned byte buffer shared by reference between tensors.
/// Weights are large (up to ~1 GB for the encoder); copying a `Tensor` must not copy them.
public final class TensorStorage: @unchecked Sendable {
    public static let alignment = 64
    public let byteCount: Int
    public let pointer: UnsafeMutableRawPointer
    /// Set when the bytes are a range of a slab (which this storage keeps alive).
    private let slab: TensorSlab?
    /// True for a placeholder whose bytes were given up (`released(byteCount:)`): its pages are
    /// reserved but not readable, so a read faults instead of returning wrong values.
    public let isReleased: Bool

    /// Allocates `byteCount` zeroed bytes.
    public convenience init(byteCount: Int) {
        self.init(uninitializedByteCount: byteCount)
        memset(pointer, 0, max(byteCount, 1))
    }

    /// Allocates `byteCount` bytes without clearing them, for a caller that writes every byte
    /// before anything reads one (a copy, a transformed weight, a kernel's output): the pages
    /// then fault in once, where they are written, instead of twice.
    public init(uninitializedByteCount byteCount: Int) {
        self.byteCount = byteCount
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: Self.alignment)
        slab = nil
        isReleased = false
    }

    private init(releasedByteCount byteCount: Int, pointer: UnsafeMutableRawPointer) {
        self.byteCount = byteCount
        self.pointer = pointer
        slab = nil
        isReleased = true
    }

    /// A placeholder of `byteCount` bytes that takes no memory: for a weight whose only readers
    /// hold a transformed copy of it (the runtime's Winograd convs). Nil when even the address
    /// range cannot be reserved.
    public static func released(byteCount: Int) -> TensorStorage? {
        guard let m = mmap(nil, max(byteCount, 1), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              m != MAP_FAILED else { return nil }
        return TensorStorage(releasedByteCount: byteCount, pointer: m)
    }

    /// `byteCount` bytes at `offset` (a multiple of `alignment`) in `slab`, which nothing else may
    /// use. Zero when the slab is fresh.
    public init(slab: TensorSlab, offset: Int, byteCount: Int) {
        precondition(offset % Self.alignment == 0 && offset >= 0 && offset + byteCount <= slab.byteCount,
                     "tensor range \(offset)+\(byteCount) outside its slab of \(slab.byteCount) bytes")
        self.byteCount = byteCount
        pointer = slab.base + offset
        self.slab = slab
        isReleased = false
    }

    /// One storage per byte count: those marked `inSlab` in one fresh slab (each at a 64-byte
    /// aligned offset), the others (and all of them when the slab cannot be mapped) allocated
    /// one by one. With `zeroed: false` the ones allocated alone are not cleared (for a caller
    /// that writes every byte, as the model reader does).
    public static func slabbed(byteCounts: [Int], inSlab: [Bool], zeroed: Bool = true) -> [TensorStorage] {
        precondition(byteCounts.count == inSlab.count)
        var offsets = [Int](repeating: -1, count: byteCounts.count)
        var total = 0
        for (i, n) in byteCounts.enumerated() where inSlab[i] {
            offsets[i] = total
            total += (max(n, 1) + alignment - 1) / alignment * alignment
        }
        let slab = total > 0 ? TensorSlab(byteCount: total) : nil
        return byteCounts.indices.map { i in
            if let slab, offsets[i] >= 0 { return TensorStorage(slab: slab, offset: offsets[i], byteCount: byteCounts[i]) }
            return zeroed ? TensorStorage(byteCount: byteCounts[i]) : TensorStorage(uninitializedByteCount: byteCounts[i])
        }
    }

    /// Copies `bytes` into a new aligned buffer.
    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(uninitializedByteCount: bytes.count)
        if let base = bytes.baseAddress, bytes.count > 0 {
            pointer.copyMemory(from: base, byteCount: bytes.count)
        }
    }

    deinit {
        if isReleased { munmap(pointer, max(byteCount, 1)) }
        else if let slab { slab.release(pointer, count: byteCount) } else { pointer.deallocate() }
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: pointer, count: byteCount) }

    /// True when the bytes are mapped from the model file rather than held in memory of their own.
    public var isFileBacked: Bool { slab?.isFileBacked ?? false }
    public var mutableBytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: pointer, count: byteCount)
    }
}

/// A dense, row-major, little-endian tensor with concrete shape: initializers, constants and
/// values computed by reference kernels.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let dtype: DType
    public let shape: [Int]
    public let storage: TensorStorage

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { elementCount * dtype.byteSize }
    public var rank: Int { shape.count }

    /// Wraps existing storage; the storage must hold exactly `shape`'s elements of `dtype`.
    public init(dtype: DType, shape: [Int], storage: TensorStorage) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(storage.byteCount == shape.reduce(1, *) * dtype.byteSize,
                     "storage of \(storage.byteCount) bytes does not hold \(dtype.name)\(shape)")
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    /// A zero-filled tensor.
    public init(zeros dtype: DType, shape: [Int]) {
        self.init(dtype: dtype, shape: shape,
                  storage: TensorStorage(byteCount: shape.reduce(1, *) * dtype.byteSize))
    }

    /// Copies raw little-endian bytes. Throws if their count does not match the shape.
    public init(dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer) throws {
        let expected = shape.reduce(1, *) * dtype.byteSize
        guard bytes.count == expected else {
            throw GraphError.invalidTensor("\(bytes.count) bytes of data for \(dtype.name)\(shape), which needs \(expected)")
        }
        self.init(dtype: dtype, shape: shape, storage: TensorStorage(copying: bytes))
    }

    public init(_ values: [Float], shape: [Int]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self = values.withUnsafeBytes { try! Tensor(dtype: .float32, shape: shape, bytes: $0) }
    }

    public init(_ values: [Int64], shape: [Int]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self = values.withUnsafeBytes { try! Tensor(dtype: .int64, shape: shape, bytes: $0) }
    }

    public init(_ values: [Int32], shape: [Int]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self = values.withUnsafeBytes { try! Tensor(dtype: .int32, shape: shape, bytes: $0) }
    }

    public init(_ values: [Int8], shape: [Int]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self = values.withUnsafeBytes { try! Tensor(dtype: .int8, shape: shape, bytes: $0) }
    }

    public init(_ values: [UInt8], dtype: DType = .uint8, shape: [Int]) {
        precondition(dtype.byteSize == 1)
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self = values.withUnsafeBytes { try! Tensor(dtype: dtype, shape: shape, bytes: $0) }
    }

    public init(_ values: [Bool], shape: [Int]) {
        self.init(values.map { $0 ? UInt8(1) : 0 }, dtype: .bool, shape: shape)
    }

    /// Scalar helpers.
    public init(scalar: Float) { self.init([scalar], shape: []) }
    public init(scalar: Int64) { self.init([scalar], shape: []) }

    public var bytes: UnsafeRawBufferPointer { storage.bytes }

    /// Elements as `T`, which must match `dtype`'s width. (float16 must be converted with `floats`.)
    public func elements<T>(as: T.Type) -> [T] {
        precondition(MemoryLayout<T>.stride == dtype.byteSize, "\(T.self) does not match \(dtype.name)")
        return Array(storage.bytes.bindMemory(to: T.self))
    }

    /// Values as Float, converting from any numeric dtype.
    public var floats: [Float] {
        switch dtype {
        case .float32: return elements(as: Float.self)
        case .float16: return elements(as: UInt16.self).map { Float(Float16(bitPattern: $0)) }
        case .int64: return elements(as: Int64.self).map { Float($0) }
        case .int32: return elements(as: Int32.self).map { Float($0) }
        case .int8: return elements(as: Int8.self).map { Float($0) }
        case .uint8, .bool: return elements(as: UInt8.self).map { Float($0) }
        }
    }

    /// Values as Int64, converting from any dtype (floats truncate toward zero).
    public var int64s: [Int64] {
        switch dtype {
        case .int64: return elements(as: Int64.self)
        case .int32: return elements(as: Int32.self).map { Int64($0) }
        case .int8: return elements(as: Int8.self).map { Int64($0) }
        case .uint8, .bool: return elements(as: UInt8.self).map { Int64($0) }
        case .float32, .float16: return floats.map { Int64($0) }
        }
    }

    /// Same data, new shape (element count must match).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == elementCount, "cannot reshape \(shape) to \(newShape)")
        return Tensor(dtype: dtype, shape: newShape, storage: storage)
    }

    public var type: TensorType { TensorType(dtype: dtype, shape: shape.map { .fixed($0) }) }

    /// Bitwise equality of dtype, shape and data.
    public func isIdentical(to other: Tensor) -> Bool {
        dtype == other.dtype && shape == other.shape && (storage === other.storage ||
            memcmp(storage.pointer, other.storage.pointer, byteCount) == 0)
    }

    public var description: String { "\(dtype.name)\(shape)" }
}

/// One dimension of a tensor type: known, named (symbolic, e.g. a batch axis) or unknown.
public enum Dim: Hashable, Sendable, CustomStringConvertible, Codable {
    case fixed(Int)
    case symbolic(String)

    public var value: Int? { if case .fixed(let v) = self { return v } else { return nil } }
    public var description: String {
        switch self {
        case .fixed(let v): return String(v)
        case .symbolic(let s): return s.isEmpty ? "?" : s
        }
    }
    /// A dimension nothing is known about.
    public static let unknown = Dim.symbolic("")
}

/// Element type and (possibly partly symbolic) shape of a value in the graph.
public struct TensorType: Hashable, Sendable, CustomStringConvertible, Codable {
    public var dtype: DType
    /// `nil` when even the rank is unknown.
    public var shape: [Dim]?

    public init(dtype: DType, shape: [Dim]?) {
        self.dtype = dtype
        self.shape = shape
    }

    public init(dtype: DType, dims: [Int]) {
        self.init(dtype: dtype, shape: dims.map { .fixed($0) })
    }

    /// All dimensions, when every one is known.
    public var concreteShape: [Int]? {
        guard let shape else { return nil }
        var out: [Int] = []
        for d in shape { guard let v = d.value else { return nil }; out.append(v) }
        return out
    }

    public var rank: Int? { shape?.count }

    public var description: String {
        guard let shape else { return "\(dtype.name)[?]" }
        return "\(dtype.name)[\(shape.map(\.description).joined(separator: ","))]"
    }
}
