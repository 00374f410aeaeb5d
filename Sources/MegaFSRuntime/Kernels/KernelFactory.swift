import MegaFSGraph

/// The domain of the fused operators the runtime's passes create.
public let runtimeDomain = "megafs.runtime"

/// Picks the kernel for a node: a fast kernel when one fits the node's attributes and shapes,
/// the operator's reference kernel otherwise.
enum KernelFactory {
    static let viewOps: Set<String> = ["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"]
    static let binaryOps: Set<String> = ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"]
    static let unaryOps: Set<String> = ["Relu", "LeakyRelu", "Sigmoid", "Tanh", "Sqrt", "Reciprocal", "Neg", "Exp", "Abs", "Clip"]
    /// Ops with a fast kernel (for some attributes and shapes).
    static let fastOps: Set<String> = viewOps.union(binaryOps).union(unaryOps).union([
        "Conv", "ConvTranspose", "Gemm", "MatMul", "Concat", "Slice", "Transpose", "Pad", "Gather",
        "Resize", "MaxPool", "BatchNormalization", "DequantizeLinear"])
    static let fusedOps: Set<String> = ["FusedConv", "FusedGemm", "UpFirDn2d"]

    static func make(_ req: KernelRequest, fast: Bool) throws -> RuntimeKernel {
        let node = req.node
        if node.domain == runtimeDomain {
            guard let k = fused(req) else {
                throw RuntimeError.planning("fused node \(node.displayName) (\(node.opType)) has no kernel for its shapes")
            }
            return k
        }
        if fast, let k = standard(req) { return k }
        guard let op = OperatorRegistry.lookup(node.opType, domain: node.domain) else {
            throw RuntimeError.planning("no kernel for operator \(node.opType) (node \(node.displayName))")
        }
        return ReferenceKernel(request: req, op: op)
    }

    static func standard(_ req: KernelRequest) -> RuntimeKernel? {
        let node = req.node
        let op = node.opType
        if viewOps.contains(op) {
            guard let x = req.input(0), let y = req.outputs.first ?? nil, x.dtype == y.dtype, x.byteCount == y.byteCount,
                  req.outputs.dropFirst().allSatisfy({ $0 == nil }) else { return nil }
            if op == "Dropout", let mode = req.input(2) {
                // Inference only: a training_mode input that is not a constant false runs the reference.
                guard let c = mode.constant, c.int64s.allSatisfy({ $0 == 0 }) else { return nil }
            }
            if op == "Dropout", (req.node.int("is_test") ?? 1) == 0, req.opset < 7 { return nil }
            return ViewKernel()
        }
        if binaryOps.contains(op) { return ElementwiseBuilder.binary(req) }
        if unaryOps.contains(op) { return ElementwiseBuilder.unary(req) }
        switch op {
        case "Conv", "ConvTranspose": return ConvBuilder.build(req)
        case "Gemm":
            guard req.allFloat32, let a = req.input(0), let b = req.input(1), let y = req.outputs.first ?? nil,
                  a.shape.count == 2, b.shape.count == 2 else { return nil }
            let ta = (node.int("transA") ?? 0) != 0, tb = (node.int("transB") ?? 0) != 0
            let m = ta ? a.shape[1] : a.shape[0], k = ta ? a.shape[0] : a.shape[1]
            let kb = tb ? b.shape[1] : b.shape[0], n = tb ? b.shape[0] : b.shape[1]
            guard k == kb, y.shape == [m, n] else { return nil }
            if let c = req.input(2) { guard (try? OperatorSupport.broadcast(c.shape, [m, n])) == [m, n] else { return nil } }
            return GemmKernel(a: a, b: b, c: req.input(2), y: y, transA: ta, transB: tb,
                              alpha: node.float("alpha") ?? 1, beta: node.float("beta") ?? 1, activation: .none, gain: 1)
        case "MatMul":
            guard req.allFloat32, let a = req.input(0), let b = req.input(1), let y = req.outputs.first ?? nil else { return nil }
            return MatMulKernel(a: a, b: b, y: y)
        case "Concat":
            guard let y = req.outputs.first ?? nil, let axis = node.int("axis") else { return nil }
            let inputs = req.inputs.compactMap { $0 }
            guard inputs.count == req.inputs.count, inputs.allSatisfy({ $0.dtype == y.dtype && $0.shape.count == y.shape.count }) else { return nil }
            return ConcatKernel(inputs: inputs, y: y, axis: axis < 0 ? axis + y.shape.count : axis)
        case "Slice": return StridedCopyKernel.slice(req)
        case "Transpose": return StridedCopyKernel.transpose(req)
        case "Pad": return PadKernel.build(req)
        case "Gather": return GatherKernel(req)
        case "Resize": return ResizeLinearKernel(req)
        case "MaxPool": return MaxPoolKernel(req)
        case "BatchNormalization": return BatchNormKernel(req)
        case "DequantizeLinear": return DequantizeKernel.build(req)
        default: return nil
        }
    }

    static func fused(_ req: KernelRequest) -> RuntimeKernel? {
        switch req.node.opType {
        case "FusedConv": return ConvBuilder.build(req)
        case "FusedGemm":
            guard let a = req.input(0), let b = req.input(1), let y = req.outputs.first ?? nil,
                  a.shape.count == 2, b.shape.count == 2,
                  let act = Activation(name: req.node.string("activation") ?? "none", alpha: req.node.float("alpha") ?? 0.01)
            else { return nil }
            let node = req.node
            return GemmKernel(a: a, b: b, c: req.input(2), y: y, transA: (node.int("transA") ?? 0) != 0,
                              transB: (node.int("transB") ?? 0) != 0, alpha: node.float("gemm_alpha") ?? 1,
                              beta: node.float("beta") ?? 1, activation: act, gain: node.float("gain") ?? 1)
        case "UpFirDn2d":
            guard let x = req.input(0), let y = req.outputs.first ?? nil, x.shape.count == 4, y.shape.count == 4,
                  let geo = UpFirDnSpec.geometry(req.node, h: x.shape[2], w: x.shape[3]),
                  let k = req.node.tensor("kernel"),
                  y.shape == [x.shape[0], x.shape[1], geo.oh, geo.ow] else { return nil }
            return UpFirDnKernel(geometry: geo, kernel: k.floats, x: x.slot, y: y.slot,
                                 planes: x.shape[0] * x.shape[1], channels: x.shape[1], epilogue: ConvEpilogue())
        default: return nil
        }
    }
}

/// Attributes of an UpFirDn2d node (and a FusedConv's blur): `kernel` tensor [kh, kw]
/// (correlation), `up`, `pads` [top, left, bottom, right].
enum UpFirDnSpec {
    static func geometry(_ node: Node, h: Int, w: Int, prefix: String = "") -> UpFirDnGeometry? {
        guard let k = node.tensor(prefix + "kernel"), k.shape.count == 2, k.dtype == .float32 else { return nil }
        let pads = node.ints(prefix + "pads") ?? [0, 0, 0, 0]
        let up = node.int(prefix + "up") ?? 1
        guard pads.count == 4, up >= 1 else { return nil }
        var g = UpFirDnGeometry()
        g.up = up; g.padTop = pads[0]; g.padLeft = pads[1]; g.padBottom = pads[2]; g.padRight = pads[3]
        g.kh = k.shape[0]; g.kw = k.shape[1]; g.h = h; g.w = w
        guard g.oh >= 1, g.ow >= 1 else { return nil }
        return g
    }
}

/// Conv, ConvTranspose and FusedConv. FusedConv inputs: [X, W, B, S, addend] ("" when absent);
/// attributes: the convolution's own, `transposed`, `demodulate`, `demod_eps`, `blur_kernel`,
/// `blur_pads`, `activation`, `alpha`, `gain`.
enum ConvBuilder {
    static func build(_ req: KernelRequest) -> RuntimeKernel? {
        let node = req.node
        guard req.allFloat32, let x = req.input(0), let w = req.input(1), let y = req.outputs.first ?? nil else { return nil }
        let fused = node.opType == "FusedConv"
        let transposed = fused ? (node.int("transposed") ?? 0) != 0 : node.opType == "ConvTranspose"
        guard let g = transposed ? ConvGeometry.convTranspose(node: node, x: x.shape, weight: w.shape)
                                 : ConvGeometry.conv(node: node, x: x.shape, weight: w.shape) else { return nil }
        var blur: (geometry: UpFirDnGeometry, kernel: [Float])? = nil
        if fused, node.tensor("blur_kernel") != nil {
            guard transposed, let bg = UpFirDnSpec.geometry(node, h: g.oh, w: g.ow, prefix: "blur_"), bg.up == 1 else { return nil }
            blur = (bg, node.tensor("blur_kernel")!.floats)
        }
        let oh = blur?.geometry.oh ?? g.oh, ow = blur?.geometry.ow ?? g.ow
        guard y.shape == [g.n, g.cout, oh, ow] else { return nil }
        var ep = ConvEpilogue()
        if let b = req.input(2) {
            guard b.elementCount == g.cout else { return nil }
            ep.bias = b.slot
        }
        // U held by the session for this weight, which it gave back (see HeldWeights).
        let held = transposed || node.inputs.count < 2 ? nil : req.heldWeights?.winograd[node.inputs[1]]
        var modulation: Modulation? = nil
        if fused, let s = req.input(3) {
            guard g.groups == 1, s.shape.count == 2, s.shape[1] == g.cin, s.shape[0] == 1 || s.shape[0] == g.n else { return nil }
            let demod = (node.int("demodulate") ?? 0) != 0
            var wsq: [Float] = []
            if demod, let held {
                guard held.weightSquares.count == g.cout * g.cin else { return nil }
                wsq = held.weightSquares
            } else if demod {
                // The weight's values (dequantized if int8): only the demodulation reads them here.
                guard let wc = w.constant ?? w.quantized?.dequantized() else { return nil }
                wsq = Modulation.weightSquares(wc, transposed: transposed && !ConvGeometry.weightIsOutIn(node))
            }
            modulation = Modulation(style: s.slot, styleRows: s.shape[0], demodulate: demod,
                                    eps: node.float("demod_eps") ?? 1e-8, weightSquares: wsq)
        }
        if fused, let a = req.input(4) {
            var shape = a.shape
            guard shape.count <= 4 else { return nil }
            shape = Array(repeating: 1, count: 4 - shape.count) + shape
            guard shape[2] == oh, shape[3] == ow, shape[0] == 1 || shape[0] == g.n,
                  shape[1] == 1 || shape[1] == g.cout else { return nil }
            ep.addend = AddendSpec(slot: a.slot, perSample: shape[0] == g.n && g.n > 1, perChannel: shape[1] == g.cout && g.cout > 1)
        }
        if fused {
            guard let act = Activation(name: node.string("activation") ?? "none", alpha: node.float("alpha") ?? 0.01) else { return nil }
            ep.activation = act
            ep.gain = node.float("gain") ?? 1
        }
        if transposed {
            return ConvTransposeKernel(geometry: g, x: x.slot, w: w.slot, y: y.slot, modulation: modulation,
                                       blur: blur, epilogue: ep, algorithm: req.convAlgorithm, bandBudgetBytes: req.bandBudgetBytes,
                                       weightOutIn: ConvGeometry.weightIsOutIn(node))
        }
        if modulation == nil && g.cinG == 1 && g.coutG == 1 {
            return DepthwiseConvKernel(geometry: g, x: x.slot, w: w.slot, y: y.slot, epilogue: ep)
        }
        var int8Weights: PackedInt8Weights? = nil
        // Modulated convs keep their float kernels: as int8 im2col products the generator's
        // were faster at 32-128 px but slower from 256 px up (1024 px: 82-112 against 59-71 ms),
        // the whole generator no faster, and twice as slow when other tenants load the memory.
        if req.int8Activations, modulation == nil, g.groups == 1, let q = w.quantized, q.values.shape.count == 4,
           q.axis == 0 || (q.axis == nil && q.scales.count == 1) {
            let k = g.cinG * g.kh * g.kw
            if let packed = req.heldWeights?.int8[node.inputs[1]] {
                guard packed.m == g.cout, packed.k == k else { return nil }
                int8Weights = packed
            } else {
                let scales = q.axis == 0 ? q.scales : Array(repeating: q.scales[0], count: g.cout)
                int8Weights = PackedInt8Weights(int8: q.values.storage.pointer.assumingMemoryBound(to: Int8.self),
                                                m: g.cout, k: k, scales: scales, path: .best, threads: req.threads)
            }
        }
        return ConvKernel(geometry: g, x: x.slot, w: w.slot, y: y.slot, modulation: modulation, epilogue: ep,
                          algorithm: req.convAlgorithm, bandBudgetBytes: req.bandBudgetBytes, int8Weights: int8Weights,
                          quantizedWeight: g.groups == 1 && modulation == nil ? w.quantized : nil,
                          constantWeight: w.constant, heldWinograd: held, planningThreads: req.threads)
    }
}
