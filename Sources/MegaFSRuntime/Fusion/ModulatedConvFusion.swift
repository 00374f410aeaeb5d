import MegaFSGraph

/// Recognises StyleGAN2's modulated convolution as the TorchScript exporter writes it at
/// batch 1 (the released "fused" form):
///
///     s   = Gemm(latent, ...)                      [1, Cin]
///     wm  = Mul(Wc [1,Cout,Cin,k,k], Reshape(s, [1,1,Cin,1,1]))
///     d   = Div(1, Sqrt(Add(ReduceSum(Pow(wm, 2), axes [2,3,4], keepdims 0), eps)))   (demodulation)
///     w   = Reshape(Mul(wm, Reshape(d, [1,Cout,1,1,1])), [Cout,Cin,k,k])
///     y   = Conv(x, w)   or   ConvTranspose(x, Transpose(w, [1,0,2,3]))
///
/// (Without demodulation, as in ToRGB, w = Reshape(wm).) It becomes one FusedConv
/// (x, Wc, bias, s): input channels scaled by s, the constant weight, output channel o scaled
/// by d[o] computed from s and the precomputed squared weight, so the per-sample weight is
/// never built.
public struct ModulatedConvFusion: GraphPass {
    public let name = "modulated-conv-fusion"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var rw = GraphRewriter(graph)
        var count = 0
        for (ci, conv) in graph.nodes.enumerated()
        where (conv.opType == "Conv" || conv.opType == "ConvTranspose") && conv.domain.isEmpty {
            if let fused = match(conv, at: ci, rw: &rw) {
                rw.replace(fused.remove, with: fused.node)
                count += 1
            }
        }
        graph = rw.commit()
        return count
    }

    private func match(_ conv: Node, at ci: Int, rw: inout GraphRewriter) -> (node: Node, remove: [Int])? {
        let transposed = conv.opType == "ConvTranspose"
        guard conv.inputs.count >= 2, rw.constant(conv.inputs[1]) == nil, (conv.int("group") ?? 1) == 1,
              let xShape = rw.shape(conv.inputs[0]), xShape.count == 4, xShape[0] == 1 else { return nil }
        var remove = [ci]
        // Conv weight <- [Transpose <-] Reshape(wd, [Cout, Cin, k, k]).
        var wName = conv.inputs[1]
        if transposed {
            guard let (ti, t) = rw.producerNode(wName), t.opType == "Transpose", t.ints("perm") == [1, 0, 2, 3],
                  rw.soleConsumer(wName)?.0 == ci else { return nil }
            remove.append(ti)
            wName = t.inputs[0]
            guard rw.soleConsumer(wName)?.0 == ti else { return nil }
        } else {
            guard rw.soleConsumer(wName)?.0 == ci else { return nil }
        }
        guard let (ri, reshape) = rw.producerNode(wName), reshape.opType == "Reshape",
              let w4 = rw.shape(wName), w4.count == 4 else { return nil }
        remove.append(ri)
        let cout = w4[0], cin = w4[1], kh = w4[2], kw = w4[3]
        let wd = reshape.inputs[0]
        guard let wdShape = rw.shape(wd), wdShape == [1, cout, cin, kh, kw], rw.soleConsumer(wd)?.0 == ri,
              let (mi, mul) = rw.producerNode(wd), mul.opType == "Mul", mul.inputs.count == 2 else { return nil }

        // Demodulated: wd = Mul(wm, dr); otherwise wd is wm itself.
        var wm = wd
        var wmIndex = mi
        var demod = false
        var eps: Float = 1e-8
        var demodNodes: [Int] = []
        if let chain = demodulation(mul, mulIndex: mi, cout: cout, rw: rw) {
            demod = true
            wm = chain.wm
            eps = chain.eps
            demodNodes = chain.nodes + [mi]
            guard let (wi, wmNode) = rw.producerNode(wm), wmNode.opType == "Mul" else { return nil }
            wmIndex = wi
            // wm feeds exactly the Pow (or Mul) of the chain and the final Mul.
            guard rw.onlyUsedBy(wm, Set(demodNodes)) else { return nil }
        }
        guard let wmNode = rw.nodes[wmIndex], wmNode.opType == "Mul", wmNode.inputs.count == 2 else { return nil }
        // wm = Mul(Wc, Reshape(s, [1,1,Cin,1,1])).
        guard let (wc, srName) = rw.splitWeight(wmNode, at: wmIndex), wc.shape == [1, cout, cin, kh, kw],
              rw.soleConsumer(srName)?.0 == wmIndex,
              let (si, sr) = rw.producerNode(srName), sr.opType == "Reshape", rw.shape(srName) == [1, 1, cin, 1, 1],
              rw.shape(sr.inputs[0]) == [1, cin],
              rw.type(sr.inputs[0])?.dtype == .float32 else { return nil }
        if !demod { guard rw.soleConsumer(wm)?.0 == ri else { return nil } }
        remove += demodNodes + [wmIndex, si]
        let style = sr.inputs[0]

        // The constant weight in the layout the kernel wants: [Cout, Cin, k, k], a view of the
        // 5-D weight (the transposed conv's kernel reads it so, `weight_out_in`: a swapped copy
        // held beside the original cost the 1024 generator 45 MB); an int8 one of the
        // transposed conv, [Cin, Cout, k, k].
        let wNew: String
        var outIn = false
        switch wc {
        case .float(let t):
            guard t.dtype == .float32 else { return nil }
            wNew = rw.addInitializer(conv.inputs[1], t.reshaped([cout, cin, kh, kw]))
            outIn = transposed
        case .int8(let q, let scalesName, let dqIndex):
            // Quantized along Cout (1) or Cin (2) of [1, Cout, Cin, k, k], or per tensor.
            let newAxis: Int?
            switch q.axis {
            case nil: newAxis = nil
            case 1?: newAxis = transposed ? 1 : 0
            case 2?: newAxis = transposed ? 0 : 1
            default: return nil
            }
            let values = transposed
                ? Tensor(Self.swapLeadingAxes(q.values.elements(as: Int8.self), cout, cin, kh * kw), shape: [cin, cout, kh, kw])
                : q.values.reshaped([cout, cin, kh, kw])
            wNew = rw.replaceDequantize(at: dqIndex, base: conv.inputs[1], values: values, scalesName: scalesName, axis: newAxis)
        }
        var attrs = conv.attributes
        attrs["transposed"] = .int(transposed ? 1 : 0)
        if outIn { attrs["weight_out_in"] = .int(1) }
        attrs["demodulate"] = .int(demod ? 1 : 0)
        attrs["demod_eps"] = .float(eps)
        attrs["fusion"] = .string(transposed ? "modulated-convtranspose" : "modulated-conv")
        let bias = conv.inputs.count > 2 ? conv.inputs[2] : ""
        let node = Node(name: conv.name, opType: "FusedConv", domain: runtimeDomain,
                        inputs: [conv.inputs[0], wNew, bias, style, ""], outputs: conv.outputs, attributes: attrs)
        return (node, remove)
    }

    /// [a, b, kk] -> [b, a, kk].
    static func swapLeadingAxes<T: Numeric>(_ v: [T], _ a: Int, _ b: Int, _ kk: Int) -> [T] {
        var t = [T](repeating: 0, count: v.count)
        for i in 0..<a { for j in 0..<b { for k in 0..<kk { t[(j * a + i) * kk + k] = v[(i * b + j) * kk + k] } } }
        return t
    }

    /// mul = Mul(wm, Reshape(d, [1,Cout,1,1,1])) with d = 1/sqrt(sum(wm^2, [2,3,4]) + eps).
    private func demodulation(_ mul: Node, mulIndex: Int, cout: Int, rw: GraphRewriter)
        -> (wm: String, eps: Float, nodes: [Int])? {
        for (k, drName) in mul.inputs.enumerated() {
            let wm = mul.inputs[1 - k]
            guard let (dri, dr) = rw.producerNode(drName), dr.opType == "Reshape", rw.shape(drName) == [1, cout, 1, 1, 1],
                  rw.soleConsumer(drName)?.0 == mulIndex else { continue }
            let d = dr.inputs[0]
            guard rw.soleConsumer(d)?.0 == dri, let (di, dNode) = rw.producerNode(d) else { continue }
            // d = Div(1, sq) | Reciprocal(sq)
            var sq: String
            if dNode.opType == "Div", rw.scalarConstant(dNode.inputs[0]) == 1 { sq = dNode.inputs[1] }
            else if dNode.opType == "Reciprocal" { sq = dNode.inputs[0] }
            else { continue }
            guard rw.soleConsumer(sq)?.0 == di, let (qi, q) = rw.producerNode(sq), q.opType == "Sqrt" else { continue }
            let ad = q.inputs[0]
            guard rw.soleConsumer(ad)?.0 == qi, let (ai, add) = rw.producerNode(ad) else { continue }
            // sum + eps (the torch.export-based exporter writes the sum without it).
            var eps: Float = 0
            var rs = ad
            var chain = [qi, di, dri]
            if add.opType == "Add" {
                guard let (epsT, sum) = splitConstant(add, rw), epsT.elementCount == 1 else { continue }
                eps = epsT.floats[0]; rs = sum; chain.append(ai)
            }
            let sumConsumer = rs == ad ? qi : ai
            guard rw.soleConsumer(rs)?.0 == sumConsumer, let (ri, red) = rw.producerNode(rs), red.opType == "ReduceSum",
                  (red.int("keepdims") ?? 1) == 0, let axes = red.reduceAxes(rw), Set(axes.map { $0 < 0 ? $0 + 5 : $0 }) == [2, 3, 4],
                  rw.shape(rs) == [1, cout] || rw.shape(rs) == [cout] else { continue }
            let pw = red.inputs[0]
            guard rw.soleConsumer(pw)?.0 == ri, let (pi, p) = rw.producerNode(pw) else { continue }
            if p.opType == "Pow" {
                guard p.inputs[0] == wm, rw.scalarConstant(p.inputs[1]) == 2 else { continue }
            } else if p.opType == "Mul" {
                guard p.inputs == [wm, wm] else { continue }
            } else { continue }
            return (wm, eps, [pi, ri] + chain)
        }
        return nil
    }
}

extension GraphRewriter {
    func type(_ value: String) -> TensorType? { graph.type(of: value) }
}
