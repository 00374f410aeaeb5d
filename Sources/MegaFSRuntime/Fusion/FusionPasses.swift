import MegaFSGraph

/// The runtime's fusion passes, in the order they run on a specialised (shape-inferred) graph.
public enum FusionPasses {
    public static var all: [any GraphPass] {
        [IdentityActivationElimination(), ModulatedConvFusion(), UpFirDnFusion(), ConvTransposeBlurFusion(),
         ConvEpilogueFusion(), GemmActivationFusion(), DeadNodeElimination()]
    }

    /// (fusion name, count) over the fused nodes of a graph: each fused node carries its
    /// fusion's name in the attribute `fusion`; removed no-op nodes are recorded in metadata.
    public static func report(_ graph: Graph) -> [(name: String, count: Int)] {
        var counts: [String: Int] = [:]
        for node in graph.nodes where node.domain == runtimeDomain {
            counts[node.string("fusion") ?? node.opType, default: 0] += 1
        }
        for (key, value) in graph.metadata where key.hasPrefix("megafs.runtime.removed.") {
            counts[String(key.dropFirst("megafs.runtime.removed.".count)), default: 0] += Int(value) ?? 0
        }
        return counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { (name: $0.key, count: $0.value) }
    }
}
