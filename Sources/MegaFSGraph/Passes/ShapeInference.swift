/// Infers the element type and shape of every value, in topological order, with each
/// operator's shape rule. Fails on an operator without a definition, naming all of them.
public struct ShapeInference: GraphPass {
    public let name = "shape-inference"

    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        let unknown = graph.nodes.filter { OperatorRegistry.lookup($0.opType, domain: $0.domain) == nil }
        if !unknown.isEmpty {
            throw GraphError.unsupportedOperator(Self.histogramText(unknown.map(\.opType)))
        }
        var types: [String: TensorType] = [:]
        for input in graph.inputs { types[input.name] = input.type }
        for (name, tensor) in graph.initializers { types[name] = tensor.type }
        for node in graph.nodes {
            let op = OperatorRegistry.lookup(node.opType, domain: node.domain)!
            let outputTypes = try op.inferTypes(graph.operatorContext(for: node, types: types))
            for (output, type) in zip(node.outputs, outputTypes) where !output.isEmpty {
                types[output] = type
            }
        }
        for (i, output) in graph.outputs.enumerated() {
            if let inferred = types[output.name] {
                graph.outputs[i].type = Self.merge(declared: output.type, inferred: inferred)
            }
        }
        for input in graph.inputs { types.removeValue(forKey: input.name) }
        for name in graph.initializers.keys { types.removeValue(forKey: name) }
        graph.valueTypes = types
        return types.count
    }

    /// Prefer what inference proved; keep a declared fixed dimension where inference could not tell.
    static func merge(declared: TensorType, inferred: TensorType) -> TensorType {
        guard let inferredShape = inferred.shape else { return declared }
        guard let declaredShape = declared.shape, declaredShape.count == inferredShape.count else { return inferred }
        let shape = zip(declaredShape, inferredShape).map { d, i -> Dim in
            if case .fixed = i { return i }
            if case .fixed = d { return d }
            return i == .unknown ? d : i
        }
        return TensorType(dtype: inferred.dtype, shape: shape)
    }

    /// "Foo (3), Bar (1)", most frequent first.
    public static func histogramText(_ names: [String]) -> String {
        let counts = names.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
        return counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
    }
}
