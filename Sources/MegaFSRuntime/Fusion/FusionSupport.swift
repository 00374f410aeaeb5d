import MegaFSGraph

/// Producers and consumers of the values of a graph, for pattern matching. Rewrites mark
/// nodes removed or replaced and are applied at the end (`commit`), keeping the order.
struct GraphRewriter {
    var graph: Graph
    var nodes: [Node?]
    let producer: [String: Int]
    let consumers: [String: [Int]]
    let graphOutputs: Set<String>
    var claimed = Set<Int>()
    var newInitializers: [String: Tensor] = [:]
    var newValueTypes: [String: TensorType] = [:]

    init(_ graph: Graph) {
        self.graph = graph
        nodes = graph.nodes
        var p: [String: Int] = [:], c: [String: [Int]] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for o in node.outputs where !o.isEmpty { p[o] = i }
            for input in node.inputs where !input.isEmpty {
                if c[input]?.last != i { c[input, default: []].append(i) }
            }
        }
        producer = p; consumers = c
        graphOutputs = Set(graph.outputs.map(\.name))
    }

    /// The node producing `value`, when it is still unclaimed.
    func producerNode(_ value: String) -> (Int, Node)? {
        guard let i = producer[value], !claimed.contains(i), let n = nodes[i] else { return nil }
        return (i, n)
    }

    /// The single consumer of `value` (read once, not a graph output), when unclaimed.
    func soleConsumer(_ value: String) -> (Int, Node)? {
        guard !graphOutputs.contains(value), let c = consumers[value], c.count == 1,
              !claimed.contains(c[0]), let n = nodes[c[0]] else { return nil }
        // Read once by that node, too.
        guard n.inputs.filter({ $0 == value }).count == 1 else { return nil }
        return (c[0], n)
    }

    /// True when `value` is read only by the nodes in `allowed` and is no graph output.
    func onlyUsedBy(_ value: String, _ allowed: Set<Int>) -> Bool {
        !graphOutputs.contains(value) && (consumers[value] ?? []).allSatisfy(allowed.contains)
    }

    func constant(_ value: String) -> Tensor? { graph.initializers[value] ?? newInitializers[value] }
    func shape(_ value: String) -> [Int]? { graph.type(of: value)?.concreteShape }

    func scalarConstant(_ value: String) -> Float? {
        guard let t = constant(value), t.elementCount == 1, t.dtype.isFloatingPoint else { return nil }
        return t.floats[0]
    }

    func intsConstant(_ value: String) -> [Int]? {
        guard let t = constant(value), t.dtype == .int64 || t.dtype == .int32 else { return nil }
        return t.int64s.map { Int($0) }
    }

    /// A fresh initializer name derived from `base`.
    mutating func addInitializer(_ base: String, _ t: Tensor) -> String {
        var name = base + "/megafs"
        var i = 0
        while graph.initializers[name] != nil || newInitializers[name] != nil || producer[name] != nil {
            i += 1; name = "\(base)/megafs.\(i)"
        }
        newInitializers[name] = t
        return name
    }

    /// Replaces the nodes `remove` by `node`, placed where the last of them was.
    mutating func replace(_ remove: [Int], with node: Node) {
        let at = remove.max()!
        for i in remove { nodes[i] = nil; claimed.insert(i) }
        nodes[at] = node
    }

    mutating func commit() -> Graph {
        var g = graph
        g.nodes = nodes.compactMap { $0 }
        for (k, v) in newInitializers { g.initializers[k] = v }
        for (k, v) in newValueTypes { g.valueTypes[k] = v }
        return g
    }
}

extension Node {
    /// ReduceSum axes from the attribute (opset < 13) or the constant second input.
    func reduceAxes(_ rw: GraphRewriter) -> [Int]? {
        if let a = ints("axes") { return a }
        if inputs.count > 1, !inputs[1].isEmpty { return rw.intsConstant(inputs[1]) }
        return nil
    }
}

/// A constant weight as a fusion sees it: float, or int8 dequantized by a DequantizeLinear node
/// (weight-only quantization) that the fusion may replace by one over a re-laid-out copy.
enum WeightConstant {
    case float(Tensor)
    /// The DequantizeLinear at node index `index`; its scales are initializer `scalesName`.
    case int8(QuantizedConstant, scalesName: String, index: Int)

    var shape: [Int] {
        switch self {
        case .float(let t): return t.shape
        case .int8(let q, _, _): return q.values.shape
        }
    }
}

extension GraphRewriter {
    /// The weight behind `value`: an initializer, or an unclaimed DequantizeLinear of an int8
    /// initializer read only by `consumer`.
    func weightConstant(_ value: String, consumer: Int) -> WeightConstant? {
        if let t = constant(value) { return .float(t) }
        guard let (i, dq) = producerNode(value), soleConsumer(value)?.0 == consumer,
              let q = QuantizedConstant(node: dq, constant: { constant(dq.inputs[$0]) }) else { return nil }
        return .int8(q, scalesName: dq.inputs[1], index: i)
    }

    /// The operand of binary `node` that is a weight, and the other operand, when exactly one is.
    func splitWeight(_ node: Node, at index: Int) -> (weight: WeightConstant, other: String)? {
        guard node.inputs.count == 2 else { return nil }
        let a = weightConstant(node.inputs[0], consumer: index), b = weightConstant(node.inputs[1], consumer: index)
        if let b, a == nil { return (b, node.inputs[0]) }
        if let a, b == nil { return (a, node.inputs[1]) }
        return nil
    }

    /// Replaces the DequantizeLinear at `index` by one over `values` (a new initializer derived
    /// from `base`) writing a new value of float type; returns that value's name.
    mutating func replaceDequantize(at index: Int, base: String, values: Tensor, scalesName: String, axis: Int?) -> String {
        let qName = addInitializer(base + ".int8", values)
        var output = base + "/megafs.dequantized"
        var k = 0
        while producer[output] != nil || graph.initializers[output] != nil || newValueTypes[output] != nil {
            k += 1; output = base + "/megafs.dequantized.\(k)"
        }
        var attrs: [String: Attribute] = [:]
        if let axis { attrs["axis"] = .int(axis) }
        let old = nodes[index]!
        nodes[index] = Node(name: old.name, opType: "DequantizeLinear", domain: "", inputs: [qName, scalesName],
                            outputs: [output], attributes: attrs)
        newValueTypes[output] = TensorType(dtype: .float32, dims: values.shape)
        return output
    }
}

/// The constant operand of a binary node and the other operand, when exactly one is constant.
func splitConstant(_ node: Node, _ rw: GraphRewriter) -> (constant: Tensor, other: String)? {
    guard node.inputs.count == 2 else { return nil }
    let a = rw.constant(node.inputs[0]), b = rw.constant(node.inputs[1])
    if let b, a == nil { return (b, node.inputs[0]) }
    if let a, b == nil { return (a, node.inputs[1]) }
    return nil
}
