import Testing
import MegaFSGraph
@testable import MegaFSRuntime

// Each fusion: same results as the unfused graph and the reference, the fusion reported, and
// no fusion where the pattern does not hold.

private func fusionNames(_ s: InferenceSession) -> [String: Int] {
    Dictionary(uniqueKeysWithValues: s.fusions.map { ($0.name, $0.count) })
}

@Test func convBiasActivationFuses() throws {
    var rng = Rng(20)
    for (act, attrs) in [("Relu", [String: Attribute]()), ("LeakyRelu", ["alpha": Attribute.float(0.01)])] {
        var b = GraphBuilder()
        let x = b.input("x", rng.tensor([2, 3, 9, 9]))
        let c = b.node("Conv", [x, b.constant(rng.tensor([4, 3, 3, 3])), b.constant(rng.tensor([4]))],
                       ["pads": .ints([1, 1, 1, 1]), "strides": .ints([2, 2])])
        let y = b.node(act, [c], attrs)
        b.output(y)
        let s = try expectMatchesReference(b, "conv+\(act)")
        let name = "conv+bias+\(act == "Relu" ? "relu" : "leaky_relu")"
        #expect(fusionNames(s)[name] == 1, "\(s.fusions)")
        let unfused = try expectMatchesReference(b, fusion: false, "conv+\(act) unfused")
        #expect(unfused.fusions.isEmpty)
    }
}

@Test func convResidualReluFuses() throws {
    // ResNet's block end: relu(conv(x) + b + identity).
    var rng = Rng(21)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([2, 4, 7, 7]))
    let c = b.node("Conv", [x, b.constant(rng.tensor([4, 4, 1, 1])), b.constant(rng.tensor([4]))])
    let sum = b.node("Add", [c, x])
    let y = b.node("Relu", [sum])
    b.output(y)
    let s = try expectMatchesReference(b, "conv+residual+relu")
    #expect(fusionNames(s)["conv+bias+residual+relu"] == 1, "\(s.fusions)")
}

@Test func styleganEpilogueFuses() throws {
    // conv -> + noise [1,1,H,W] -> + bias [1,C,1,1] -> leaky_relu(0.2) -> * sqrt(2)
    var rng = Rng(22)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([1, 5, 6, 6]))
    let c = b.node("Conv", [x, b.constant(rng.tensor([3, 5, 3, 3]))], ["pads": .ints([1, 1, 1, 1])])
    let n = b.node("Add", [c, b.constant(rng.tensor([1, 1, 6, 6]))])
    let bias = b.node("Add", [n, b.constant(rng.tensor([1, 3, 1, 1]))])
    let l = b.node("LeakyRelu", [bias], ["alpha": .float(0.2)])
    let y = b.node("Mul", [l, b.scalar(Float(2).squareRoot())])
    b.output(y)
    let s = try expectMatchesReference(b, "stylegan epilogue")
    #expect(fusionNames(s)["conv+noise+bias+leaky_relu+gain"] == 1, "\(s.fusions)")
}

@Test func fusionFallsBackWhenPatternDoesNotMatch() throws {
    var rng = Rng(23)
    // The conv output is read twice: nothing may be fused into it.
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([1, 3, 5, 5]))
    let c = b.node("Conv", [x, b.constant(rng.tensor([3, 3, 3, 3]))], ["pads": .ints([1, 1, 1, 1])])
    let r = b.node("Relu", [c])
    let y = b.node("Add", [r, c])
    b.output(y)
    let s = try expectMatchesReference(b, "fan-out conv")
    #expect(s.fusions.isEmpty, "\(s.fusions)")
    // A graph output in the middle of the chain stops it.
    var b2 = GraphBuilder()
    let x2 = b2.input("x", rng.tensor([1, 3, 5, 5]))
    let c2 = b2.node("Conv", [x2, b2.constant(rng.tensor([2, 3, 1, 1]))])
    let r2 = b2.node("Relu", [c2])
    b2.output(c2); b2.output(r2)
    let s2 = try expectMatchesReference(b2, "conv output kept")
    #expect(s2.fusions.isEmpty, "\(s2.fusions)")
    // A non-broadcastable-per-channel Add after the activation is not folded.
    var b3 = GraphBuilder()
    let x3 = b3.input("x", rng.tensor([1, 3, 5, 5]))
    let c3 = b3.node("Conv", [x3, b3.constant(rng.tensor([2, 3, 1, 1]))])
    let r3 = b3.node("Relu", [c3])
    let a3 = b3.node("Add", [r3, b3.constant(rng.tensor([1, 2, 1, 1]))])
    b3.output(a3)
    let s3 = try expectMatchesReference(b3, "add after activation")
    #expect(fusionNames(s3)["conv+relu"] == 1, "\(s3.fusions)")
}

@Test func gemmActivationFusesAndIdentityLeakyReluIsDropped() throws {
    var rng = Rng(24)
    for act in ["Relu", "Sigmoid", "Tanh", "LeakyRelu"] {
        var b = GraphBuilder()
        let a = b.input("a", rng.tensor([1, 16]))
        let g = b.node("Gemm", [a, b.constant(rng.tensor([8, 16])), b.constant(rng.tensor([8]))], ["transB": .int(1)])
        let y = b.node(act, [g], act == "LeakyRelu" ? ["alpha": .float(0.3)] : [:])
        // FTM's LeakyReLU(True): slope 1, the identity.
        let z = b.node("LeakyRelu", [y], ["alpha": .float(1)])
        let w = b.node("Mul", [z, a.isEmpty ? y : b.constant(rng.tensor([1, 8]))])
        b.output(w)
        let s = try expectMatchesReference(b, "gemm+\(act)")
        let names = fusionNames(s)
        let want = "gemm+" + ["Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "LeakyRelu": "leaky_relu"][act]!
        #expect(names[want] == 1, "\(s.fusions)")
        #expect(names["leaky_relu(alpha=1) removed"] == 1, "\(s.fusions)")
    }
}

/// StyleGAN2's modulated convolution as the TorchScript exporter writes it at batch 1.
func modulatedConv(_ b: inout GraphBuilder, _ rng: inout Rng, x: String, latent: String, cin: Int, cout: Int,
                           k: Int, styleDim: Int, demodulate: Bool, upsample: Bool) -> String {
    let s = b.node("Gemm", [latent, b.constant(rng.tensor([cin, styleDim])), b.constant(rng.tensor([cin], 0.5, 1.5))],
                   ["transB": .int(1)])
    let sr = b.node("Reshape", [s, b.ints([1, 1, cin, 1, 1])])
    let scale = 1 / Float(cin * k * k).squareRoot()
    let wc = b.constant(rng.tensor([1, cout, cin, k, k], -scale * 1.7, scale * 1.7), "Wc")
    var w = b.node("Mul", [wc, sr])
    if demodulate {
        let p = b.node("Pow", [w, b.scalar(2)])
        let r = b.node("ReduceSum", [p, b.ints([2, 3, 4])], ["keepdims": .int(0)])
        let a = b.node("Add", [r, b.scalar(1e-8)])
        let q = b.node("Sqrt", [a])
        let d = b.node("Div", [b.scalar(1), q])
        let dr = b.node("Reshape", [d, b.ints([1, cout, 1, 1, 1])])
        w = b.node("Mul", [w, dr])
    }
    let w4 = b.node("Reshape", [w, b.ints([cout, cin, k, k])])
    if upsample {
        let wt = b.node("Transpose", [w4], ["perm": .ints([1, 0, 2, 3])])
        return b.node("ConvTranspose", [x, wt], ["strides": .ints([2, 2]), "kernel_shape": .ints([k, k]), "pads": .ints([0, 0, 0, 0])])
    }
    return b.node("Conv", [x, w4], ["pads": .ints([k / 2, k / 2, k / 2, k / 2]), "kernel_shape": .ints([k, k])])
}

/// upfirdn2d as plain ops (Reshape, zero-insertion Pad, Pad, Conv with a [1,1,4,4] kernel, Reshape).
func upfirdn(_ b: inout GraphBuilder, x: String, n: Int, c: Int, h: Int, w: Int, up: Int, pad: (Int, Int)) -> String {
    let k1: [Float] = [1, 3, 3, 1]
    var kernel: [Float] = []
    for i in 0..<4 { for j in 0..<4 { kernel.append(k1[i] * k1[j] / 64 * Float(up * up)) } }
    var cur = b.node("Reshape", [x, b.ints([n * c, 1, h, w])])
    var hh = h, ww = w
    if up > 1 {
        cur = b.node("Reshape", [cur, b.ints([n * c, 1, h, 1, w, 1])])
        cur = b.node("Pad", [cur, b.ints([0, 0, 0, 0, 0, 0, 0, 0, 0, up - 1, 0, up - 1])], ["mode": .string("constant")])
        hh *= up; ww *= up
        cur = b.node("Reshape", [cur, b.ints([n * c, 1, hh, ww])])
    }
    cur = b.node("Pad", [cur, b.ints([0, 0, pad.0, pad.0, 0, 0, pad.1, pad.1])], ["mode": .string("constant")])
    cur = b.node("Conv", [cur, b.constant(Tensor(kernel, shape: [1, 1, 4, 4]))], ["kernel_shape": .ints([4, 4])])
    let oh = hh + pad.0 + pad.1 - 3, ow = ww + pad.0 + pad.1 - 3
    return b.node("Reshape", [cur, b.ints([n, c, oh, ow])])
}

@Test func modulatedConvolutionsFuse() throws {
    var rng = Rng(25)
    var b = GraphBuilder()
    let cin = 6, cout = 5, dim = 8
    let latents = b.input("latents", rng.tensor([1, 3, dim]))
    let x = b.input("x", rng.tensor([1, cin, 4, 4]))
    let l0 = b.node("Gather", [latents, b.constant(Tensor(scalar: Int64(0)))], ["axis": .int(1)])
    let l1 = b.node("Gather", [latents, b.constant(Tensor(scalar: Int64(1)))], ["axis": .int(1)])
    let l2 = b.node("Gather", [latents, b.constant(Tensor(scalar: Int64(2)))], ["axis": .int(1)])
    // StyledConv: modulated 3x3 conv + noise + bias + fused leaky relu.
    var y = modulatedConv(&b, &rng, x: x, latent: l0, cin: cin, cout: cout, k: 3, styleDim: dim, demodulate: true, upsample: false)
    y = b.node("Add", [y, b.constant(rng.tensor([1, 1, 4, 4]))])
    y = b.node("Add", [y, b.constant(rng.tensor([1, cout, 1, 1]))])
    y = b.node("LeakyRelu", [y], ["alpha": .float(0.2)])
    y = b.node("Mul", [y, b.scalar(Float(2).squareRoot())])
    // Upsampling StyledConv: modulated transposed conv + blur + noise + bias + activation.
    var u = modulatedConv(&b, &rng, x: y, latent: l1, cin: cout, cout: 4, k: 3, styleDim: dim, demodulate: true, upsample: true)
    u = upfirdn(&b, x: u, n: 1, c: 4, h: 9, w: 9, up: 1, pad: (1, 1))
    u = b.node("Add", [u, b.constant(rng.tensor([1, 1, 8, 8]))])
    u = b.node("Add", [u, b.constant(rng.tensor([1, 4, 1, 1]))])
    u = b.node("LeakyRelu", [u], ["alpha": .float(0.2)])
    u = b.node("Mul", [u, b.scalar(Float(2).squareRoot())])
    // ToRGB: modulated 1x1 conv without demodulation + bias, plus the upsampled skip.
    var rgb = modulatedConv(&b, &rng, x: u, latent: l2, cin: 4, cout: 3, k: 1, styleDim: dim, demodulate: false, upsample: false)
    rgb = b.node("Add", [rgb, b.constant(rng.tensor([1, 3, 1, 1]))])
    let skip = b.input("skip", rng.tensor([1, 3, 4, 4]))
    let upSkip = upfirdn(&b, x: skip, n: 1, c: 3, h: 4, w: 4, up: 2, pad: (2, 1))
    rgb = b.node("Add", [rgb, upSkip])
    b.output(rgb)

    let fused = try expectMatchesReference(b, "modulated convs")
    let names = fusionNames(fused)
    #expect(names["modulated-conv+noise+bias+leaky_relu+gain"] == 1, "\(fused.fusions)")
    #expect(names["modulated-convtranspose+blur+noise+bias+leaky_relu+gain"] == 1, "\(fused.fusions)")
    #expect(names["modulated-conv+bias+residual"] == 1 || names["modulated-conv+bias+noise"] == 1, "\(fused.fusions)")
    #expect(names["upfirdn2d(upsample)"] == 1, "\(fused.fusions)")
    // No node of the demodulation chain is left.
    let ops = Set(try #require(fused.plannedGraph).nodes.map(\.opType))
    #expect(!ops.contains("Pow") && !ops.contains("ReduceSum") && !ops.contains("ConvTranspose"), "\(ops)")
    let unfused = try expectMatchesReference(b, fusion: false, "modulated convs, no fusion")
    #expect(unfused.fusions.isEmpty)
    // Fused and unfused agree closely too.
    let a = try fused.run(b.feeds), c = try unfused.run(b.feeds)
    let cmp = compare(a[rgb]!, c[rgb]!)
    #expect(cmp.cosine > 0.99999 && cmp.maxAbsError <= 1e-4 * max(cmp.range, 1), "\(cmp)")
}

@Test func plainTransposedConvWithBlurFuses() throws {
    // A constant-weight transposed conv followed by the blur and a bias + relu epilogue.
    var rng = Rng(26)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([2, 3, 5, 4]))
    let t = b.node("ConvTranspose", [x, b.constant(rng.tensor([3, 4, 3, 3]))], ["strides": .ints([2, 2])])
    var u = upfirdn(&b, x: t, n: 2, c: 4, h: 11, w: 9, up: 1, pad: (1, 1))
    u = b.node("Add", [u, b.constant(rng.tensor([1, 4, 1, 1]))])
    u = b.node("Relu", [u])
    b.output(u)
    let s = try expectMatchesReference(b, "convtranspose+blur")
    #expect(fusionNames(s)["convtranspose+blur+bias+relu"] == 1, "\(s.fusions)")
}
