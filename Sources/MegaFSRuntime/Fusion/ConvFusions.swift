import MegaFSGraph

/// Recognises upfirdn2d written with plain tensor ops (StyleGAN2's Blur and Upsample, as the
/// exporter writes them) and replaces each chain by one UpFirDn2d node:
///
///     [Reshape(x, [NC,1,H,W]) -> Reshape([NC,1,H,1,W,1]) -> Pad(zeros after, up-1) -> Reshape([NC,1,H*up,W*up])]
///     Reshape(x, [NC,1,H,W]) -> Pad(H/W pads) -> Conv(weight [1,1,kh,kw]) -> Reshape([N,C,OH,OW])
public struct UpFirDnFusion: GraphPass {
    public let name = "upfirdn2d-fusion"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var rw = GraphRewriter(graph)
        var count = 0
        for (ci, conv) in graph.nodes.enumerated() where conv.opType == "Conv" && conv.domain.isEmpty {
            if let (node, remove) = match(conv, ci, rw) {
                rw.replace(remove, with: node)
                count += 1
            }
        }
        graph = rw.commit()
        return count
    }

    private func match(_ conv: Node, _ ci: Int, _ rw: GraphRewriter) -> (Node, [Int])? {
        guard conv.inputs.count == 2 || (conv.inputs.count == 3 && conv.inputs[2].isEmpty),
              let k = rw.constant(conv.inputs[1]), k.dtype == .float32, k.shape.count == 4, k.shape[0] == 1, k.shape[1] == 1,
              (conv.int("group") ?? 1) == 1, (conv.ints("strides") ?? [1, 1]) == [1, 1],
              (conv.ints("dilations") ?? [1, 1]) == [1, 1], (conv.string("auto_pad") ?? "NOTSET") == "NOTSET",
              let out = conv.outputs.first, let (fi, final) = rw.soleConsumer(out), final.opType == "Reshape",
              let finalShape = rw.shape(final.outputs[0]), finalShape.count == 4 else { return nil }
        let n = finalShape[0], c = finalShape[1]
        let cp = conv.ints("pads") ?? [0, 0, 0, 0]
        guard cp.count == 4 else { return nil }
        var pads = cp            // top, left, bottom, right
        var remove = [ci, fi]
        // Optional Pad on H and W.
        var cur = conv.inputs[0]
        if let (pi, pad) = rw.producerNode(cur), pad.opType == "Pad", rw.soleConsumer(cur)?.0 == ci {
            guard let p = padAmounts(pad, rw), p.count == 8, p[0] == 0, p[1] == 0, p[4] == 0, p[5] == 0 else { return nil }
            pads = [pads[0] + p[2], pads[1] + p[3], pads[2] + p[6], pads[3] + p[7]]
            remove.append(pi)
            cur = pad.inputs[0]
        }
        guard let q = rw.shape(cur), q.count == 4, q[0] == n * c, q[1] == 1 else { return nil }
        // Walk back over Reshapes (and one zero-insertion Pad) to a [N, C, H, W] source.
        var up = 1
        var source: String? = nil
        var value = cur
        var consumerIndex = remove.count > 2 ? remove[2] : ci
        while true {
            // The source: a [N, C, H, W] value (the conv's own input only when C is 1).
            if let s = rw.shape(value), s.count == 4, s[0] == n, s[1] == c, value != cur || c == 1 {
                source = value; break
            }
            guard rw.soleConsumer(value)?.0 == consumerIndex, let (pi, p) = rw.producerNode(value) else { break }
            if p.opType == "Reshape" {
                remove.append(pi); consumerIndex = pi; value = p.inputs[0]; continue
            }
            if p.opType == "Pad", up == 1, let amounts = padAmounts(p, rw), let s6 = rw.shape(p.inputs[0]), s6.count == 6,
               s6[1] == 1, s6[3] == 1, s6[5] == 1, amounts.count == 12,
               amounts[0..<6].allSatisfy({ $0 == 0 }), amounts[6] == 0, amounts[7] == 0, amounts[8] == 0, amounts[10] == 0,
               amounts[9] >= 1, amounts[9] == amounts[11] {
                up = amounts[9] + 1
                remove.append(pi); consumerIndex = pi; value = p.inputs[0]; continue
            }
            break
        }
        guard let src = source, let s = rw.shape(src), rw.type(src)?.dtype == .float32 else { return nil }
        // The planes seen by the conv must be the source's, upsampled.
        guard q[2] == s[2] * up, q[3] == s[3] * up else { return nil }
        var attrs: [String: Attribute] = [:]
        attrs["kernel"] = .tensor(k.reshaped([k.shape[2], k.shape[3]]))
        attrs["up"] = .int(up)
        attrs["pads"] = .ints(pads)
        attrs["fusion"] = .string(up > 1 ? "upfirdn2d(upsample)" : "upfirdn2d(blur)")
        var geo = UpFirDnGeometry()
        geo.up = up; geo.padTop = pads[0]; geo.padLeft = pads[1]; geo.padBottom = pads[2]; geo.padRight = pads[3]
        geo.kh = k.shape[2]; geo.kw = k.shape[3]; geo.h = s[2]; geo.w = s[3]
        guard finalShape == [n, c, geo.oh, geo.ow] else { return nil }
        return (Node(name: conv.name, opType: "UpFirDn2d", domain: runtimeDomain, inputs: [src],
                     outputs: final.outputs, attributes: attrs), remove)
    }

    /// Constant-mode Pad with zero value: its pads (ONNX order: all begins, then all ends).
    private func padAmounts(_ pad: Node, _ rw: GraphRewriter) -> [Int]? {
        guard (pad.string("mode") ?? "constant") == "constant" else { return nil }
        if pad.inputs.count > 2, !pad.inputs[2].isEmpty {
            guard let v = rw.constant(pad.inputs[2]), v.floats.allSatisfy({ $0 == 0 }) else { return nil }
        }
        if pad.inputs.count > 3, !pad.inputs[3].isEmpty { return nil }
        if let p = pad.ints("pads") { return (pad.float("value") ?? 0) == 0 ? p : nil }
        guard pad.inputs.count > 1 else { return nil }
        return rw.intsConstant(pad.inputs[1])
    }
}

/// A transposed convolution (plain or modulated) followed by an upfirdn2d blur becomes one
/// FusedConv that blurs each output plane from scratch memory and applies the epilogue there.
public struct ConvTransposeBlurFusion: GraphPass {
    public let name = "convtranspose-blur-fusion"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var rw = GraphRewriter(graph)
        var count = 0
        for (ci, node) in graph.nodes.enumerated() {
            let isT = (node.opType == "ConvTranspose" && node.domain.isEmpty) ||
                (node.opType == "FusedConv" && node.domain == runtimeDomain && node.int("transposed") == 1 &&
                 node.tensor("blur_kernel") == nil && node.string("activation") == nil && (node.inputs.count < 5 || node.inputs[4].isEmpty))
            guard isT, let out = node.outputs.first, let (bi, blur) = rw.soleConsumer(out),
                  blur.opType == "UpFirDn2d", blur.domain == runtimeDomain, (blur.int("up") ?? 1) == 1,
                  let k = blur.tensor("kernel"), let x = rw.shape(node.inputs[0]), x.count == 4,
                  let w = rw.shape(node.inputs[1]), ConvGeometry.convTranspose(node: node, x: x, weight: w) != nil else { continue }
            var attrs = node.attributes
            var inputs = node.inputs
            while inputs.count < 5 { inputs.append("") }
            if node.domain.isEmpty {
                attrs["transposed"] = .int(1)
                attrs["fusion"] = .string("convtranspose")
            }
            attrs["blur_kernel"] = .tensor(k)
            attrs["blur_pads"] = .ints(blur.ints("pads") ?? [0, 0, 0, 0])
            attrs["blur_up"] = .int(1)
            attrs["fusion"] = .string((attrs["fusion"].flatMap { if case .string(let s) = $0 { return s } else { return nil } } ?? "convtranspose") + "+blur")
            rw.replace([ci, bi], with: Node(name: node.name, opType: "FusedConv", domain: runtimeDomain,
                                            inputs: inputs, outputs: blur.outputs, attributes: attrs))
            count += 1
        }
        graph = rw.commit()
        return count
    }
}

/// Folds what follows a convolution into its epilogue: per-channel bias Adds, one tensor Add
/// (a residual [N,C,H,W] or StyleGAN2's noise [1,1,H,W]), Relu / LeakyRelu, and a constant
/// scalar Mul after the activation (FusedLeakyReLU's sqrt 2). Plain Conv / ConvTranspose
/// become FusedConv; the chain stops at the first node that does not fit.
public struct ConvEpilogueFusion: GraphPass {
    public let name = "conv-epilogue-fusion"
    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        var rw = GraphRewriter(graph)
        var count = 0
        for (ci, node) in graph.nodes.enumerated() {
            let plain = (node.opType == "Conv" || node.opType == "ConvTranspose") && node.domain.isEmpty
            let fused = node.opType == "FusedConv" && node.domain == runtimeDomain && node.string("activation") == nil
            guard plain || fused, !rw.claimed.contains(ci), let out = node.outputs.first,
                  let yShape = rw.shape(out), yShape.count == 4, rw.type(out)?.dtype == .float32,
                  let xShape = rw.shape(node.inputs[0]), let wShape = rw.shape(node.inputs[1]) else { continue }
            let transposed = node.opType == "ConvTranspose" || node.int("transposed") == 1
            guard (transposed ? ConvGeometry.convTranspose(node: node, x: xShape, weight: wShape)
                              : ConvGeometry.conv(node: node, x: xShape, weight: wShape)) != nil else { continue }
            let cout = yShape[1]
            var inputs = node.inputs
            while inputs.count < 5 { inputs.append("") }
            var bias: Tensor? = inputs[2].isEmpty ? nil : rw.constant(inputs[2])
            let biasIsRuntime = !inputs[2].isEmpty && bias == nil
            var biasChanged = false
            var addend: String? = inputs[4].isEmpty ? nil : inputs[4]
            var activation: String? = nil
            var alpha: Float = 0.01
            var gain: Float? = nil
            var parts: [String] = []
            var remove = [ci]
            var cur = out
            while let (ni, next) = rw.soleConsumer(cur), next.domain.isEmpty, gain == nil {
                var took = false
                switch next.opType {
                case "Add" where activation == nil && next.inputs.count == 2:
                    let other = next.inputs[0] == cur ? next.inputs[1] : next.inputs[0]
                    guard let os = rw.shape(other), rw.type(other)?.dtype == .float32,
                          (try? OperatorSupport.broadcast(yShape, os)) == yShape else { break }
                    let padded = Array(repeating: 1, count: max(0, 4 - os.count)) + os
                    guard padded.count == 4 else { break }
                    if let c = rw.constant(other), padded[0] == 1, padded[2] == 1, padded[3] == 1, padded[1] == cout, !biasIsRuntime {
                        let v = c.floats
                        if let b = bias { let bv = b.floats; bias = Tensor(zip(bv, v).map { $0 + $1 }, shape: [cout]) }
                        else { bias = Tensor(v, shape: [cout]) }
                        biasChanged = true
                        parts.append("bias"); took = true
                    } else if addend == nil, padded[2] == yShape[2], padded[3] == yShape[3],
                              padded[0] == 1 || padded[0] == yShape[0], padded[1] == 1 || padded[1] == cout {
                        addend = other
                        parts.append(padded[1] == cout && padded[0] == yShape[0] ? "residual" : "noise")
                        took = true
                    }
                case "Relu" where activation == nil:
                    activation = "relu"; parts.append("relu"); took = true
                case "LeakyRelu" where activation == nil:
                    activation = "leaky_relu"; alpha = next.float("alpha") ?? 0.01; parts.append("leaky_relu"); took = true
                case "Mul" where next.inputs.count == 2:
                    let other = next.inputs[0] == cur ? next.inputs[1] : next.inputs[0]
                    if let s = rw.scalarConstant(other), rw.shape(next.outputs[0]) == yShape {
                        gain = s; parts.append("gain"); took = true
                    }
                default: break
                }
                if !took { break }
                remove.append(ni)
                cur = next.outputs[0]
            }
            if remove.count == 1 { continue }
            if biasChanged, let b = bias { inputs[2] = rw.addInitializer(out + "/bias", b) }
            if let addend { inputs[4] = addend }
            var attrs = node.attributes
            if plain {
                attrs["transposed"] = .int(transposed ? 1 : 0)
                attrs["fusion"] = .string(transposed ? "convtranspose" : "conv")
            }
            // The convolution's own bias (BatchNorm folded into it) counts as the fused bias.
            if node.inputs.count > 2, !node.inputs[2].isEmpty, !parts.contains("bias") { parts.insert("bias", at: 0) }
            attrs["activation"] = .string(activation ?? "none")
            attrs["alpha"] = .float(alpha)
            attrs["gain"] = .float(gain ?? 1)
            var base = "conv"
            if case .string(let s)? = attrs["fusion"] { base = s }
            var seen = Set<String>()
            let suffix = parts.filter { seen.insert($0).inserted }.joined(separator: "+")
            attrs["fusion"] = .string(base + "+" + suffix)
            rw.replace(remove, with: Node(name: node.name, opType: "FusedConv", domain: runtimeDomain,
                                          inputs: inputs, outputs: [cur], attributes: attrs))
            count += 1
        }
        graph = rw.commit()
        return count
    }
}
