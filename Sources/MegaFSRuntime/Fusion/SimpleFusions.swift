import MegaFSGraph

/// Drops LeakyRelu with alpha = 1 (the identity; the FTM's `nn.LeakyReLU(True)` quirk).
public struct IdentityActivationElimination: GraphPass {
    public let name = "identity-leakyrelu-elimination"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        let outputs = Set(graph.outputs.map(\.name))
        var alias: [String: String] = [:]
        var kept: [Node] = []
        var removed = 0
        for var node in graph.nodes {
            node.inputs = node.inputs.map { alias[$0] ?? $0 }
            if node.opType == "LeakyRelu", node.domain.isEmpty, (node.float("alpha") ?? 0.01) == 1,
               let out = node.outputs.first, !outputs.contains(out), node.inputs.count == 1,
               graph.type(of: out)?.dtype == .float32 {
                alias[out] = node.inputs[0]
                removed += 1
                continue
            }
            kept.append(node)
        }
        graph.nodes = kept
        if removed > 0 {
            let key = "megafs.runtime.removed.leaky_relu(alpha=1) removed"
            graph.metadata[key] = String((Int(graph.metadata[key] ?? "0") ?? 0) + removed)
        }
        return removed
    }
}

/// Gemm followed by Relu, LeakyRelu, Sigmoid or Tanh becomes FusedGemm.
public struct GemmActivationFusion: GraphPass {
    public let name = "gemm-activation-fusion"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var rw = GraphRewriter(graph)
        var count = 0
        for (i, node) in graph.nodes.enumerated() where node.opType == "Gemm" && node.domain.isEmpty {
            guard let out = node.outputs.first, let (j, act) = rw.soleConsumer(out), act.domain.isEmpty,
                  rw.shape(out)?.count == 2, graph.type(of: out)?.dtype == .float32 else { continue }
            let activation: String
            switch act.opType {
            case "Relu": activation = "relu"
            case "LeakyRelu": activation = "leaky_relu"
            case "Sigmoid": activation = "sigmoid"
            case "Tanh": activation = "tanh"
            default: continue
            }
            var attrs = node.attributes
            attrs.removeValue(forKey: "alpha")
            attrs["gemm_alpha"] = .float(node.float("alpha") ?? 1)
            attrs["activation"] = .string(activation)
            attrs["alpha"] = .float(act.float("alpha") ?? 0.01)
            attrs["fusion"] = .string("gemm+\(activation)")
            rw.replace([i, j], with: Node(name: node.name, opType: "FusedGemm", domain: runtimeDomain,
                                          inputs: node.inputs, outputs: act.outputs, attributes: attrs))
            count += 1
        }
        graph = rw.commit()
        return count
    }
}
