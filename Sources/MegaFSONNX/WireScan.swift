/// Explains why bytes failed to decode as a ModelProto by walking the top level of the protobuf
/// wire format: either the data ends inside a field (truncated) or it is not protobuf at all.
enum WireScan {
    enum Verdict: Equatable {
        case truncated(String)
        case malformed(String)
        case wellFormed
    }

    static let modelFieldNames: [UInt64: String] = [
        1: "ir_version", 2: "producer_name", 3: "producer_version", 4: "domain", 5: "model_version",
        6: "doc_string", 7: "graph", 8: "opset_import", 14: "metadata_props", 20: "training_info",
        25: "functions", 26: "configuration",
    ]

    static func diagnose(_ bytes: UnsafeRawBufferPointer) -> Verdict {
        let count = bytes.count
        var position = 0

        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while position < count {
                let byte = bytes[position]
                position += 1
                if shift >= 64 { return nil }
                value |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }

        if count >= 4, bytes[0] == 0x50, bytes[1] == 0x4b, bytes[2] == 0x03, bytes[3] == 0x04 {
            return .malformed("it is a zip archive (a PyTorch checkpoint?); export the network to ONNX first")
        }
        while position < count {
            let fieldStart = position
            guard let tag = varint() else {
                return .truncated("the data ends inside a field tag at offset \(fieldStart) of \(count) bytes")
            }
            let number = tag >> 3
            let wireType = tag & 7
            guard number != 0, let name = modelFieldNames[number] else {
                return .malformed("unexpected protobuf field \(number) (wire type \(wireType)) at offset \(fieldStart); an ONNX ModelProto has no such field")
            }
            switch wireType {
            case 0:
                guard varint() != nil else {
                    return .truncated("the data ends inside field '\(name)' at offset \(fieldStart) of \(count) bytes")
                }
            case 1, 5:
                let size = wireType == 1 ? 8 : 4
                guard count - position >= size else {
                    return .truncated("field '\(name)' at offset \(fieldStart) needs \(size) bytes, but the data ends at \(count)")
                }
                position += size
            case 2:
                guard let length = varint() else {
                    return .truncated("the data ends inside the length of field '\(name)' at offset \(fieldStart) of \(count) bytes")
                }
                guard length <= UInt64(count - position) else {
                    return .truncated("field '\(name)' at offset \(fieldStart) declares \(length) bytes, but only \(count - position) remain")
                }
                position += Int(length)
            default:
                return .malformed("field '\(name)' at offset \(fieldStart) has wire type \(wireType), which ONNX never uses")
            }
        }
        return .wellFormed
    }
}
