import MegaFSGraph

/// Attribute kind codes on disk: ONNX's `AttributeProto.AttributeType` numbers.
enum AttributeKind: UInt8 {
    case float = 1, int = 2, string = 3, tensor = 4, floats = 6, ints = 7, strings = 8
}

// MARK: - Encoding

/// Encodes everything of a graph except its initializers' data (those go to the tensor
/// directory and frames) and its metadata (metadata section).
struct GraphSectionEncoder {
    private var strings: [String] = []
    private var stringIndex: [String: UInt32] = [:]
    private var body = ByteWriter()

    static func encode(_ graph: Graph) throws -> [UInt8] {
        var e = GraphSectionEncoder()
        try e.encodeBody(graph)
        var out = ByteWriter()
        out.u32(e.strings.count)
        for s in e.strings { out.string(s) }
        out.raw(e.body.bytes)
        return out.bytes
    }

    private mutating func ref(_ s: String) throws -> UInt32 {
        if let i = stringIndex[s] { return i }
        guard s.utf8.count <= ModelFileLimits.maxStringBytes else {
            throw ModelFileError.invalidInput("a name or string of \(s.utf8.count) bytes exceeds maxStringBytes (\(ModelFileLimits.maxStringBytes)): \(s.prefix(80))...")
        }
        guard strings.count < ModelFileLimits.maxStrings else {
            throw ModelFileError.invalidInput("more than \(ModelFileLimits.maxStrings) distinct strings")
        }
        let i = UInt32(strings.count)
        strings.append(s)
        stringIndex[s] = i
        return i
    }

    private func limit(_ n: Int, _ max: Int, _ what: String) throws {
        if n > max { throw ModelFileError.invalidInput("\(n) \(what), above the limit of \(max)") }
    }

    private mutating func encodeBody(_ g: Graph) throws {
        body.u32(try ref(g.name))
        try limit(g.opsets.count, ModelFileLimits.maxOpsets, "opsets")
        body.u32(g.opsets.count)
        for (domain, version) in g.opsets.sorted(by: { $0.key < $1.key }) {
            body.u32(try ref(domain))
            body.i64(Int64(version))
        }
        for list in [g.inputs, g.outputs] {
            try limit(list.count, ModelFileLimits.maxGraphValues, "graph inputs or outputs")
            body.u32(list.count)
            for v in list {
                body.u32(try ref(v.name))
                try type(v.type, "value \(v.name)")
            }
        }
        try limit(g.valueTypes.count, ModelFileLimits.maxGraphValues, "value types")
        body.u32(g.valueTypes.count)
        for (name, t) in g.valueTypes.sorted(by: { $0.key < $1.key }) {
            body.u32(try ref(name))
            try type(t, "value \(name)")
        }
        try limit(g.nodes.count, ModelFileLimits.maxNodes, "nodes")
        body.u32(g.nodes.count)
        for node in g.nodes {
            body.u32(try ref(node.name))
            body.u32(try ref(node.opType))
            body.u32(try ref(node.domain))
            for list in [node.inputs, node.outputs] {
                try limit(list.count, ModelFileLimits.maxNodeInputsOutputs, "inputs or outputs of node \(node.displayName)")
                body.u32(list.count)
                for v in list { body.u32(try ref(v)) }
            }
            try limit(node.attributes.count, ModelFileLimits.maxAttributesPerNode, "attributes of node \(node.displayName)")
            body.u32(node.attributes.count)
            for (name, attr) in node.attributes.sorted(by: { $0.key < $1.key }) {
                body.u32(try ref(name))
                try attribute(attr, "attribute \(name) of node \(node.displayName)")
            }
        }
    }

    private mutating func type(_ t: TensorType, _ what: String) throws {
        body.i32(t.dtype.rawValue)
        guard let shape = t.shape else { body.i32(-1); return }
        try limit(shape.count, ModelFileLimits.maxRank, "dimensions in the type of \(what)")
        switch TypeShapeCheck(shape) {
        case .valid: break
        case .negative(let d): throw ModelFileError.invalidInput("the type of \(what) has negative dimension \(d)")
        case .tooLarge(let n):
            throw ModelFileError.invalidInput("the type of \(what) has \(n) elements, above the limit of \(ModelFileLimits.maxElementsPerTensor)")
        }
        body.i32(Int32(shape.count))
        for d in shape {
            switch d {
            case .fixed(let v): body.u8(0); body.i64(Int64(v))
            case .symbolic(let s): body.u8(1); body.u32(try ref(s))
            }
        }
    }

    private mutating func attribute(_ a: Attribute, _ what: String) throws {
        switch a {
        case .float(let v): body.u8(AttributeKind.float.rawValue); body.f32(v)
        case .int(let v): body.u8(AttributeKind.int.rawValue); body.i64(Int64(v))
        case .string(let s): body.u8(AttributeKind.string.rawValue); body.u32(try ref(s))
        case .tensor(let t):
            body.u8(AttributeKind.tensor.rawValue)
            try limit(t.rank, ModelFileLimits.maxRank, "dimensions in \(what)")
            try limit(t.byteCount, ModelFileLimits.maxAttributeTensorBytes, "bytes in \(what)")
            body.i32(t.dtype.rawValue)
            body.u32(t.rank)
            for d in t.shape { body.i64(Int64(d)) }
            body.u64(t.byteCount)
            body.raw(t.bytes)
        case .floats(let v):
            try limit(v.count, ModelFileLimits.maxAttributeElements, "elements in \(what)")
            body.u8(AttributeKind.floats.rawValue); body.u32(v.count)
            for x in v { body.f32(x) }
        case .ints(let v):
            try limit(v.count, ModelFileLimits.maxAttributeElements, "elements in \(what)")
            body.u8(AttributeKind.ints.rawValue); body.u32(v.count)
            for x in v { body.i64(Int64(x)) }
        case .strings(let v):
            try limit(v.count, ModelFileLimits.maxAttributeElements, "elements in \(what)")
            body.u8(AttributeKind.strings.rawValue); body.u32(v.count)
            for s in v { body.u32(try ref(s)) }
        }
    }
}

/// The fixed dimensions of a value's type: none negative, and their product (what a runtime
/// plans and allocates for the value) within `maxElementsPerTensor`, like a stored tensor's.
enum TypeShapeCheck {
    case valid
    case negative(Int)
    /// The element count of the fixed dimensions (`UInt64.max` when it overflows).
    case tooLarge(UInt64)

    init(_ dims: [Dim]) {
        let fixed = dims.compactMap(\.value)
        if let d = fixed.first(where: { $0 < 0 }) { self = .negative(d); return }
        if fixed.contains(0) { self = .valid; return }
        var elements: UInt64 = 1
        for d in fixed {
            let (m, o) = elements.multipliedReportingOverflow(by: UInt64(d))
            elements = o ? UInt64.max : m
        }
        self = elements > UInt64(ModelFileLimits.maxElementsPerTensor) ? .tooLarge(elements) : .valid
    }
}

// MARK: - Decoding

/// Decodes the graph section into a Graph without initializers or metadata.
struct GraphSectionDecoder {
    var r: ByteReader
    var strings: [String] = []

    static func decode(_ reader: ByteReader) throws -> Graph {
        var d = GraphSectionDecoder(r: reader)
        return try d.decode()
    }

    private mutating func str(_ what: String) throws -> String {
        let at = r.fileOffset
        let i = Int(try r.u32(what))
        guard i < strings.count else {
            throw ModelFileError.malformed(path: r.path, what: "graph section",
                                           detail: "\(what) refers to string \(i) of \(strings.count) (at file offset \(at))")
        }
        return strings[i]
    }

    private mutating func decode() throws -> Graph {
        let n = try r.count("strings", limit: ModelFileLimits.maxStrings, minItemBytes: 4)
        strings.reserveCapacity(n)
        for _ in 0..<n { strings.append(try r.string("string")) }

        var g = Graph(opsets: [:])
        g.name = try str("graph name")
        let opsetCount = try r.count("opsets", limit: ModelFileLimits.maxOpsets, minItemBytes: 12)
        for _ in 0..<opsetCount {
            let domain = try str("opset domain")
            let version = try r.i64("opset version")
            guard g.opsets[domain] == nil else { throw r.malformed("opset domain '\(domain)' appears twice") }
            g.opsets[domain] = Int(version)
        }
        for isOutput in [false, true] {
            let what = isOutput ? "graph outputs" : "graph inputs"
            let count = try r.count(what, limit: ModelFileLimits.maxGraphValues, minItemBytes: 12)
            var list: [ValueInfo] = []
            list.reserveCapacity(count)
            for _ in 0..<count {
                let name = try str("name in \(what)")
                list.append(ValueInfo(name: name, type: try type("type of \(name)")))
            }
            if isOutput { g.outputs = list } else { g.inputs = list }
        }
        let typeCount = try r.count("value types", limit: ModelFileLimits.maxGraphValues, minItemBytes: 12)
        for _ in 0..<typeCount {
            let name = try str("value name")
            let t = try type("type of \(name)")
            guard g.valueTypes[name] == nil else { throw r.malformed("value type of '\(name)' appears twice") }
            g.valueTypes[name] = t
        }
        let nodeCount = try r.count("nodes", limit: ModelFileLimits.maxNodes, minItemBytes: 24)
        g.nodes.reserveCapacity(nodeCount)
        for i in 0..<nodeCount {
            let name = try str("node \(i) name")
            let op = try str("node \(i) operator")
            let domain = try str("node \(i) domain")
            var lists: [[String]] = []
            for what in ["inputs", "outputs"] {
                let c = try r.count("\(what) of node \(i)", limit: ModelFileLimits.maxNodeInputsOutputs, minItemBytes: 4)
                var l: [String] = []
                l.reserveCapacity(c)
                for _ in 0..<c { l.append(try str("\(what) of node \(i)")) }
                lists.append(l)
            }
            let attrCount = try r.count("attributes of node \(i)", limit: ModelFileLimits.maxAttributesPerNode, minItemBytes: 5)
            var attrs: [String: Attribute] = [:]
            for _ in 0..<attrCount {
                let an = try str("attribute name of node \(i)")
                let a = try attribute("attribute \(an) of node \(i) (\(op))")
                guard attrs[an] == nil else { throw r.malformed("attribute '\(an)' appears twice in node \(i)") }
                attrs[an] = a
            }
            g.nodes.append(Node(name: name, opType: op, domain: domain, inputs: lists[0], outputs: lists[1],
                                attributes: attrs))
        }
        guard r.atEnd else { throw r.malformed("\(r.remaining) unexpected bytes after the last node") }
        return g
    }

    private mutating func dtype(_ what: String) throws -> DType {
        let at = r.fileOffset
        let code = try r.i32(what)
        guard let t = DType(rawValue: code) else {
            throw ModelFileError.malformed(path: r.path, what: "graph section",
                                           detail: "\(what) has unsupported element type \(DType.onnxName(code: code)) (at file offset \(at))")
        }
        return t
    }

    private mutating func type(_ what: String) throws -> TensorType {
        let dt = try dtype(what)
        let at = r.fileOffset
        let rank = try r.i32("rank of \(what)")
        if rank == -1 { return TensorType(dtype: dt, shape: nil) }
        guard rank >= 0, rank <= ModelFileLimits.maxRank else {
            throw ModelFileError.limitExceeded(path: r.path, what: "rank of \(what) (file offset \(at))",
                                               value: UInt64(UInt32(bitPattern: rank)), limit: UInt64(ModelFileLimits.maxRank))
        }
        var dims: [Dim] = []
        for _ in 0..<Int(rank) {
            switch try r.u8("dimension tag in \(what)") {
            case 0: dims.append(.fixed(Int(try r.i64("dimension of \(what)"))))
            case 1: dims.append(.symbolic(try str("symbolic dimension of \(what)")))
            case let tag: throw r.malformed("unknown dimension tag \(tag) in \(what)")
            }
        }
        switch TypeShapeCheck(dims) {
        case .valid: break
        case .negative(let d): throw r.malformed("\(what) has negative dimension \(d)")
        case .tooLarge(let n):
            throw ModelFileError.limitExceeded(path: r.path, what: "elements of \(what) (file offset \(at))", value: n,
                                               limit: UInt64(ModelFileLimits.maxElementsPerTensor))
        }
        return TensorType(dtype: dt, shape: dims)
    }

    private mutating func attribute(_ what: String) throws -> Attribute {
        let kindCode = try r.u8("kind of \(what)")
        guard let kind = AttributeKind(rawValue: kindCode) else { throw r.malformed("unknown kind \(kindCode) of \(what)") }
        switch kind {
        case .float: return .float(try r.f32(what))
        case .int: return .int(Int(try r.i64(what)))
        case .string: return .string(try str(what))
        case .tensor:
            let dt = try dtype("element type of \(what)")
            let rank = try r.count("dimensions of \(what)", limit: ModelFileLimits.maxRank, minItemBytes: 8)
            var shape: [Int] = []
            var elements: UInt64 = 1
            for _ in 0..<rank {
                let d = try r.i64("dimension of \(what)")
                guard d >= 0, d <= Int64(ModelFileLimits.maxElementsPerTensor) else {
                    throw r.malformed("dimension \(d) of \(what) is negative or too large")
                }
                shape.append(Int(d))
                let (m, o) = elements.multipliedReportingOverflow(by: UInt64(d))
                guard !o, m <= UInt64(ModelFileLimits.maxElementsPerTensor) else {
                    throw r.malformed("\(what) has too many elements")
                }
                elements = m
            }
            let at = r.fileOffset
            let byteLength = try r.u64("byte length of \(what)")
            guard byteLength <= UInt64(ModelFileLimits.maxAttributeTensorBytes) else {
                throw ModelFileError.limitExceeded(path: r.path, what: "byte length of \(what) (file offset \(at))",
                                                   value: byteLength, limit: UInt64(ModelFileLimits.maxAttributeTensorBytes))
            }
            guard byteLength == elements * UInt64(dt.byteSize) else {
                throw r.malformed("\(what) has \(byteLength) bytes but \(dt.name)\(shape) needs \(elements * UInt64(dt.byteSize))")
            }
            let data = try r.raw(Int(byteLength), "data of \(what)")
            return .tensor(try data.withUnsafeBytes { try Tensor(dtype: dt, shape: shape, bytes: $0) })
        case .floats:
            let n = try r.count("elements of \(what)", limit: ModelFileLimits.maxAttributeElements, minItemBytes: 4)
            var v: [Float] = []
            v.reserveCapacity(n)
            for _ in 0..<n { v.append(try r.f32(what)) }
            return .floats(v)
        case .ints:
            let n = try r.count("elements of \(what)", limit: ModelFileLimits.maxAttributeElements, minItemBytes: 8)
            var v: [Int] = []
            v.reserveCapacity(n)
            for _ in 0..<n { v.append(Int(try r.i64(what))) }
            return .ints(v)
        case .strings:
            let n = try r.count("elements of \(what)", limit: ModelFileLimits.maxAttributeElements, minItemBytes: 4)
            var v: [String] = []
            v.reserveCapacity(n)
            for _ in 0..<n { v.append(try str(what)) }
            return .strings(v)
        }
    }
}

// MARK: - Metadata section

enum MetadataSection {
    static func encode(_ metadata: [String: String]) throws -> [UInt8] {
        guard metadata.count <= ModelFileLimits.maxMetadataEntries else {
            throw ModelFileError.invalidInput("\(metadata.count) metadata entries, above the limit of \(ModelFileLimits.maxMetadataEntries)")
        }
        var w = ByteWriter()
        w.u32(metadata.count)
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) {
            for s in [k, v] where s.utf8.count > ModelFileLimits.maxStringBytes {
                throw ModelFileError.invalidInput("metadata '\(k.prefix(80))' has a string of \(s.utf8.count) bytes, above maxStringBytes")
            }
            w.string(k)
            w.string(v)
        }
        return w.bytes
    }

    static func decode(_ reader: ByteReader) throws -> [String: String] {
        var r = reader
        let n = try r.count("metadata entries", limit: ModelFileLimits.maxMetadataEntries, minItemBytes: 8)
        var m: [String: String] = [:]
        for _ in 0..<n {
            let k = try r.string("metadata key")
            let v = try r.string("metadata value of '\(k)'")
            guard m[k] == nil else { throw r.malformed("metadata key '\(k)' appears twice") }
            m[k] = v
        }
        guard r.atEnd else { throw r.malformed("\(r.remaining) unexpected bytes after the last entry") }
        return m
    }
}
