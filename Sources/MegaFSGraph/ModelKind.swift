/// Which of the three MegaFS networks a graph is, recognised from its interface.
public enum ModelKind: String, Sendable, Codable, CaseIterable {
    case encoder
    case swapper
    case generator

    /// The metadata value the converter records under "model.kind": "encoder", "generator",
    /// or "swapper.ftm" / "swapper.injection" / "swapper.lcr".
    public static func metadataValue(kind: ModelKind, variant: String?) -> String {
        variant.map { "\(kind.rawValue).\($0)" } ?? kind.rawValue
    }

    /// Recognises a graph by its inputs and outputs (names as our exporter writes them,
    /// with shapes as a fallback): the encoder maps an image (N,3,H,W) to (N,L,D) latents and a
    /// (N,C,h,w) structure; the swapper maps two (1,L,D) latents to one; the generator maps a
    /// structure and latents to an image. Returns nil for anything else.
    public static func recognise(_ graph: Graph) -> (kind: ModelKind, variant: String?)? {
        let inputs = graph.inputs.map(\.name)
        let inputRanks = graph.inputs.map { $0.type.rank ?? -1 }
        let outputRanks = graph.outputs.map { $0.type.rank ?? -1 }
        if Set(inputs) == ["idd", "att"] || (inputRanks == [3, 3] && outputRanks == [3]) {
            return (.swapper, swapperVariant(graph))
        }
        if Set(inputs) == ["struct", "latents"] || (inputRanks.sorted() == [3, 4] && outputRanks == [4]) {
            return (.generator, nil)
        }
        if inputRanks == [4], Set(outputRanks) == [3, 4], graph.outputs.count == 2 {
            return (.encoder, nil)
        }
        return nil
    }

    /// ftm, injection or lcr: lcr has no matrix products; ftm's selectors end in Sigmoid,
    /// while injection's modulation (gamma, beta) comes straight from linear layers.
    static func swapperVariant(_ graph: Graph) -> String {
        let ops = graph.operatorHistogram
        if (ops["Gemm"] ?? 0) + (ops["MatMul"] ?? 0) == 0 { return "lcr" }
        return (ops["Sigmoid"] ?? 0) > 0 ? "ftm" : "injection"
    }
}
