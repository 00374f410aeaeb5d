import CONNX
import CProtobufC
import MegaFSGraph
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the importer checks beyond well-formedness.
public struct ImportOptions: Sendable {
    /// Reject operators `isSupported` refuses (all of them listed at once, with counts).
    public var checkOperators: Bool
    /// Whether megafs can run `(opType, domain)`. Defaults to `OperatorRegistry.lookup`.
    public var isSupported: @Sendable (_ opType: String, _ domain: String) -> Bool
    /// Accept nodes outside the default ONNX domain ("" or "ai.onnx"). Off by default: nothing
    /// in megafs runs them; only tools that merely inspect a model want this.
    public var allowNonDefaultDomains: Bool

    public init(checkOperators: Bool = true,
                allowNonDefaultDomains: Bool = false,
                isSupported: @escaping @Sendable (_ opType: String, _ domain: String) -> Bool = ImportOptions.registrySupports) {
        self.checkOperators = checkOperators
        self.allowNonDefaultDomains = allowNonDefaultDomains
        self.isSupported = isSupported
    }

    /// The default support test: an operator is supported when `OperatorRegistry` knows it.
    public static let registrySupports: @Sendable (String, String) -> Bool = { opType, domain in
        OperatorRegistry.lookup(opType, domain: domain) != nil
    }

    /// Checks everything, operators against `OperatorRegistry`.
    public static var `default`: ImportOptions { ImportOptions() }
}

/// Reads an ONNX `ModelProto` into a `Graph`, validating it on the way.
///
/// - Initializers: `raw_data`, every typed field (`float_data`, `int32_data` for
///   int32/int8/uint8/bool/float16, `int64_data`) and external data (read straight into the
///   tensor's storage with 64-bit positioned reads; paths confined to the model's folder).
/// - Constant nodes stay nodes; graph inputs that are also initializers are constants, not inputs.
/// - `value_info` becomes `graph.valueTypes`; opset imports become `graph.opsets`.
/// - Metadata keys: `onnx.ir_version`, `onnx.producer_name`, `onnx.producer_version`,
///   `onnx.domain`, `onnx.model_version`, `onnx.doc_string`, `onnx.graph_doc_string`, and
///   `onnx.metadata.<key>` for each `metadata_props` entry.
/// - Nodes are sorted topologically (stable) at the end.
///
/// Every error thrown is an `ONNXError`.
public struct ONNXImporter: Sendable {
    /// Largest element count accepted for one tensor (2^34, 64 GiB of float32): anything bigger
    /// is a corrupt or hostile shape, not a MegaFS network.
    public static let maxElementCount = 1 << 34
    /// Largest tensor rank accepted.
    public static let maxRank = 32
    /// Most nodes in one model (all graphs and functions together). The full-size MegaFS
    /// networks have about 340-1030 nodes after conversion and a few thousand in their ONNX
    /// exports; a million-node file is a hostile one (docs/limits.md).
    public static let maxNodes = 1 << 18
    /// Deepest nesting of protobuf messages accepted (ONNX itself needs about 8:
    /// model, graph, value_info, type, tensor type, shape, dimension).
    public static let maxNestingDepth = 64
    /// libprotobuf-c may allocate `protobufBytesPerInputByte` bytes per byte of the file plus
    /// `protobufBaseBytes` while unpacking it. The fixtures need 1.3-3x their size; a graph of
    /// a million empty nodes (2 MB) would take 200 MB (100x), empty initializers 145x.
    public static let protobufBytesPerInputByte = 8
    public static let protobufBaseBytes = 64 << 20

    static func protobufMemoryBudget(forBytes count: Int) -> Int {
        let (scaled, overflow) = count.multipliedReportingOverflow(by: protobufBytesPerInputByte)
        return overflow ? Int.max : scaled + protobufBaseBytes
    }

    public var options: ImportOptions

    public init(options: ImportOptions = ImportOptions()) {
        self.options = options
    }

    /// Imports the model at `path`; external data is looked up relative to the file's folder.
    public func importModel(atPath path: String) throws -> Graph {
        let fd = FileIO.openForReading(path)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR { throw ONNXError.fileNotFound(path: path) }
            throw ONNXError.unreadable(path: path, reason: FileIO.errorString(code))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ONNXError.unreadable(path: path, reason: FileIO.errorString()) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw ONNXError.unreadable(path: path, reason: (info.st_mode & S_IFMT) == S_IFDIR ? "it is a directory" : "not a regular file")
        }
        let size = Int(info.st_size)
        guard size > 0 else { throw ONNXError.emptyFile(path: path) }

        // Map the file rather than copying it to the heap; unmapped right after unpacking.
        let model: UnsafeMutablePointer<Onnx__ModelProto>
        if let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED {
            defer { munmap(mapped, size) }
            model = try Self.unpack(UnsafeRawBufferPointer(start: mapped, count: size), source: path)
        } else {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            defer { buffer.deallocate() }
            if let reason = FileIO.readFully(fd: fd, into: buffer, count: size, offset: 0) {
                throw ONNXError.unreadable(path: path, reason: reason)
            }
            model = try Self.unpack(UnsafeRawBufferPointer(start: buffer, count: size), source: path)
        }
        return try convert(model, source: path, baseDirectory: FileIO.directory(of: path))
    }

    /// Imports a model from memory. External data, if any, is looked up relative to
    /// `baseDirectory`; without one, a model with external data is rejected.
    public func importModel(bytes: [UInt8], baseDirectory: String? = nil) throws -> Graph {
        try bytes.withUnsafeBytes { try importModel(buffer: $0, baseDirectory: baseDirectory) }
    }

    /// Imports a model from memory the caller owns (e.g. a mapped file); `buffer` is only read
    /// during the call.
    public func importModel(buffer: UnsafeRawBufferPointer, baseDirectory: String? = nil) throws -> Graph {
        let source = "ONNX data (\(buffer.count) bytes)"
        guard buffer.count > 0, buffer.baseAddress != nil else { throw ONNXError.emptyFile(path: source) }
        let model = try Self.unpack(buffer, source: source)
        return try convert(model, source: source, baseDirectory: baseDirectory)
    }

    // MARK: - Decoding

    private static func unpack(_ bytes: UnsafeRawBufferPointer, source: String) throws -> UnsafeMutablePointer<Onnx__ModelProto> {
        try ProtobufLimits.prescan(bytes, source: source)
        if let model = try ProtobufLimits.unpack(bytes, source: source) {
            return model
        }
        switch WireScan.diagnose(bytes) {
        case .truncated(let detail):
            throw ONNXError.truncated(source: source, detail: detail)
        case .malformed(let reason):
            throw ONNXError.notONNX(source: source, reason: reason)
        case .wellFormed:
            throw ONNXError.notONNX(source: source,
                                    reason: "protobuf decoding failed inside a nested message (corrupt or truncated data)")
        }
    }

    /// Converts and frees the unpacked model.
    private func convert(_ model: UnsafeMutablePointer<Onnx__ModelProto>, source: String,
                         baseDirectory: String?) throws -> Graph {
        defer { onnx__model_proto__free_unpacked(model, nil) }
        guard let g = model.pointee.graph else {
            throw ONNXError.notONNX(source: source, reason: "the protobuf holds no graph")
        }
        var graph = Graph(name: string(g.pointee.name))
        graph.opsets = [:]
        for opset in messages(model.pointee.opset_import, model.pointee.n_opset_import) {
            let domain = string(opset.pointee.domain)
            let version = Int(opset.pointee.version)
            graph.opsets[domain] = max(graph.opsets[domain] ?? version, version)
        }
        guard graph.opsets[""] != nil || graph.opsets["ai.onnx"] != nil else {
            throw ONNXError.invalidModel("the model imports no opset for the default ONNX domain")
        }
        graph.metadata = Self.metadata(model, graph: g)

        let nodes = messages(g.pointee.node, g.pointee.n_node)
        try checkNodes(nodes)

        if g.pointee.n_sparse_initializer > 0 {
            let names = messages(g.pointee.sparse_initializer, g.pointee.n_sparse_initializer)
                .map { "'\(string($0.pointee.values?.pointee.name))'" }
            throw ONNXError.invalidModel("sparse initializers are not supported: \(names.joined(separator: ", "))")
        }

        let decoder = TensorDecoder(external: ExternalDataReader(baseDirectory: baseDirectory))
        // Shapes and types of all initializers first (cheap), so a bad one fails before we read
        // a gigabyte of weights.
        let initializers = messages(g.pointee.initializer, g.pointee.n_initializer)
        for t in initializers {
            let name = string(t.pointee.name)
            _ = try TensorDecoder.shape(of: t, name: name)
            let code = t.pointee.has_data_type != 0 ? t.pointee.data_type : 0
            guard DType(rawValue: code) != nil else { throw ONNXError.unsupportedDataType(name: name, code: code) }
        }
        for t in initializers {
            let name = string(t.pointee.name)
            guard !name.isEmpty else { throw ONNXError.invalidModel("an initializer has no name") }
            guard graph.initializers[name] == nil else {
                throw ONNXError.invalidModel("initializer '\(name)' is defined twice")
            }
            graph.initializers[name] = try decoder.decode(t, name: name, releaseRawData: true)
        }

        for input in messages(g.pointee.input, g.pointee.n_input) {
            let name = string(input.pointee.name)
            // Before IR 4 every initializer was also listed as an input: for us it is a constant.
            if graph.initializers[name] != nil { continue }
            guard let info = try Self.valueInfo(input, role: "graph input", required: true) else { continue }
            guard !graph.inputs.contains(where: { $0.name == info.name }) else {
                throw ONNXError.invalidValueInfo(value: info.name, detail: "listed twice as a graph input")
            }
            graph.inputs.append(info)
        }
        for output in messages(g.pointee.output, g.pointee.n_output) {
            guard let info = try Self.valueInfo(output, role: "graph output", required: true) else { continue }
            guard !graph.outputs.contains(where: { $0.name == info.name }) else {
                throw ONNXError.invalidValueInfo(value: info.name, detail: "listed twice as a graph output")
            }
            graph.outputs.append(info)
        }
        for value in messages(g.pointee.value_info, g.pointee.n_value_info) {
            if let info = try Self.valueInfo(value, role: "value_info entry", required: false) {
                graph.valueTypes[info.name] = info.type
            }
        }

        graph.nodes.reserveCapacity(nodes.count)
        for n in nodes {
            graph.nodes.append(try node(n, decoder: decoder))
        }
        do {
            try graph.sortTopologically()
        } catch let error as GraphError {
            throw ONNXError.invalidGraph(Self.stripPrefix(error))
        }
        return graph
    }

    private static func stripPrefix(_ error: GraphError) -> String {
        if case .invalidGraph(let message) = error { return message }
        return error.description
    }

    private static func metadata(_ model: UnsafeMutablePointer<Onnx__ModelProto>,
                                 graph g: UnsafeMutablePointer<Onnx__GraphProto>) -> [String: String] {
        var metadata: [String: String] = [:]
        let m = model.pointee
        if m.has_ir_version != 0 { metadata["onnx.ir_version"] = String(m.ir_version) }
        if m.has_model_version != 0 { metadata["onnx.model_version"] = String(m.model_version) }
        let strings = [("onnx.producer_name", m.producer_name), ("onnx.producer_version", m.producer_version),
                       ("onnx.domain", m.domain), ("onnx.doc_string", m.doc_string),
                       ("onnx.graph_doc_string", g.pointee.doc_string)]
        for (key, value) in strings where !string(value).isEmpty {
            metadata[key] = string(value)
        }
        for entry in messages(m.metadata_props, m.n_metadata_props) {
            metadata["onnx.metadata." + string(entry.pointee.key)] = string(entry.pointee.value)
        }
        return metadata
    }

    /// Structure and operator checks over all nodes, before any weight is read: subgraphs and
    /// control flow, then foreign domains, then unsupported operators, each listing every case.
    private func checkNodes(_ nodes: [UnsafeMutablePointer<Onnx__NodeProto>]) throws {
        let graphKinds: Set<UInt32> = [ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH.rawValue,
                                       ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS.rawValue]
        var controlFlow: [String] = []
        var foreign: [(opType: String, domain: String)] = []
        var unsupported: [(opType: String, domain: String)] = []
        for n in nodes {
            let opType = string(n.pointee.op_type)
            let domain = string(n.pointee.domain)
            let label = Self.label(n)
            let subgraphs = messages(n.pointee.attribute, n.pointee.n_attribute).filter {
                graphKinds.contains($0.pointee.type.rawValue) || $0.pointee.g != nil || $0.pointee.n_graphs > 0
            }
            if ["If", "Loop", "Scan"].contains(opType) && (domain.isEmpty || domain == "ai.onnx") {
                controlFlow.append("node \(label) (\(opType))")
            } else if !subgraphs.isEmpty {
                let names = subgraphs.map { "'\(string($0.pointee.name))'" }.joined(separator: ", ")
                controlFlow.append("node \(label) (\(opType)) has graph attribute \(names)")
            }
            if domain.isEmpty || domain == "ai.onnx" {
                if options.checkOperators && !options.isSupported(opType, domain) {
                    unsupported.append((opType, domain))
                }
            } else if !options.allowNonDefaultDomains {
                foreign.append((opType, domain))
            }
        }
        if !controlFlow.isEmpty { throw ONNXError.controlFlow(nodes: controlFlow) }
        if !foreign.isEmpty { throw ONNXError.nonDefaultDomains(OperatorCount.tally(foreign)) }
        if !unsupported.isEmpty { throw ONNXError.unsupportedOperators(OperatorCount.tally(unsupported)) }
    }

    /// A node for messages: `'name'`, or the op type and first output when it has no name.
    private static func label(_ n: UnsafeMutablePointer<Onnx__NodeProto>) -> String {
        let name = string(n.pointee.name)
        if !name.isEmpty { return "'\(name)'" }
        let first = n.pointee.n_output > 0 ? string(n.pointee.output[0]) : "?"
        return "\(string(n.pointee.op_type))(\(first))"
    }

    private func node(_ n: UnsafeMutablePointer<Onnx__NodeProto>, decoder: TensorDecoder) throws -> Node {
        let inputs = (0..<n.pointee.n_input).map { string(n.pointee.input[$0]) }
        let outputs = (0..<n.pointee.n_output).map { string(n.pointee.output[$0]) }
        var node = Node(name: string(n.pointee.name), opType: string(n.pointee.op_type),
                        domain: string(n.pointee.domain), inputs: inputs, outputs: outputs)
        let label = Self.label(n)
        for a in messages(n.pointee.attribute, n.pointee.n_attribute) {
            let name = string(a.pointee.name)
            guard !name.isEmpty else { throw ONNXError.invalidModel("node \(label) has an attribute without a name") }
            guard node.attributes[name] == nil else {
                throw ONNXError.invalidModel("node \(label) has attribute '\(name)' twice")
            }
            node.attributes[name] = try attribute(a, name: name, nodeLabel: label, node: node, decoder: decoder)
        }
        return node
    }

    private func attribute(_ a: UnsafeMutablePointer<Onnx__AttributeProto>, name: String, nodeLabel: String,
                           node: Node, decoder: TensorDecoder) throws -> Attribute {
        let p = a.pointee
        if !string(p.ref_attr_name).isEmpty {
            throw ONNXError.unsupportedAttribute(node: nodeLabel, attribute: name,
                                                 kind: "reference to function attribute '\(string(p.ref_attr_name))'")
        }
        switch p.type {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
            return .float(p.f)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
            return .int(Int(p.i))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
            return .string(string(p.s))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
            guard let t = p.t else {
                throw ONNXError.invalidModel("node \(nodeLabel): attribute '\(name)' is of kind TENSOR but holds no tensor")
            }
            let tensorName = string(t.pointee.name)
            let label = tensorName.isEmpty ? "\(node.displayName).\(name)" : tensorName
            return .tensor(try decoder.decode(t, name: label, releaseRawData: true))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
            return .floats(p.n_floats > 0 ? Array(UnsafeBufferPointer(start: p.floats, count: p.n_floats)) : [])
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
            return .ints(p.n_ints > 0 ? UnsafeBufferPointer(start: p.ints, count: p.n_ints).map { Int($0) } : [])
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
            return .strings(p.n_strings > 0 ? UnsafeBufferPointer(start: p.strings, count: p.n_strings).map { string($0) } : [])
        default:
            let kinds: [UInt32: String] = [
                0: "UNDEFINED (no type set)", 5: "GRAPH", 9: "TENSORS", 10: "GRAPHS", 11: "SPARSE_TENSOR",
                12: "SPARSE_TENSORS", 13: "TYPE_PROTO", 14: "TYPE_PROTOS",
            ]
            let raw = p.type.rawValue
            throw ONNXError.unsupportedAttribute(node: nodeLabel, attribute: name, kind: kinds[raw] ?? "type code \(raw)")
        }
    }

    /// A graph input/output or value_info entry. Returns nil for value_info entries that carry
    /// no usable type (legal in ONNX: they are hints).
    private static func valueInfo(_ v: UnsafeMutablePointer<Onnx__ValueInfoProto>, role: String,
                                  required: Bool) throws -> ValueInfo? {
        let name = string(v.pointee.name)
        guard !name.isEmpty else { throw ONNXError.invalidModel("a \(role) has no name") }
        guard let type = v.pointee.type else {
            if required { throw ONNXError.invalidValueInfo(value: name, detail: "the \(role) has no type") }
            return nil
        }
        guard type.pointee.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, let tensorType = type.pointee.tensor_type else {
            let kinds: [UInt32: String] = [0: "no type", 4: "a sequence", 5: "a map", 7: "an opaque value",
                                           8: "a sparse tensor", 9: "an optional"]
            let kind = kinds[type.pointee.value_case.rawValue] ?? "not a tensor"
            if !required && type.pointee.value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET { return nil }
            throw ONNXError.invalidValueInfo(value: name, detail: "the \(role) is \(kind); megafs handles only tensors")
        }
        let code = tensorType.pointee.has_elem_type != 0 ? tensorType.pointee.elem_type : 0
        if code == 0 {
            if required { throw ONNXError.invalidValueInfo(value: name, detail: "the \(role) has no element type") }
            return nil
        }
        guard let dtype = DType(rawValue: code) else { throw ONNXError.unsupportedDataType(name: name, code: code) }
        guard let shape = tensorType.pointee.shape else {
            return ValueInfo(name: name, type: TensorType(dtype: dtype, shape: nil))
        }
        var dims: [Dim] = []
        for (axis, d) in messages(shape.pointee.dim, shape.pointee.n_dim).enumerated() {
            switch d.pointee.value_case {
            case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE:
                let value = d.pointee.dim_value
                guard value >= 0, value <= Int64(maxElementCount) else {
                    throw ONNXError.invalidValueInfo(value: name, detail: "dimension \(axis) of the \(role) is \(value)")
                }
                dims.append(.fixed(Int(value)))
            case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM:
                dims.append(.symbolic(string(d.pointee.dim_param)))
            default:
                dims.append(.unknown)
            }
        }
        guard dims.count <= maxRank else {
            throw ONNXError.invalidValueInfo(value: name, detail: "rank \(dims.count) is above the limit of \(maxRank)")
        }
        // A declared shape is what the runtime plans and allocates for: bound it like a tensor's.
        var elements = 1
        for case .fixed(let d) in dims where !dims.contains(.fixed(0)) {
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow, product <= maxElementCount else {
                throw ONNXError.invalidValueInfo(value: name,
                                                 detail: "the \(role)'s shape [\(dims.map(\.description).joined(separator: ","))] has more elements than the limit of \(maxElementCount) (2^34)")
            }
            elements = product
        }
        return ValueInfo(name: name, type: TensorType(dtype: dtype, shape: dims))
    }
}
