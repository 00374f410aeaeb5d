import CONNX
import CProtobufC
import MegaFSGraph
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The non-nil elements of a protobuf-c repeated message field.
func messages<T>(_ base: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ count: Int) -> [UnsafeMutablePointer<T>] {
    guard let base, count > 0 else { return [] }
    return (0..<count).compactMap { base[$0] }
}

/// A protobuf-c string field ("" when absent).
func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    pointer.map { String(cString: $0) } ?? ""
}

/// A protobuf-c bytes field as UTF-8 text.
func string(_ data: ProtobufCBinaryData) -> String {
    guard let base = data.data, data.len > 0 else { return "" }
    return String(decoding: UnsafeBufferPointer(start: base, count: data.len), as: UTF8.self)
}

/// Decodes `TensorProto`s into `Tensor`s: validates the shape and the data length against the
/// type, reads inline (`raw_data` or typed fields) or external data.
struct TensorDecoder {
    let external: ExternalDataReader

    /// Checks every dimension and returns the shape and element count.
    static func shape(of t: UnsafeMutablePointer<Onnx__TensorProto>, name: String) throws -> (shape: [Int], count: Int) {
        let rank = t.pointee.n_dims
        guard rank <= ONNXImporter.maxRank else {
            throw ONNXError.invalidDimension(tensor: name, detail: "rank \(rank) is above the limit of \(ONNXImporter.maxRank)")
        }
        let dims = rank > 0 ? Array(UnsafeBufferPointer(start: t.pointee.dims, count: rank)) : []
        var count = 1
        for (axis, dim) in dims.enumerated() {
            guard dim >= 0 else {
                throw ONNXError.invalidDimension(tensor: name, detail: "dimension \(axis) of \(dims) is negative (\(dim))")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(dim))
            guard !overflow, product <= ONNXImporter.maxElementCount else {
                throw ONNXError.invalidDimension(tensor: name,
                                                 detail: "shape \(dims) has more elements than the limit of \(ONNXImporter.maxElementCount) (2^34)")
            }
            count = product
        }
        return (dims.map { Int($0) }, count)
    }

    /// Decodes one tensor. With `releaseRawData`, the proto's `raw_data` buffer is freed as soon
    /// as it has been copied, so a large model never holds two full copies of its weights.
    func decode(_ t: UnsafeMutablePointer<Onnx__TensorProto>, name: String, releaseRawData: Bool) throws -> Tensor {
        let code = t.pointee.has_data_type != 0 ? t.pointee.data_type : 0
        let (shape, count) = try Self.shape(of: t, name: name)
        guard let dtype = DType(rawValue: code) else {
            throw ONNXError.unsupportedDataType(name: name, code: code)
        }
        guard t.pointee.segment == nil else {
            throw ONNXError.invalidTensor(tensor: name, detail: "segmented tensors are not supported")
        }
        let typeLabel = onnxTypeLabel(code: code, shape: shape)
        let byteCount = count * dtype.byteSize

        let isExternal = t.pointee.has_data_location != 0
            && t.pointee.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL
        var sources: [String] = []
        if isExternal { sources.append("external data") }
        if t.pointee.has_raw_data != 0 || t.pointee.raw_data.len > 0 { sources.append("raw_data") }
        if t.pointee.n_float_data > 0 { sources.append("float_data") }
        if t.pointee.n_int32_data > 0 { sources.append("int32_data") }
        if t.pointee.n_int64_data > 0 { sources.append("int64_data") }
        if t.pointee.n_double_data > 0 { sources.append("double_data") }
        if t.pointee.n_uint64_data > 0 { sources.append("uint64_data") }
        if t.pointee.n_string_data > 0 { sources.append("string_data") }
        guard sources.count <= 1 else {
            throw ONNXError.invalidTensor(tensor: name, detail: "data is stored in more than one place (\(sources.joined(separator: " and ")))")
        }

        let storage: TensorStorage
        switch sources.first {
        case nil:
            guard count == 0 else {
                throw ONNXError.invalidTensor(tensor: name, detail: "has no data, but \(typeLabel) needs \(byteCount) bytes")
            }
            storage = TensorStorage(byteCount: 0)

        case "external data":
            let keys = messages(t.pointee.external_data, t.pointee.n_external_data).map {
                (string($0.pointee.key), string($0.pointee.value))
            }
            let entry = try ExternalDataReader.parseEntry(tensor: name, keys: keys)
            storage = TensorStorage(byteCount: byteCount)
            try external.read(tensor: name, entry: entry, typeLabel: typeLabel, byteCount: byteCount, into: storage.pointer)

        case "raw_data":
            let raw = t.pointee.raw_data
            guard raw.len == byteCount else {
                throw ONNXError.invalidTensor(tensor: name, detail: "\(raw.len) bytes of raw data, but \(typeLabel) needs \(byteCount)")
            }
            storage = TensorStorage(copying: UnsafeRawBufferPointer(start: raw.data, count: raw.len))
            if releaseRawData, let data = raw.data {
                free(data)
                t.pointee.raw_data = ProtobufCBinaryData(len: 0, data: nil)
                t.pointee.has_raw_data = 0
            }

        case "float_data":
            try Self.checkTyped(name, field: "float_data", n: t.pointee.n_float_data, count: count,
                                typeLabel: typeLabel, allowed: dtype == .float32, validFor: "FLOAT")
            storage = TensorStorage(copying: UnsafeRawBufferPointer(start: t.pointee.float_data, count: byteCount))

        case "int64_data":
            try Self.checkTyped(name, field: "int64_data", n: t.pointee.n_int64_data, count: count,
                                typeLabel: typeLabel, allowed: dtype == .int64, validFor: "INT64")
            storage = TensorStorage(copying: UnsafeRawBufferPointer(start: t.pointee.int64_data, count: byteCount))

        case "int32_data":
            // ONNX packs every type narrower than 32 bits one element per int32 (float16 as its bits).
            try Self.checkTyped(name, field: "int32_data", n: t.pointee.n_int32_data, count: count,
                                typeLabel: typeLabel, allowed: dtype != .float32 && dtype != .int64,
                                validFor: "INT32, INT8, UINT8, BOOL, FLOAT16")
            let values = UnsafeBufferPointer(start: t.pointee.int32_data, count: count)
            storage = TensorStorage(byteCount: byteCount)
            let out = storage.pointer
            switch dtype {
            case .int32:
                out.copyMemory(from: values.baseAddress!, byteCount: byteCount)
            case .int8:
                for (i, v) in values.enumerated() { out.storeBytes(of: Int8(truncatingIfNeeded: v), toByteOffset: i, as: Int8.self) }
            case .uint8:
                for (i, v) in values.enumerated() { out.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self) }
            case .bool:
                for (i, v) in values.enumerated() { out.storeBytes(of: v != 0 ? 1 : 0, toByteOffset: i, as: UInt8.self) }
            case .float16:
                for (i, v) in values.enumerated() {
                    out.storeBytes(of: UInt16(truncatingIfNeeded: v), toByteOffset: 2 * i, as: UInt16.self)
                }
            case .float32, .int64:
                preconditionFailure("checked above")
            }

        case let field?:
            // double_data, uint64_data, string_data: only valid for types we reject above.
            throw ONNXError.invalidTensor(tensor: name, detail: "\(field) cannot hold \(typeLabel)")
        }
        return Tensor(dtype: dtype, shape: shape, storage: storage)
    }

    private static func checkTyped(_ name: String, field: String, n: Int, count: Int, typeLabel: String,
                                   allowed: Bool, validFor: String) throws {
        guard allowed else {
            throw ONNXError.invalidTensor(tensor: name, detail: "\(field) holds only \(validFor) values, not \(typeLabel)")
        }
        guard n == count else {
            throw ONNXError.invalidTensor(tensor: name, detail: "\(n) \(field) values, but \(typeLabel) needs \(count)")
        }
    }
}
