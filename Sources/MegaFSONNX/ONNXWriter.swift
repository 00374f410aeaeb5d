import CONNX
import CProtobufC
import MegaFSGraph
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a `Graph` as an ONNX `ModelProto`.
///
/// Initializers are stored as `raw_data`, or, when writing to a file with an
/// `externalDataThreshold`, those of at least that many bytes go to one side file next to the
/// model (ONNX external data, offsets aligned to `externalDataAlignment`). Tensor attributes are
/// always inline. Nodes keep their order; attributes are written sorted by name.
///
/// Metadata: `onnx.doc_string`, `onnx.domain`, `onnx.model_version` and `onnx.graph_doc_string`
/// go back to their fields; `onnx.metadata.<key>` becomes `metadata_props` entry `<key>`, and any
/// key outside the `onnx.` namespace becomes a `metadata_props` entry as is. The producer is
/// `options.producerName` (the file's origin is megafs, whatever the graph came from).
public struct ONNXWriter: Sendable {
    public struct Options: Sendable {
        /// ONNX IR version; nil picks the lowest one that allows the graph's default opset.
        public var irVersion: Int?
        public var producerName: String
        public var producerVersion: String
        /// Initializers of at least this many bytes go to the external data file (file writes
        /// only; nil keeps everything inline). ONNX's own tools use 1024: keep small tensors,
        /// shape operands above all, inline, since ONNX shape inference (and so ONNX Runtime)
        /// cannot read shape tensors stored externally.
        public var externalDataThreshold: Int?
        /// The side file's name, in the model's folder; nil means `<model file name>.data`.
        public var externalDataFileName: String?
        /// Offset alignment of each tensor in the side file (4096 allows mmap).
        public var externalDataAlignment: Int

        public init(irVersion: Int? = nil, producerName: String = "megafs", producerVersion: String = "",
                    externalDataThreshold: Int? = nil, externalDataFileName: String? = nil,
                    externalDataAlignment: Int = 4096) {
            self.irVersion = irVersion
            self.producerName = producerName
            self.producerVersion = producerVersion
            self.externalDataThreshold = externalDataThreshold
            self.externalDataFileName = externalDataFileName
            self.externalDataAlignment = externalDataAlignment
        }
    }

    public var options: Options

    public init(options: Options = Options()) {
        self.options = options
    }

    /// The protobuf bytes of `graph`, every tensor inline. Throws `modelTooLarge` over 2 GB.
    public func serialize(_ graph: Graph) throws -> [UInt8] {
        let arena = CArena()
        let model = try buildModel(graph, arena: arena, external: nil)
        return try pack(model)
    }

    /// Writes `graph` to `path`, large initializers to the side file when
    /// `options.externalDataThreshold` is set.
    public func write(_ graph: Graph, to path: String) throws {
        let arena = CArena()
        var sink: ExternalDataSink?
        if let threshold = options.externalDataThreshold {
            let fileName = options.externalDataFileName ?? FileIO.fileName(of: path) + ".data"
            guard !fileName.isEmpty, !fileName.hasPrefix("/"), !fileName.split(separator: "/").contains("..") else {
                throw ONNXError.writeFailed(path: fileName, reason: "the external data file name must be relative to the model's folder")
            }
            let dataPath = FileIO.directory(of: path) + "/" + fileName
            sink = try ExternalDataSink(path: dataPath, location: fileName, threshold: max(threshold, 0),
                                        alignment: max(options.externalDataAlignment, 1))
        }
        let model = try buildModel(graph, arena: arena, external: sink)
        try sink?.finish()
        let bytes = try pack(model)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ONNXError.writeFailed(path: path, reason: FileIO.errorString()) }
        defer { close(fd) }
        if let reason = bytes.withUnsafeBytes({ FileIO.writeFully(fd: fd, $0) }) {
            throw ONNXError.writeFailed(path: path, reason: reason)
        }
    }

    // MARK: - Building the protobuf-c structures

    private func pack(_ model: UnsafeMutablePointer<Onnx__ModelProto>) throws -> [UInt8] {
        let size = onnx__model_proto__get_packed_size(model)
        guard size <= Int(Int32.max) else { throw ONNXError.modelTooLarge(bytes: size) }
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = onnx__model_proto__pack(model, buffer.baseAddress)
        }
    }

    /// Lowest IR version that allows the default opset (IR 8: opset 17, 9: 19, 10: 21, 11: 23).
    static func irVersion(forOpset opset: Int) -> Int {
        switch opset {
        case ...17: return 8
        case ...19: return 9
        case ...21: return 10
        default: return 11
        }
    }

    private func buildModel(_ graph: Graph, arena: CArena, external: ExternalDataSink?) throws -> UnsafeMutablePointer<Onnx__ModelProto> {
        let model: UnsafeMutablePointer<Onnx__ModelProto> = arena.message(onnx__model_proto__init)
        model.pointee.has_ir_version = 1
        model.pointee.ir_version = Int64(options.irVersion ?? Self.irVersion(forOpset: graph.opset))
        model.pointee.producer_name = arena.optionalString(options.producerName)
        model.pointee.producer_version = arena.optionalString(options.producerVersion)

        var props: [(String, String)] = []
        for (key, value) in graph.metadata.sorted(by: { $0.key < $1.key }) {
            switch key {
            case "onnx.doc_string": model.pointee.doc_string = arena.optionalString(value)
            case "onnx.domain": model.pointee.domain = arena.optionalString(value)
            case "onnx.model_version":
                if let version = Int64(value) {
                    model.pointee.has_model_version = 1
                    model.pointee.model_version = version
                }
            case _ where key.hasPrefix("onnx.metadata."):
                props.append((String(key.dropFirst("onnx.metadata.".count)), value))
            case _ where key.hasPrefix("onnx."):
                break  // ir_version, producer_*: facts about the source file, not this one.
            default:
                props.append((key, value))
            }
        }
        let entries = props.sorted { $0.0 < $1.0 }.map { key, value -> UnsafeMutablePointer<Onnx__StringStringEntryProto> in
            let entry: UnsafeMutablePointer<Onnx__StringStringEntryProto> = arena.message(onnx__string_string_entry_proto__init)
            entry.pointee.key = arena.string(key)
            entry.pointee.value = arena.string(value)
            return entry
        }
        (model.pointee.n_metadata_props, model.pointee.metadata_props) = arena.pointerArray(entries)

        let opsets = graph.opsets.sorted { $0.key < $1.key }.map { domain, version -> UnsafeMutablePointer<Onnx__OperatorSetIdProto> in
            let opset: UnsafeMutablePointer<Onnx__OperatorSetIdProto> = arena.message(onnx__operator_set_id_proto__init)
            opset.pointee.domain = arena.string(domain)
            opset.pointee.has_version = 1
            opset.pointee.version = Int64(version)
            return opset
        }
        (model.pointee.n_opset_import, model.pointee.opset_import) = arena.pointerArray(opsets)

        let g: UnsafeMutablePointer<Onnx__GraphProto> = arena.message(onnx__graph_proto__init)
        model.pointee.graph = g
        g.pointee.name = arena.optionalString(graph.name)
        g.pointee.doc_string = arena.optionalString(graph.metadata["onnx.graph_doc_string"] ?? "")

        var initializers: [UnsafeMutablePointer<Onnx__TensorProto>] = []
        for (name, tensor) in graph.initializers.sorted(by: { $0.key < $1.key }) {
            initializers.append(try tensorProto(tensor, name: name, arena: arena, external: external))
        }
        (g.pointee.n_initializer, g.pointee.initializer) = arena.pointerArray(initializers)
        (g.pointee.n_input, g.pointee.input) = arena.pointerArray(graph.inputs.map { valueInfo($0, arena: arena) })
        (g.pointee.n_output, g.pointee.output) = arena.pointerArray(graph.outputs.map { valueInfo($0, arena: arena) })
        let valueInfos = graph.valueTypes.sorted { $0.key < $1.key }.map {
            valueInfo(ValueInfo(name: $0.key, type: $0.value), arena: arena)
        }
        (g.pointee.n_value_info, g.pointee.value_info) = arena.pointerArray(valueInfos)

        var nodes: [UnsafeMutablePointer<Onnx__NodeProto>] = []
        for node in graph.nodes {
            nodes.append(try nodeProto(node, arena: arena))
        }
        (g.pointee.n_node, g.pointee.node) = arena.pointerArray(nodes)
        return model
    }

    private func nodeProto(_ node: Node, arena: CArena) throws -> UnsafeMutablePointer<Onnx__NodeProto> {
        let n: UnsafeMutablePointer<Onnx__NodeProto> = arena.message(onnx__node_proto__init)
        n.pointee.name = arena.optionalString(node.name)
        n.pointee.op_type = arena.string(node.opType)
        n.pointee.domain = arena.optionalString(node.domain)
        (n.pointee.n_input, n.pointee.input) = arena.stringArray(node.inputs)
        (n.pointee.n_output, n.pointee.output) = arena.stringArray(node.outputs)
        var attributes: [UnsafeMutablePointer<Onnx__AttributeProto>] = []
        for (name, value) in node.attributes.sorted(by: { $0.key < $1.key }) {
            let a: UnsafeMutablePointer<Onnx__AttributeProto> = arena.message(onnx__attribute_proto__init)
            a.pointee.name = arena.string(name)
            a.pointee.has_type = 1
            switch value {
            case .float(let v):
                a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
                a.pointee.has_f = 1
                a.pointee.f = v
            case .int(let v):
                a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
                a.pointee.has_i = 1
                a.pointee.i = Int64(v)
            case .string(let v):
                a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING
                a.pointee.has_s = 1
                a.pointee.s = arena.binary(v)
            case .tensor(let t):
                a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR
                a.pointee.t = try tensorProto(t, name: "", arena: arena, external: nil)
            case .floats(let v):
                a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS
                (a.pointee.n_floats, a.pointee.floats) = arena.array(v)
            case .ints(let v):
                a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS
                (a.pointee.n_ints, a.pointee.ints) = arena.array(v.map { Int64($0) })
            case .strings(let v):
                a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS
                (a.pointee.n_strings, a.pointee.strings) = arena.array(v.map { arena.binary($0) })
            }
            attributes.append(a)
        }
        (n.pointee.n_attribute, n.pointee.attribute) = arena.pointerArray(attributes)
        return n
    }

    /// A TensorProto whose raw_data points at the tensor's own storage (no copy until packing),
    /// or whose data goes to `external`.
    private func tensorProto(_ tensor: Tensor, name: String, arena: CArena,
                             external: ExternalDataSink?) throws -> UnsafeMutablePointer<Onnx__TensorProto> {
        let t: UnsafeMutablePointer<Onnx__TensorProto> = arena.message(onnx__tensor_proto__init)
        t.pointee.name = arena.optionalString(name)
        t.pointee.has_data_type = 1
        t.pointee.data_type = tensor.dtype.rawValue
        (t.pointee.n_dims, t.pointee.dims) = arena.array(tensor.shape.map { Int64($0) })
        arena.retain(tensor.storage)
        if let external, tensor.byteCount > 0, tensor.byteCount >= external.threshold {
            let offset = try external.append(tensor.bytes)
            let keys = [("location", external.location), ("offset", String(offset)), ("length", String(tensor.byteCount))]
            let entries = keys.map { key, value -> UnsafeMutablePointer<Onnx__StringStringEntryProto> in
                let entry: UnsafeMutablePointer<Onnx__StringStringEntryProto> = arena.message(onnx__string_string_entry_proto__init)
                entry.pointee.key = arena.string(key)
                entry.pointee.value = arena.string(value)
                return entry
            }
            (t.pointee.n_external_data, t.pointee.external_data) = arena.pointerArray(entries)
            t.pointee.has_data_location = 1
            t.pointee.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL
        } else {
            t.pointee.has_raw_data = 1
            t.pointee.raw_data = ProtobufCBinaryData(len: tensor.byteCount,
                                                     data: tensor.storage.pointer.assumingMemoryBound(to: UInt8.self))
        }
        return t
    }

    private func valueInfo(_ info: ValueInfo, arena: CArena) -> UnsafeMutablePointer<Onnx__ValueInfoProto> {
        let v: UnsafeMutablePointer<Onnx__ValueInfoProto> = arena.message(onnx__value_info_proto__init)
        v.pointee.name = arena.string(info.name)
        let type: UnsafeMutablePointer<Onnx__TypeProto> = arena.message(onnx__type_proto__init)
        let tensorType: UnsafeMutablePointer<Onnx__TypeProto__Tensor> = arena.message(onnx__type_proto__tensor__init)
        tensorType.pointee.has_elem_type = 1
        tensorType.pointee.elem_type = info.type.dtype.rawValue
        if let dims = info.type.shape {
            let shape: UnsafeMutablePointer<Onnx__TensorShapeProto> = arena.message(onnx__tensor_shape_proto__init)
            let protos = dims.map { dim -> UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension> in
                let d: UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension> = arena.message(onnx__tensor_shape_proto__dimension__init)
                switch dim {
                case .fixed(let value):
                    d.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                    d.pointee.dim_value = Int64(value)
                case .symbolic(let name) where !name.isEmpty:
                    d.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                    d.pointee.dim_param = arena.string(name)
                case .symbolic:
                    break  // unknown: a dimension with neither value nor name
                }
                return d
            }
            (shape.pointee.n_dim, shape.pointee.dim) = arena.pointerArray(protos)
            tensorType.pointee.shape = shape
        }
        type.pointee.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
        type.pointee.tensor_type = tensorType
        v.pointee.type = type
        return v
    }
}

/// Appends tensors to the external data side file, each at an aligned offset.
final class ExternalDataSink {
    let path: String
    let location: String
    let threshold: Int
    let alignment: Int
    private var fd: Int32
    private var offset: Int64 = 0

    init(path: String, location: String, threshold: Int, alignment: Int) throws {
        self.path = path
        self.location = location
        self.threshold = threshold
        self.alignment = alignment
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ONNXError.writeFailed(path: path, reason: FileIO.errorString()) }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Writes `bytes` at the next aligned offset and returns that offset.
    func append(_ bytes: UnsafeRawBufferPointer) throws -> Int64 {
        let aligned = (offset + Int64(alignment) - 1) / Int64(alignment) * Int64(alignment)
        if aligned > offset {
            let padding = [UInt8](repeating: 0, count: Int(aligned - offset))
            if let reason = padding.withUnsafeBytes({ FileIO.writeFully(fd: fd, $0) }) {
                throw ONNXError.writeFailed(path: path, reason: reason)
            }
        }
        if let reason = FileIO.writeFully(fd: fd, bytes) {
            throw ONNXError.writeFailed(path: path, reason: reason)
        }
        offset = aligned + Int64(bytes.count)
        return aligned
    }

    func finish() throws {
        guard fd >= 0 else { return }
        let result = close(fd)
        fd = -1
        if result != 0 { throw ONNXError.writeFailed(path: path, reason: FileIO.errorString()) }
    }
}

/// Owns every C allocation of one protobuf-c message tree being built, and keeps the tensor
/// storages its `raw_data` fields point into alive, until the tree is packed.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []
    private var storages: [TensorStorage] = []

    deinit { for pointer in allocations { free(pointer) } }

    private func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = calloc(max(count, 1), MemoryLayout<T>.stride)!
        allocations.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// A message initialised by its protobuf-c `__init` function.
    func message<T>(_ initialize: (UnsafeMutablePointer<T>?) -> Void) -> UnsafeMutablePointer<T> {
        let pointer = allocate(T.self, count: 1)
        initialize(pointer)
        return pointer
    }

    func string(_ value: String) -> UnsafeMutablePointer<CChar> {
        let copy = strdup(value)!
        allocations.append(UnsafeMutableRawPointer(copy))
        return copy
    }

    /// nil for "" (the field is then left out).
    func optionalString(_ value: String) -> UnsafeMutablePointer<CChar>? {
        value.isEmpty ? nil : string(value)
    }

    func binary(_ value: String) -> ProtobufCBinaryData {
        let bytes = Array(value.utf8)
        let (count, pointer) = array(bytes)
        return ProtobufCBinaryData(len: count, data: pointer)
    }

    func array<T>(_ values: [T]) -> (Int, UnsafeMutablePointer<T>?) {
        guard !values.isEmpty else { return (0, nil) }
        let pointer = allocate(T.self, count: values.count)
        for (i, v) in values.enumerated() { (pointer + i).initialize(to: v) }
        return (values.count, pointer)
    }

    func pointerArray<T>(_ values: [UnsafeMutablePointer<T>]) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<T>?>?) {
        array(values.map { Optional($0) })
    }

    func stringArray(_ values: [String]) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) {
        array(values.map { Optional(string($0)) })
    }

    func retain(_ storage: TensorStorage) { storages.append(storage) }
}
