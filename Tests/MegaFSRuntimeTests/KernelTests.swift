import Testing
import MegaFSGraph
@testable import MegaFSRuntime

// Fast kernels against the MegaFSGraph reference kernels on random shapes.

@Test func convMatchesReferenceOnRandomShapes() throws {
    var rng = Rng(1)
    var kinds = Set<String>()
    for trial in 0..<70 {
        let groups = [1, 1, 1, 2, 3][rng.int(0...4)]
        let cinG = rng.int(1...4), coutG = rng.int(1...4)
        let depthwise = trial % 7 == 0
        let cin = depthwise ? groups * 1 : groups * cinG
        let cout = depthwise ? groups : groups * coutG
        let pointwise = trial % 5 == 1
        let kh = pointwise ? 1 : rng.int(1...4), kw = pointwise ? 1 : rng.int(1...4)
        let sh = pointwise ? 1 : rng.int(1...3), sw = pointwise ? 1 : rng.int(1...3), dh = rng.int(1...2), dw = rng.int(1...2)
        let pads = (0..<4).map { _ in pointwise ? 0 : rng.int(0...2) }
        let h = rng.int(1...11) + (kh - 1) * dh, w = rng.int(1...11) + (kw - 1) * dw
        let n = rng.int(1...2)
        var b = GraphBuilder()
        let x = b.input("x", rng.tensor([n, cin, h, w]))
        let wt = rng.tensor([cout, cin / groups, kh, kw])
        let weightConstant = trial % 3 != 0
        let wn = weightConstant ? b.constant(wt, "w") : b.input("w", wt)
        var inputs = [x, wn]
        if trial % 2 == 0 { inputs.append(b.constant(rng.tensor([cout]), "b")) }
        let y = b.node("Conv", inputs, ["group": .int(groups), "kernel_shape": .ints([kh, kw]), "strides": .ints([sh, sw]),
                                        "dilations": .ints([dh, dw]), "pads": .ints(pads)])
        b.output(y)
        let s = try expectMatchesReference(b, fusion: false, "conv trial \(trial) g\(groups) \(cin)->\(cout) k\(kh)x\(kw) s\(sh),\(sw) d\(dh),\(dw) p\(pads) \(h)x\(w)")
        for k in s.lastPlanSummary?.kernels ?? [] { kinds.insert(k.name) }
    }
    // Every code path ran: GEMM with im2col, the few-row product (1x1 with at most 4 output
    // channels per group: all here; the 1x1 sgemm path runs in SmallRowProductTests), direct
    // depthwise, one GEMM over the batch.
    #expect(kinds.isSuperset(of: ["conv(im2col)", "conv(pointwise-rows)", "conv(depthwise)", "conv(batched)"]), "\(kinds)")
}

@Test func convUsesBandsInsteadOfFullIm2col() throws {
    // 3x3 conv over 16 channels at 160x160: the full im2col matrix would be 14.7 MB; the
    // kernel builds it in bands of at most 4 MB, and the result still matches.
    var rng = Rng(2)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([1, 16, 160, 160]))
    let y = b.node("Conv", [x, b.constant(rng.tensor([8, 16, 3, 3]), "w")], ["pads": .ints([1, 1, 1, 1])])
    b.output(y)
    let s = try expectMatchesReference(b, fusion: false, "banded conv")
    let arena = try #require(s.lastPlanSummary).arenaBytes
    #expect(arena <= 4 << 20 + 4096, "arena \(arena)")
    #expect(arena > 0)
}

@Test func largeConvPlansWithoutGigabyteIm2col() throws {
    // The StyleGAN2 1024x1024x32 3x3 conv: planning only (no run). Input and output live outside
    // the arena, so the arena is the im2col band alone.
    var b = GraphBuilder()
    let x = b.input("x", Tensor(zeros: .float32, shape: [1, 32, 1024, 1024]))
    let y = b.node("Conv", [x, b.constant(Tensor(zeros: .float32, shape: [32, 32, 3, 3]), "w")], ["pads": .ints([1, 1, 1, 1])])
    let z = b.node("Relu", [y])
    b.output(z)
    let s = try InferenceSession(graph: b.graph, options: SessionOptions(threads: 2, enableFusion: false))
    let plan = try s.prepare(inputShapes: ["x": [1, 32, 1024, 1024]])
    // y (128 MB) is in the arena, relu runs in place over it; the conv's band adds a few MB:
    // 1.1 MB for the direct kernel, or with Winograd (32 channels on AVX-512) its padded band,
    // V and M, aimed at twice the 4 MB im2col budget.
    let conv = try #require(s.lastPlanSteps.compactMap { $0.kernel as? ConvKernel }.first)
    let bandLimit = conv.winograd != nil ? WinogradConvPlan.bandBudget(im2colBudget: im2colBudgetBytes) + (1 << 20) : 4 << 20
    #expect(conv.scratchBytes <= bandLimit, "\(conv.kernelName): scratch \(conv.scratchBytes)")
    #expect(plan.arenaBytes <= (128 << 20) + conv.scratchBytes + 4096, "arena \(plan.arenaBytes)")
    #expect(plan.arenaBytes >= 128 << 20)
}

@Test func convTransposeMatchesReferenceOnRandomShapes() throws {
    var rng = Rng(3)
    for trial in 0..<50 {
        let groups = [1, 1, 2][rng.int(0...2)]
        let cin = groups * rng.int(1...4), coutG = rng.int(1...4)
        let kh = rng.int(1...4), kw = rng.int(1...4)
        let sh = rng.int(1...3), sw = rng.int(1...3), dh = rng.int(1...2), dw = rng.int(1...2)
        let h = rng.int(1...7), w = rng.int(1...7)
        let pads = [rng.int(0...1), rng.int(0...1), rng.int(0...1), rng.int(0...1)]
        let outPad = [rng.int(0...(max(sh, dh) - 1)), rng.int(0...(max(sw, dw) - 1))]
        let n = rng.int(1...2)
        let oh = sh * (h - 1) + outPad[0] + (kh - 1) * dh + 1 - pads[0] - pads[2]
        let ow = sw * (w - 1) + outPad[1] + (kw - 1) * dw + 1 - pads[1] - pads[3]
        if oh < 1 || ow < 1 { continue }
        var b = GraphBuilder()
        let x = b.input("x", rng.tensor([n, cin, h, w]))
        let wt = rng.tensor([cin, coutG, kh, kw])
        let wn = trial % 3 == 0 ? b.input("w", wt) : b.constant(wt, "w")
        var inputs = [x, wn]
        if trial % 2 == 1 { inputs.append(b.constant(rng.tensor([coutG * groups]), "b")) }
        let y = b.node("ConvTranspose", inputs, ["group": .int(groups), "kernel_shape": .ints([kh, kw]), "strides": .ints([sh, sw]),
                                                 "dilations": .ints([dh, dw]), "pads": .ints(pads), "output_padding": .ints(outPad)])
        b.output(y)
        try expectMatchesReference(b, fusion: false, "convT trial \(trial) g\(groups) k\(kh)x\(kw) s\(sh),\(sw) d\(dh),\(dw) p\(pads) op\(outPad) \(h)x\(w)")
    }
}

@Test func gemmMatchesReference() throws {
    var rng = Rng(4)
    for trial in 0..<40 {
        let m = trial % 5 == 0 ? 1 : rng.int(1...9), n = rng.int(1...9), k = rng.int(1...9)
        let ta = rng.int(0...1) == 1, tb = rng.int(0...1) == 1
        var b = GraphBuilder()
        let a = b.input("a", rng.tensor(ta ? [k, m] : [m, k]))
        let bt = rng.tensor(tb ? [n, k] : [k, n])
        let bn = trial % 2 == 0 ? b.constant(bt, "B") : b.input("b", bt)
        var inputs = [a, bn]
        let cShapes: [[Int]?] = [nil, [n], [m, 1], [1, n], [m, n], []]
        if let cs = cShapes[trial % cShapes.count] { inputs.append(b.constant(rng.tensor(cs), "C")) }
        let y = b.node("Gemm", inputs, ["transA": .int(ta ? 1 : 0), "transB": .int(tb ? 1 : 0),
                                        "alpha": .float(rng.float(0.5, 2)), "beta": .float(rng.float(-1, 1))])
        b.output(y)
        try expectMatchesReference(b, fusion: false, "gemm trial \(trial) m\(m) n\(n) k\(k) tA\(ta) tB\(tb)")
    }
}

@Test func matMulWithBatchBroadcastMatchesReference() throws {
    var rng = Rng(5)
    let cases: [([Int], [Int])] = [
        ([3, 4], [4, 5]), ([2, 3, 4], [4, 5]), ([2, 3, 4], [2, 4, 5]), ([1, 3, 4], [2, 4, 5]),
        ([2, 1, 3, 4], [3, 4, 2]), ([4], [4, 5]), ([3, 4], [4]), ([1, 4], [4, 7]), ([5, 2, 1, 4], [1, 4, 3]),
    ]
    for (sa, sb) in cases {
        var b = GraphBuilder()
        let y = b.node("MatMul", [b.input("a", rng.tensor(sa)), b.input("b", rng.tensor(sb))])
        b.output(y)
        try expectMatchesReference(b, fusion: false, "matmul \(sa) x \(sb)")
    }
}

@Test func elementwiseBroadcastingMatchesReference() throws {
    var rng = Rng(6)
    let shapes: [([Int], [Int])] = [
        ([2, 3, 4, 5], [2, 3, 4, 5]), ([2, 3, 4, 5], [1, 3, 1, 1]), ([2, 3, 4, 5], [5]), ([2, 3, 4, 5], []),
        ([1, 1, 4, 5], [2, 3, 1, 1]), ([3, 1, 5], [1, 4, 1]), ([4, 5], [3, 1, 1]), ([1, 3, 1, 1], [2, 3, 4, 5]),
        ([6, 1], [1, 7]), ([1], [9]), ([2, 1, 3, 1, 2], [1, 4, 1, 5, 1]), ([100000], [1]), ([3, 70000], [3, 1]),
    ]
    for op in ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"] {
        for (sa, sb) in shapes {
            var b = GraphBuilder()
            let lo: Float = op == "Pow" ? 0.1 : -2
            let a = b.input("a", rng.tensor(sa, lo, 2))
            let c = op == "Div" ? rng.tensor(sb, 0.5, 2) : rng.tensor(sb, -2, 2)
            let y = b.node(op, [a, sb.isEmpty && op != "Pow" ? b.constant(c) : b.input("b", c)])
            b.output(y)
            try expectMatchesReference(b, fusion: false, "\(op) \(sa) \(sb)")
        }
    }
    // Pow with the exponents that skip powf.
    for e: Float in [2, 0.5, 1, -1, -0.5, 3] {
        var b = GraphBuilder()
        let y = b.node("Pow", [b.input("a", rng.tensor([3, 17], 0.1, 3)), b.scalar(e)])
        b.output(y)
        try expectMatchesReference(b, fusion: false, "Pow exponent \(e)")
    }
}

@Test func unaryOperatorsMatchReference() throws {
    var rng = Rng(7)
    let ops: [(String, [String: Attribute], Float, Float)] = [
        ("Relu", [:], -3, 3), ("LeakyRelu", ["alpha": .float(0.2)], -3, 3), ("LeakyRelu", [:], -3, 3),
        ("Sigmoid", [:], -30, 30), ("Tanh", [:], -5, 5), ("Sqrt", [:], 0, 4), ("Reciprocal", [:], 0.5, 3),
        ("Neg", [:], -3, 3), ("Exp", [:], -5, 5), ("Abs", [:], -3, 3),
    ]
    for (op, attrs, lo, hi) in ops {
        var b = GraphBuilder()
        let y = b.node(op, [b.input("x", rng.tensor([2, 3, 33, 7], lo, hi))], attrs)
        b.output(y)
        try expectMatchesReference(b, fusion: false, "\(op) \(attrs)")
    }
    var b = GraphBuilder()
    let y = b.node("Clip", [b.input("x", rng.tensor([4, 50], -3, 3)), b.scalar(-0.5), b.scalar(1.25)])
    b.output(y)
    try expectMatchesReference(b, fusion: false, "Clip")
}

@Test func dataMovementMatchesReference() throws {
    var rng = Rng(8)
    // Slice with steps (negative too), axes, clamping.
    let slices: [([Int], [Int], [Int], [Int], [Int])] = [
        ([4, 5, 6], [1, 0], [3, 5], [0, 2], [1, 2]),
        ([4, 5, 6], [-1], [-9_223_372_036_854_775_807], [2], [-1]),
        ([4, 5, 6], [3, -2], [0, 1], [0, 1], [-2, -1]),
        ([1, 18, 32], [4], [18], [1], [1]),
        ([7, 9], [0, 0], [100, 100], [0, 1], [3, 4]),
    ]
    for (shape, starts, ends, axes, steps) in slices {
        var b = GraphBuilder()
        let y = b.node("Slice", [b.input("x", rng.tensor(shape)), b.ints(starts), b.ints(ends), b.ints(axes), b.ints(steps)])
        b.output(y)
        try expectMatchesReference(b, fusion: false, "Slice \(shape) \(starts) \(ends) \(axes) \(steps)")
    }
    for perm in [[1, 0, 2, 3], [0, 2, 3, 1], [3, 2, 1, 0], [0, 1, 3, 2]] {
        var b = GraphBuilder()
        let y = b.node("Transpose", [b.input("x", rng.tensor([2, 3, 4, 5]))], ["perm": .ints(perm)])
        b.output(y)
        try expectMatchesReference(b, fusion: false, "Transpose \(perm)")
    }
    for axis in [0, 1, -1] {
        var b = GraphBuilder()
        let s1 = axis == 0 ? [1, 3, 4] : [2, 3, 4], s2 = axis == 1 ? [2, 5, 4] : (axis == 0 ? [2, 3, 4] : [2, 3, 2])
        let y = b.node("Concat", [b.input("a", rng.tensor(s1)), b.constant(rng.tensor(s2)), b.input("c", rng.tensor(s1))], ["axis": .int(axis)])
        b.output(y)
        try expectMatchesReference(b, fusion: false, "Concat axis \(axis)")
    }
    let pads: [[Int]] = [[0, 0, 1, 2, 0, 0, 2, 1], [0, 1, -1, 0, 0, 0, 1, -2], [0, 0, 0, 0, 0, 0, 0, 0]]
    for p in pads {
        var b = GraphBuilder()
        let y = b.node("Pad", [b.input("x", rng.tensor([2, 3, 5, 4])), b.ints(p), b.scalar(p[1] == 1 ? 0.5 : 0)], ["mode": .string("constant")])
        b.output(y)
        try expectMatchesReference(b, fusion: false, "Pad \(p)")
    }
    for (axis, idx) in [(1, Tensor(scalar: Int64(2))), (0, Tensor([Int64(1), -1, 0], shape: [3])), (2, Tensor([Int64(0), 3, 3, 1], shape: [2, 2]))] {
        var b = GraphBuilder()
        let y = b.node("Gather", [b.input("x", rng.tensor([3, 4, 5])), b.constant(idx)], ["axis": .int(axis)])
        b.output(y)
        try expectMatchesReference(b, fusion: false, "Gather axis \(axis)")
    }
    for mode in ["align_corners", "half_pixel", "asymmetric", "pytorch_half_pixel"] {
        for (h, w, oh, ow) in [(4, 4, 8, 8), (5, 3, 11, 7), (8, 8, 4, 4), (1, 1, 3, 2)] {
            var b = GraphBuilder()
            let x = b.input("x", rng.tensor([2, 3, h, w]))
            let y = b.node("Resize", [x, "", "", b.ints([2, 3, oh, ow])],
                           ["mode": .string("linear"), "coordinate_transformation_mode": .string(mode)])
            b.output(y)
            try expectMatchesReference(b, fusion: false, "Resize \(mode) \(h)x\(w)->\(oh)x\(ow)")
        }
    }
    for (k, s, p, ceil) in [(3, 2, 1, 0), (2, 2, 0, 0), (3, 2, 0, 1), (3, 1, 1, 0)] {
        var b = GraphBuilder()
        let y = b.node("MaxPool", [b.input("x", rng.tensor([2, 3, 9, 8]))],
                       ["kernel_shape": .ints([k, k]), "strides": .ints([s, s]), "pads": .ints([p, p, p, p]), "ceil_mode": .int(ceil)])
        b.output(y)
        try expectMatchesReference(b, fusion: false, "MaxPool k\(k) s\(s) p\(p) ceil\(ceil)")
    }
    var b = GraphBuilder()
    let bn = b.node("BatchNormalization", [b.input("x", rng.tensor([2, 4, 3, 3])), b.constant(rng.tensor([4])), b.constant(rng.tensor([4])),
                                           b.constant(rng.tensor([4])), b.constant(rng.tensor([4], 0.5, 2))], ["epsilon": .float(1e-5)])
    b.output(bn)
    try expectMatchesReference(b, fusion: false, "BatchNormalization")
}

@Test func upfirdnPlaneMatchesDefinition() {
    // upfirdn2d by its definition (zero insertion, pad, correlate) against the kernel.
    var rng = Rng(9)
    for (up, pads) in [(1, [1, 1, 1, 1]), (2, [2, 2, 1, 1]), (2, [1, 0, -1, 2]), (1, [-1, 0, 2, 1])] {
        let h = 5, w = 4
        var g = UpFirDnGeometry()
        g.up = up; g.padTop = pads[0]; g.padLeft = pads[1]; g.padBottom = pads[2]; g.padRight = pads[3]
        g.kh = 4; g.kw = 3; g.h = h; g.w = w
        let x = (0..<h * w).map { _ in rng.float() }, k = (0..<12).map { _ in rng.float() }
        var out = [Float](repeating: .nan, count: g.oh * g.ow)
        out.withUnsafeMutableBufferPointer { o in upfirdnPlane(x, o.baseAddress!, k, g) }
        // definition
        let uh = h * up, uw = w * up
        func upsampled(_ r: Int, _ c: Int) -> Float {
            let rr = r - g.padTop, cc = c - g.padLeft
            guard rr >= 0, cc >= 0, rr < uh, cc < uw, rr % up == 0, cc % up == 0 else { return 0 }
            return x[(rr / up) * w + cc / up]
        }
        var worst: Float = 0
        for r in 0..<g.oh { for c in 0..<g.ow {
            var acc: Float = 0
            for a in 0..<4 { for bb in 0..<3 { acc += k[a * 3 + bb] * upsampled(r + a, c + bb) } }
            worst = max(worst, abs(acc - out[r * g.ow + c]))
        } }
        #expect(worst < 1e-5, "up \(up) pads \(pads): \(worst)")
    }
}
