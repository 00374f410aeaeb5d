/// Runs a whole graph with the operators' reference kernels: slow, simple, and the yardstick
/// that passes and fast runtimes are checked against.
public enum ReferenceEvaluator {
    /// Evaluates `graph` on `inputs` (by graph input name). Returns every graph output, or,
    /// with `keepIntermediates`, every value computed.
    public static func run(_ graph: Graph, inputs: [String: Tensor],
                           keepIntermediates: Bool = false) throws -> [String: Tensor] {
        var values = graph.initializers
        for input in graph.inputs {
            guard let value = inputs[input.name] else {
                throw GraphError.invalidGraph("missing value for graph input '\(input.name)'")
            }
            values[input.name] = value
        }
        for node in graph.nodes {
            guard let op = OperatorRegistry.lookup(node.opType, domain: node.domain) else {
                throw GraphError.unsupportedOperator("\(node.opType) (node \(node.displayName))")
            }
            let args = try node.inputs.map { name -> Tensor? in
                if name.isEmpty { return nil }
                guard let v = values[name] else {
                    throw GraphError.invalidGraph("node \(node.displayName) reads '\(name)' before it is computed")
                }
                return v
            }
            let results = try op.evaluate(node, inputs: args, opset: graph.opset)
            for (name, value) in zip(node.outputs, results) where !name.isEmpty { values[name] = value }
        }
        if keepIntermediates { return values }
        var out: [String: Tensor] = [:]
        for output in graph.outputs {
            guard let v = values[output.name] else {
                throw GraphError.invalidGraph("graph output '\(output.name)' was not computed")
            }
            out[output.name] = v
        }
        return out
    }
}
