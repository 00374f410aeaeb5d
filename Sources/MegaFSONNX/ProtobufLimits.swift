import CONNX
import CProtobufC
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bounds on what decoding an ONNX protobuf may cost. libprotobuf-c has none of its own: it
/// recurses once per nested message (about 1 KB of stack each: a 34 KB file nested 8000 deep
/// overflows an 8 MB stack) and allocates for every field it meets (a 2-byte empty message
/// costs a ~100-byte struct). So the bytes are pre-scanned for nesting and node count before
/// they are handed over, and its allocations are counted against a budget while it unpacks.
enum ProtobufLimits {
    /// Walks `bytes` as a ModelProto with libprotobuf-c's own descriptors (so every field of
    /// `onnx.proto` is known) and throws when messages nest deeper than
    /// `ONNXImporter.maxNestingDepth` or the model holds more than `ONNXImporter.maxNodes` nodes.
    /// Malformed wire data just ends the walk: libprotobuf-c rejects it next and `WireScan`
    /// explains why.
    static func prescan(_ bytes: UnsafeRawBufferPointer, source: String) throws {
        var model = Onnx__ModelProto()
        onnx__model_proto__init(&model)
        var node = Onnx__NodeProto()
        onnx__node_proto__init(&node)
        var scan = Scan(bytes: bytes, source: source, nodeDescriptor: UnsafeRawPointer(node.base.descriptor))
        _ = try scan.walk(from: 0, to: bytes.count, descriptor: model.base.descriptor, depth: 1)
        if scan.nodes > ONNXImporter.maxNodes {
            throw ONNXError.limitExceeded(source: source,
                                          detail: "the model has \(scan.nodes) nodes, above the limit of \(ONNXImporter.maxNodes) (ONNXImporter.maxNodes)")
        }
    }

    private struct Scan {
        let bytes: UnsafeRawBufferPointer
        let source: String
        let nodeDescriptor: UnsafeRawPointer?
        /// NodeProto messages seen anywhere (graph, functions, subgraphs): protobuf merges a
        /// repeated non-repeated message field, so counting per graph could be split and evaded.
        var nodes = 0

        private func varint(_ position: inout Int, _ end: Int) -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while position < end, shift < 64 {
                let byte = bytes[position]
                position += 1
                value |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }

        /// Returns false on malformed wire data.
        mutating func walk(from start: Int, to end: Int, descriptor: UnsafePointer<ProtobufCMessageDescriptor>?,
                           depth: Int) throws -> Bool {
            var position = start
            while position < end {
                guard let tag = varint(&position, end) else { return false }
                let wireType = tag & 7
                switch wireType {
                case 0:
                    guard varint(&position, end) != nil else { return false }
                case 1, 5:
                    let size = wireType == 1 ? 8 : 4
                    guard end - position >= size else { return false }
                    position += size
                case 2:
                    guard let length = varint(&position, end), length <= UInt64(end - position) else { return false }
                    let fieldEnd = position + Int(length)
                    if let descriptor, tag >> 3 <= UInt64(UInt32.max),
                       let field = protobuf_c_message_descriptor_get_field(descriptor, UInt32(tag >> 3)),
                       field.pointee.type == PROTOBUF_C_TYPE_MESSAGE {
                        let sub = field.pointee.descriptor?.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
                        if UnsafeRawPointer(sub) == nodeDescriptor { nodes += 1 }
                        guard depth < ONNXImporter.maxNestingDepth else {
                            throw ONNXError.limitExceeded(source: source,
                                                          detail: "protobuf messages are nested more than \(ONNXImporter.maxNestingDepth) deep (at byte offset \(position)), above the limit of \(ONNXImporter.maxNestingDepth) (ONNXImporter.maxNestingDepth)")
                        }
                        guard try walk(from: position, to: fieldEnd, descriptor: sub, depth: depth + 1) else { return false }
                    }
                    position = fieldEnd
                default:
                    return false   // groups (3, 4) and unknown wire types: libprotobuf-c refuses them
                }
            }
            return true
        }
    }

    /// Unpacks a ModelProto with every allocation counted (with a typical malloc header each)
    /// against `ONNXImporter.protobufMemoryBudget(forBytes:)`; once it is spent the allocator
    /// returns NULL, libprotobuf-c frees what it built and fails, and this throws.
    /// Allocations are plain `malloc`, so the result is freed with the default allocator.
    static func unpack(_ bytes: UnsafeRawBufferPointer, source: String) throws -> UnsafeMutablePointer<Onnx__ModelProto>? {
        let budget = Budget(remaining: ONNXImporter.protobufMemoryBudget(forBytes: bytes.count))
        let data = Unmanaged.passRetained(budget)
        defer { data.release() }
        var allocator = ProtobufCAllocator(
            alloc: { data, size in
                let budget = Unmanaged<Budget>.fromOpaque(data!).takeUnretainedValue()
                let cost = size + 16
                guard cost <= budget.remaining else { budget.exceeded = true; return nil }
                budget.remaining -= cost
                return malloc(size)
            },
            free: { _, pointer in free(pointer) },
            allocator_data: data.toOpaque())
        let model = onnx__model_proto__unpack(&allocator, bytes.count, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
        if model == nil && budget.exceeded {
            let limit = ONNXImporter.protobufMemoryBudget(forBytes: bytes.count)
            throw ONNXError.limitExceeded(source: source,
                                          detail: "decoding the protobuf needs more than \(limit) bytes of memory, above the limit of \(ONNXImporter.protobufBytesPerInputByte) x the file size + \(ONNXImporter.protobufBaseBytes >> 20) MiB (ONNXImporter.protobufMemoryBudget)")
        }
        return model
    }

    private final class Budget {
        var remaining: Int
        var exceeded = false
        init(remaining: Int) { self.remaining = remaining }
    }
}
