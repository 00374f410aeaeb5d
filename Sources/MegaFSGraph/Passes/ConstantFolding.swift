/// Replaces every node whose inputs are all constant by its value (computed with the
/// operator's reference kernel), and every Shape/Size of a value whose shape is fully known.
/// One sweep in topological order folds whole chains (Shape -> Gather -> Concat -> Reshape).
///
/// A node whose result would be much larger than its inputs (ConstantOfShape, Expand, Tile of a
/// small constant) is left to run time, so folding never bloats the model file.
public struct ConstantFolding: GraphPass {
    public let name = "constant-folding"
    /// Results up to this size are always folded.
    public var alwaysFoldBytes = 1 << 16
    /// Operators never folded (the runtime keeps DequantizeLinear of int8 weights, so that they
    /// stay int8 in memory).
    public var keep: Set<String>

    public init(keep: Set<String> = []) { self.keep = keep }

    public func run(_ graph: inout Graph) throws -> Int {
        var types: [String: TensorType] = [:]
        for input in graph.inputs { types[input.name] = input.type }
        var kept: [Node] = []
        kept.reserveCapacity(graph.nodes.count)
        var folded = 0
        let outputNames = Set(graph.outputs.map(\.name))

        for node in graph.nodes {
            let op = OperatorRegistry.lookup(node.opType, domain: node.domain)
            if let op, let values = try fold(node, op: op, graph: graph, types: types) {
                // A graph output keeps a producing node: outputs must stay computed values.
                if node.outputs.contains(where: outputNames.contains) {
                    kept.append(node)
                    for (output, value) in zip(node.outputs, values) { types[output] = value.type }
                    continue
                }
                for (output, value) in zip(node.outputs, values) where !output.isEmpty {
                    graph.initializers[output] = value
                    types[output] = value.type
                }
                folded += 1
                continue
            }
            kept.append(node)
            if let op, let outputTypes = try? op.inferTypes(graph.operatorContext(for: node, types: types)) {
                for (output, type) in zip(node.outputs, outputTypes) where !output.isEmpty { types[output] = type }
            }
        }
        graph.nodes = kept
        return folded
    }

    private func fold(_ node: Node, op: any Operator.Type, graph: Graph,
                      types: [String: TensorType]) throws -> [Tensor]? {
        if keep.contains(node.opType) { return nil }
        if node.opType == "Shape" || node.opType == "Size",
           let input = node.inputs.first, graph.initializers[input] == nil,
           let shape = (types[input] ?? graph.type(of: input))?.concreteShape {
            if node.opType == "Size" {
                // A declared shape may be hostile: its product can overflow.
                guard let count = try? TensorOpSupport.checkedCount(shape, node) else { return nil }
                return [Tensor(scalar: Int64(count))]
            }
            let rank = shape.count
            func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
            let start = clamp(node.int("start") ?? 0)
            let end = clamp(node.int("end") ?? rank)
            let dims = start < end ? shape[start..<end].map(Int64.init) : []
            return [Tensor(dims, shape: [dims.count])]
        }
        let inputs = node.inputs.map { $0.isEmpty ? nil : graph.initializers[$0] }
        for (name, value) in zip(node.inputs, inputs) where !name.isEmpty && value == nil { return nil }
        // Nodes with no inputs other than Constant (e.g. RandomNormal) are not ours to fold.
        if node.inputs.allSatisfy(\.isEmpty) && node.opType != "Constant" { return nil }

        let inputBytes = inputs.compactMap { $0?.byteCount }.reduce(0, +)
        if node.opType != "Constant",
           let outTypes = try? op.inferTypes(graph.operatorContext(for: node, types: types)) {
            var outBytes = 0
            for t in outTypes {
                guard let shape = t.concreteShape else { continue }
                guard let count = try? TensorOpSupport.checkedCount(shape, node) else { return nil }   // too large to fold
                outBytes += count * t.dtype.byteSize
            }
            if outBytes > max(alwaysFoldBytes, inputBytes) { return nil }
        }
        return try op.evaluate(node, inputs: inputs, opset: graph.opset)
    }
}

/// Removes Identity and inference-mode Dropout nodes by reading their input directly.
public struct IdentityElimination: GraphPass {
    public let name = "identity-elimination"

    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        let outputNames = Set(graph.outputs.map(\.name))
        var alias: [String: String] = [:]
        var kept: [Node] = []
        var removed = 0
        for var node in graph.nodes {
            node.inputs = node.inputs.map { alias[$0] ?? $0 }
            let passThrough = node.opType == "Identity" ||
                (node.opType == "Dropout" && node.outputs.dropFirst().allSatisfy(\.isEmpty))
            if passThrough, let output = node.outputs.first, !outputNames.contains(output) {
                alias[output] = node.inputs[0]
                removed += 1
                continue
            }
            kept.append(node)
        }
        graph.nodes = kept
        return removed
    }
}

/// Removes nodes none of whose outputs are used, and initializers nothing reads.
public struct DeadNodeElimination: GraphPass {
    public let name = "dead-node-elimination"

    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var live = Set(graph.outputs.map(\.name))
        var keep = Array(repeating: false, count: graph.nodes.count)
        for i in stride(from: graph.nodes.count - 1, through: 0, by: -1) {
            let node = graph.nodes[i]
            if node.outputs.contains(where: live.contains) {
                keep[i] = true
                live.formUnion(node.inputs)
            }
        }
        let before = graph.nodes.count + graph.initializers.count
        graph.nodes = graph.nodes.indices.filter { keep[$0] }.map { graph.nodes[$0] }
        graph.initializers = graph.initializers.filter { live.contains($0.key) }
        graph.valueTypes = graph.valueTypes.filter { live.contains($0.key) }
        return before - graph.nodes.count - graph.initializers.count
    }
}
