/// A node attribute, with ONNX's attribute kinds (subgraphs are rejected at import).
public enum Attribute: Sendable, CustomStringConvertible {
    case float(Float)
    case int(Int)
    case string(String)
    case tensor(Tensor)
    case floats([Float])
    case ints([Int])
    case strings([String])

    public var description: String {
        switch self {
        case .float(let v): return String(v)
        case .int(let v): return String(v)
        case .string(let s): return "\"\(s)\""
        case .tensor(let t): return "tensor \(t)"
        case .floats(let v): return "\(v)"
        case .ints(let v): return "\(v)"
        case .strings(let v): return "\(v)"
        }
    }

    /// Equal kind and value; tensors compare by bytes.
    public func isIdentical(to other: Attribute) -> Bool {
        switch (self, other) {
        case (.float(let a), .float(let b)): return a.bitPattern == b.bitPattern
        case (.int(let a), .int(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.tensor(let a), .tensor(let b)): return a.isIdentical(to: b)
        case (.floats(let a), .floats(let b)): return a.map(\.bitPattern) == b.map(\.bitPattern)
        case (.ints(let a), .ints(let b)): return a == b
        case (.strings(let a), .strings(let b)): return a == b
        default: return false
        }
    }
}

/// One operator application. Inputs and outputs name values; an empty input name is an
/// omitted optional input, as in ONNX.
public struct Node: Sendable {
    public var name: String
    public var opType: String
    /// "" for the default ONNX domain; we support no other.
    public var domain: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: Attribute]

    public init(name: String = "", opType: String, domain: String = "", inputs: [String],
                outputs: [String], attributes: [String: Attribute] = [:]) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    /// The node's name, or a stand-in naming its op and first output, for messages.
    public var displayName: String { name.isEmpty ? "\(opType)(\(outputs.first ?? "?"))" : name }

    public func int(_ key: String) -> Int? { if case .int(let v)? = attributes[key] { return v } else { return nil } }
    public func float(_ key: String) -> Float? {
        switch attributes[key] {
        case .float(let v)?: return v
        case .int(let v)?: return Float(v)
        default: return nil
        }
    }
    public func string(_ key: String) -> String? { if case .string(let v)? = attributes[key] { return v } else { return nil } }
    public func ints(_ key: String) -> [Int]? { if case .ints(let v)? = attributes[key] { return v } else { return nil } }
    public func floats(_ key: String) -> [Float]? { if case .floats(let v)? = attributes[key] { return v } else { return nil } }
    public func tensor(_ key: String) -> Tensor? { if case .tensor(let v)? = attributes[key] { return v } else { return nil } }
}

/// A named graph input or output with its declared type.
public struct ValueInfo: Sendable, CustomStringConvertible {
    public var name: String
    public var type: TensorType

    public init(name: String, type: TensorType) {
        self.name = name
        self.type = type
    }

    public var description: String { "\(name): \(type)" }
}

/// A computation graph: the IR between ONNX import, the passes and the model format.
///
/// Values are named by strings (as in ONNX). `initializers` hold constant tensors;
/// `valueTypes` holds the types known for intermediate values (filled by shape inference).
public struct Graph: Sendable {
    public var name: String
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var initializers: [String: Tensor]
    public var nodes: [Node]
    public var valueTypes: [String: TensorType]
    /// Opset version per domain ("" is the default ONNX domain).
    public var opsets: [String: Int]
    /// Free-form facts carried to the model file (producer, source hash, model kind, ...).
    public var metadata: [String: String]

    public init(name: String = "", inputs: [ValueInfo] = [], outputs: [ValueInfo] = [],
                initializers: [String: Tensor] = [:], nodes: [Node] = [],
                valueTypes: [String: TensorType] = [:], opsets: [String: Int] = ["": 17],
                metadata: [String: String] = [:]) {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
        self.nodes = nodes
        self.valueTypes = valueTypes
        self.opsets = opsets
        self.metadata = metadata
    }

    /// The default-domain opset version.
    public var opset: Int { opsets[""] ?? opsets["ai.onnx"] ?? 17 }

    /// Total elements over all initializers.
    public var parameterCount: Int { initializers.values.reduce(0) { $0 + $1.elementCount } }

    /// Total bytes over all initializers.
    public var parameterBytes: Int { initializers.values.reduce(0) { $0 + $1.byteCount } }

    /// Count of nodes per operator type.
    public var operatorHistogram: [String: Int] {
        nodes.reduce(into: [:]) { $0[$1.opType, default: 0] += 1 }
    }

    /// The type of a value if known: graph input, initializer or inferred.
    public func type(of value: String) -> TensorType? {
        if let t = initializers[value] { return t.type }
        if let t = valueTypes[value] { return t }
        return inputs.first { $0.name == value }?.type
    }

    /// Sorts `nodes` topologically (stable: keeps the given order where it is already valid).
    /// Throws on a cycle or on a value that nothing produces.
    public mutating func sortTopologically() throws {
        var available = Set(initializers.keys).union(inputs.map(\.name))
        available.insert("")
        var producer: [String: Int] = [:]
        for (i, node) in nodes.enumerated() {
            for out in node.outputs where !out.isEmpty {
                if producer[out] != nil || available.contains(out) {
                    throw GraphError.invalidGraph("value '\(out)' is produced more than once (again by node \(node.displayName))")
                }
                producer[out] = i
            }
        }
        for node in nodes {
            for input in node.inputs where !available.contains(input) && producer[input] == nil {
                throw GraphError.invalidGraph("node \(node.displayName) reads '\(input)', which no node, input or initializer provides")
            }
        }
        for output in outputs where !available.contains(output.name) && producer[output.name] == nil {
            throw GraphError.invalidGraph("graph output '\(output.name)' is not produced by any node")
        }
        // Kahn's algorithm with a ready list in original order.
        var pending = nodes.map { node in Set(node.inputs.filter { !available.contains($0) }).count }
        var consumers: [Int: [Int]] = [:]
        for (i, node) in nodes.enumerated() {
            for input in Set(node.inputs) where !available.contains(input) {
                consumers[producer[input]!, default: []].append(i)
            }
        }
        var ready = (0..<nodes.count).filter { pending[$0] == 0 }
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        var head = 0
        while head < ready.count {
            let i = ready[head]; head += 1
            order.append(i)
            for c in consumers[i] ?? [] {
                pending[c] -= 1
                if pending[c] == 0 { ready.append(c) }
            }
        }
        if order.count != nodes.count {
            let stuck = (0..<nodes.count).filter { pending[$0] > 0 }.prefix(5).map { nodes[$0].displayName }
            throw GraphError.invalidGraph("the graph has a cycle (through \(stuck.joined(separator: ", ")))")
        }
        nodes = order.map { nodes[$0] }
    }
}

/// Errors raised while building, checking or transforming a graph.
public enum GraphError: Error, CustomStringConvertible, Equatable {
    case invalidTensor(String)
    case invalidGraph(String)
    case unsupportedOperator(String)
    case shapeMismatch(node: String, String)
    case invalidAttribute(node: String, String)

    public var description: String {
        switch self {
        case .invalidTensor(let m): return "invalid tensor: \(m)"
        case .invalidGraph(let m): return "invalid graph: \(m)"
        case .unsupportedOperator(let m): return "unsupported operator: \(m)"
        case .shapeMismatch(let node, let m): return "node \(node): \(m)"
        case .invalidAttribute(let node, let m): return "node \(node): \(m)"
        }
    }
}
