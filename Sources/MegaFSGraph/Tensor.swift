import Foundation

/// An immutable, 64-byte aligned byte buffer shared by reference between tensors.
/// Weights are large (up to ~1 GB for the encoder); copying a `Tensor` must not copy them.
public final class TensorStorage: @unchecked Sendable {
    public static let alignment = 64
    public let byteCount: Int
    public let pointer: UnsafeMutableRawPointer

    /// Allocates `byteCount` zeroed bytes.
    public init(byteCount: Int) {
        self.byteCount = byteCount
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: Self.alignment)
        memset(pointer, 0, max(byteCount, 1))
    }

    /// Copies `bytes` into a new aligned buffer.
    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(byteCount: bytes.count)
        if let base = bytes.baseAddress, bytes.count > 0 {
            pointer.copyMemory(from: base, byteCount: bytes.count)
        }
    }

    deinit { pointer.deallocate() }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: pointer, count: byteCount) }
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
