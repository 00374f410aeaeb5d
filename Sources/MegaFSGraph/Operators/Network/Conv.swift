/// ONNX Conv (opsets 1-22): N-D cross-correlation with groups, strides, pads, dilations and
/// auto_pad; X (N, C, D1..Dk), W (M, C/group, k1..kk), optional B (M). The reference kernel
/// handles 1, 2 and 3 spatial axes and accumulates in Double.
public enum ConvOperator: Operator {
    public static let opType = "Conv"

    typealias Plan = ConvolutionPlan

    /// Validates X/W/B shapes against the attributes. `x`, `w` are the (possibly partly
    /// unknown) shapes; `b` the bias shape when present.
    static func plan(_ node: Node, x: [Int?], w: [Int?], b: [Int?]?) throws -> Plan {
        let (rank, group, window) = try NetworkSupport.convolutionWindow(node, x: x, w: w)

        if let m = w[0] {
            guard m % group == 0 else {
                throw NetworkSupport.shapeError(node, "output channels \(m) (W dim 0) are not divisible by group \(group)")
            }
        }
        if let c = x[1], let cg = w[1] {
            guard c == cg * group else {
                throw NetworkSupport.shapeError(node, "input channels \(c) do not equal W dim 1 (\(cg)) x group \(group)")
            }
        } else if let c = x[1], c % group != 0 {
            throw NetworkSupport.shapeError(node, "input channels \(c) are not divisible by group \(group)")
        }
        if let b {
            guard b.count == 1 else { throw NetworkSupport.shapeError(node, "bias B must be 1-D, got rank \(b.count)") }
            if let bm = b[0], let m = w[0], bm != m {
                throw NetworkSupport.shapeError(node, "bias B has \(bm) values for \(m) output channels")
            }
        }

        var outSpatial: [Int?] = []
        var padBegin: [Int?] = []
        var padEnd: [Int?] = []
        for i in 0..<rank {
            if let d = x[2 + i] {
                let r = try window.forward(axis: i, input: d, node: node)
                guard r.out > 0 else {
                    throw NetworkSupport.shapeError(node, "output spatial dim \(i) would be \(r.out)")
                }
                outSpatial.append(r.out); padBegin.append(r.begin); padEnd.append(r.end)
            } else {
                outSpatial.append(nil); padBegin.append(nil); padEnd.append(nil)
            }
        }
        return Plan(group: group, window: window, outSpatial: outSpatial, padBegin: padBegin, padEnd: padEnd)
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        // Output channels: W dim 0.
        try NetworkSupport.inferConvolutionTypes(context, plan: plan) { w, _ in w[0] }
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        let x = try NetworkSupport.required(inputs, 0, node, "X")
        let w = try NetworkSupport.required(inputs, 1, node, "W")
        let b = NetworkSupport.optional(inputs, 2)
        try NetworkSupport.requireFloat32(x, node, "X")
        try NetworkSupport.requireFloat32(w, node, "W")
        if let b { try NetworkSupport.requireFloat32(b, node, "B") }
        let p = try plan(node, x: x.shape, w: w.shape, b: b.map { $0.shape.map { Optional($0) } })
        let rank = x.rank - 2
        guard rank <= 3 else {
            throw GraphError.unsupportedOperator("node \(node.displayName): the Conv reference kernel handles 1-3 spatial axes, got \(rank)")
        }
        let outSpatial = p.outSpatial.map { $0! }
        let g = Geometry3(rank: rank, input: Array(x.shape[2...]), output: outSpatial, window: p.window,
                          padBegin: p.padBegin.map { $0! }, padEnd: p.padEnd.map { $0! })
        let n = x.shape[0], c = x.shape[1], m = w.shape[0]
        let groups = p.group
        let cg = c / groups, mg = m / groups
        let (out, y) = NetworkSupport.makeFloat([n, m] + outSpatial)
        let xp = NetworkSupport.floats(x), wp = NetworkSupport.floats(w)
        let bp = b.map(NetworkSupport.floats)
        let inVol = g.inputVolume, outVol = g.outputVolume, kVol = g.kernelVolume
        let ranges = g.forwardRanges()
        let (iH, iW) = (g.input[1], g.input[2])
        let (oH, oW) = (g.output[1], g.output[2])
        let (sD, sH, sW) = (g.strides[0], g.strides[1], g.strides[2])
        let (dD, dH, dW) = (g.dilations[0], g.dilations[1], g.dilations[2])
        let (pD, pH, pW) = (g.padBegin[0], g.padBegin[1], g.padBegin[2])
        let (kD, kH, kW) = (g.kernel[0], g.kernel[1], g.kernel[2])

        let acc = UnsafeMutablePointer<Double>.allocate(capacity: max(outVol, 1))
        defer { acc.deallocate() }
        for ni in 0..<n {
            for mi in 0..<m {
                let gi = mi / mg
                acc.initialize(repeating: bp.map { Double($0[mi]) } ?? 0, count: outVol)
                // Input channels in blocks of up to 4 per pass over the accumulator.
                for c0 in stride(from: 0, to: cg, by: 4) {
                    let count = min(4, cg - c0)
                    let xb = xp + (ni * c + gi * cg + c0) * inVol
                    let wb = wp + (mi * cg + c0) * kVol
                    let x1 = xb + (count > 1 ? inVol : 0), x2 = xb + (count > 2 ? 2 * inVol : 0)
                    let x3 = xb + (count > 3 ? 3 * inVol : 0)
                    for kd in 0..<kD {
                        for kh in 0..<kH {
                            for kw in 0..<kW {
                                let k = (kd * kH + kh) * kW + kw
                                let w0 = Double(wb[k])
                                let w1 = count > 1 ? Double(wb[kVol + k]) : 0
                                let w2 = count > 2 ? Double(wb[2 * kVol + k]) : 0
                                let w3 = count > 3 ? Double(wb[3 * kVol + k]) : 0
                                let rw = ranges[2][kw]
                                if rw.isEmpty { continue }
                                for od in ranges[0][kd] {
                                    let id = od * sD - pD + kd * dD
                                    for oh in ranges[1][kh] {
                                        let ih = oh * sH - pH + kh * dH
                                        let off = (id * iH + ih) * iW + (kw * dW - pW)
                                        NetworkSupport.accumulate(acc + (od * oH + oh) * oW, accStride: 1,
                                                                  xb + off, x1 + off, x2 + off, x3 + off, xStride: sW,
                                                                  w0, w1, w2, w3, count: count, range: rw)
                                    }
                                }
                            }
                        }
                    }
                }
                let yc = y + (ni * m + mi) * outVol
                for i in 0..<outVol { yc[i] = Float(acc[i]) }
            }
        }
        return [out]
    }
}
