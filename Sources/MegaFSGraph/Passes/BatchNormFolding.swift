/// Folds an inference-mode BatchNormalization into the Conv, ConvTranspose or Gemm that
/// feeds it: y = (x - mean) * g / sqrt(var + eps) + b becomes new weights and bias.
/// Applies only when the producer's weights and the BN statistics are constants and the
/// producer's output feeds nothing else.
public struct BatchNormFolding: GraphPass {
    public let name = "batchnorm-folding"

    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        let consumers = graph.consumerCounts()
        var producerIndex: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() { for o in node.outputs { producerIndex[o] = i } }
        var removed = Set<Int>()
        var folded = 0

        for (bnIndex, bn) in graph.nodes.enumerated() where bn.opType == "BatchNormalization" {
            guard bn.outputs.dropFirst().allSatisfy(\.isEmpty), (bn.int("training_mode") ?? 0) == 0,
                  bn.inputs.count == 5,
                  let scale = graph.initializers[bn.inputs[1]], let bias = graph.initializers[bn.inputs[2]],
                  let mean = graph.initializers[bn.inputs[3]], let variance = graph.initializers[bn.inputs[4]],
                  [scale, bias, mean, variance].allSatisfy({ $0.dtype == .float32 }),
                  let pIndex = producerIndex[bn.inputs[0]], !removed.contains(pIndex),
                  consumers[bn.inputs[0]] == 1 else { continue }
            let producer = graph.nodes[pIndex]
            let eps = bn.float("epsilon") ?? 1e-5
            let g = scale.floats, b = bias.floats, m = mean.floats, v = variance.floats
            let channels = g.count
            guard [b.count, m.count, v.count].allSatisfy({ $0 == channels }) else { continue }
            let factor = (0..<channels).map { g[$0] / (v[$0] + eps).squareRoot() }
            let shift = (0..<channels).map { b[$0] - m[$0] * factor[$0] }

            guard let rewritten = fold(producer, factor: factor, shift: shift, graph: &graph) else { continue }
            var node = rewritten
            node.outputs = [bn.outputs[0]]
            graph.nodes[pIndex] = node
            removed.insert(bnIndex)
            folded += 1
        }
        graph.nodes = graph.nodes.indices.filter { !removed.contains($0) }.map { graph.nodes[$0] }
        return folded
    }

    /// The producer with weights scaled per output channel and the shift added to its bias.
    private func fold(_ node: Node, factor: [Float], shift: [Float], graph: inout Graph) -> Node? {
        guard node.inputs.count >= 2, let weight = graph.initializers[node.inputs[1]],
              weight.dtype == .float32 else { return nil }
        let channels = factor.count
        var w = weight.floats
        let oldBias: [Float]
        let biasIndex: Int
        switch node.opType {
        case "Conv":
            // W: (C_out, C_in/g, k...) — output channel is axis 0.
            guard weight.rank >= 3, weight.shape[0] == channels else { return nil }
            let inner = w.count / channels
            for o in 0..<channels { for j in 0..<inner { w[o * inner + j] *= factor[o] } }
            biasIndex = 2
        case "ConvTranspose":
            // W: (C_in, C_out/g, k...) — output channel o = group * (C_out/g) + axis-1 index.
            let group = node.int("group") ?? 1
            guard weight.rank >= 3, weight.shape[1] * group == channels else { return nil }
            let perGroupOut = weight.shape[1]
            let kernel = weight.shape[2...].reduce(1, *)
            let inPerGroup = weight.shape[0] / group
            for i in 0..<weight.shape[0] {
                let g = i / inPerGroup
                for oc in 0..<perGroupOut {
                    let f = factor[g * perGroupOut + oc]
                    let base = (i * perGroupOut + oc) * kernel
                    for k in 0..<kernel { w[base + k] *= f }
                }
            }
            biasIndex = 2
        case "Gemm":
            guard weight.rank == 2, (node.float("beta") ?? 1) == 1 else { return nil }
            let transB = (node.int("transB") ?? 0) != 0
            let (rows, cols) = (weight.shape[0], weight.shape[1])
            guard (transB ? rows : cols) == channels else { return nil }
            for r in 0..<rows { for c in 0..<cols { w[r * cols + c] *= factor[transB ? r : c] } }
            biasIndex = 2
            if node.inputs.count > 2, !node.inputs[2].isEmpty {
                guard let c = graph.initializers[node.inputs[2]], c.elementCount == channels || c.elementCount == 1
                else { return nil }
            }
        default:
            return nil
        }
        if node.inputs.count > biasIndex, !node.inputs[biasIndex].isEmpty {
            guard let existing = graph.initializers[node.inputs[biasIndex]], existing.dtype == .float32 else { return nil }
            let values = existing.floats
            oldBias = values.count == 1 ? Array(repeating: values[0], count: channels) : values
            guard oldBias.count == channels else { return nil }
        } else {
            oldBias = Array(repeating: 0, count: channels)
        }
        let newBias = (0..<channels).map { oldBias[$0] * factor[$0] + shift[$0] }
        let base = node.outputs.first ?? node.name
        let weightName = graph.uniqueInitializerName("\(base).bn_folded_weight")
        graph.initializers[weightName] = Tensor(w, shape: weight.shape)
        let biasName = graph.uniqueInitializerName("\(base).bn_folded_bias")
        graph.initializers[biasName] = Tensor(newBias, shape: [channels])
        var out = node
        out.inputs[1] = weightName
        if out.inputs.count > 2 { out.inputs[2] = biasName } else { out.inputs.append(biasName) }
        return out
    }
}
