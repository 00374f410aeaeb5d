/// ONNX ConvTranspose (opsets 1-22): the gradient of Conv with respect to its input.
/// X (N, C, D1..Dk), W (C, M/group, k1..kk), optional B (M). Input position i with kernel
/// tap k contributes to output position `i*stride - pad_begin + k*dilation`.
///
/// Output size per spatial axis, with `full = stride*(in-1) + output_padding + (k-1)*dilation + 1`:
/// - `output_shape` given: that size; total padding `full - out` split as SAME_UPPER
///   (begin = total/2) when auto_pad is SAME_UPPER, else begin = total - total/2 (NOTSET,
///   SAME_LOWER, VALID), as the ONNX spec and ONNX Runtime do;
/// - auto_pad SAME_UPPER / SAME_LOWER: `in*stride`, total padding split the same way.
///   A negative total (output larger than `full`) is split with floor division, as ONNX's
///   reference evaluator does: the extra positions hold only the bias. (ONNX Runtime 1.31
///   agrees for NOTSET + output_shape, but for SAME_* without output_shape it outputs `full`
///   instead of `in*stride`, and it rejects some explicit output_shapes of this kind.)
/// - VALID: `full`, no padding; NOTSET: `full - pad_begin - pad_end`.
public enum ConvTransposeOperator: Operator {
    public static let opType = "ConvTranspose"

    typealias Plan = ConvolutionPlan

    static func plan(_ node: Node, x: [Int?], w: [Int?], b: [Int?]?) throws -> Plan {
        let (rank, group, window) = try NetworkSupport.convolutionWindow(node, x: x, w: w)
        let outputPadding = try NetworkSupport.ints(node, "output_padding", count: rank, default: 0)
        guard outputPadding.allSatisfy({ $0 >= 0 }) else {
            throw NetworkSupport.attributeError(node, "output_padding \(outputPadding) must not be negative")
        }
        var outputShape: [Int]? = nil
        if let attr = node.attributes["output_shape"] {
            guard case .ints(let v) = attr else {
                throw NetworkSupport.attributeError(node, "attribute 'output_shape' must be a list of ints")
            }
            // Either the spatial dims, or the full output shape (N, M, spatial...).
            if v.count == rank { outputShape = v }
            else if v.count == rank + 2 { outputShape = Array(v[2...]) }
            else {
                throw NetworkSupport.attributeError(node, "output_shape \(v) must have \(rank) spatial values")
            }
            guard outputShape!.allSatisfy({ $0 > 0 }) else {
                throw NetworkSupport.attributeError(node, "output_shape \(v) must be positive")
            }
        }

        if let c = x[1], let wc = w[0], c != wc {
            throw NetworkSupport.shapeError(node, "input channels \(c) do not equal W dim 0 (\(wc))")
        }
        if let wc = w[0] ?? x[1], wc % group != 0 {
            throw NetworkSupport.shapeError(node, "input channels \(wc) are not divisible by group \(group)")
        }
        if let b {
            guard b.count == 1 else { throw NetworkSupport.shapeError(node, "bias B must be 1-D, got rank \(b.count)") }
            if let bm = b[0], let mg = w[1], bm != mg * group {
                throw NetworkSupport.shapeError(node, "bias B has \(bm) values for \(mg * group) output channels")
            }
        }

        var outSpatial: [Int?] = [], padBegin: [Int?] = [], padEnd: [Int?] = []
        for i in 0..<rank {
            guard let input = x[2 + i] else {
                outSpatial.append(outputShape?[i]); padBegin.append(nil); padEnd.append(nil)
                continue
            }
            let full = window.strides[i] * (input - 1) + outputPadding[i] + window.dilatedKernel(i)
            let out: Int, begin: Int, end: Int
            if let os = outputShape {
                out = os[i]
                let total = full - out
                begin = window.autoPad == .sameUpper ? NetworkSupport.floorDiv(total, 2) : total - NetworkSupport.floorDiv(total, 2)
                end = total - begin
            } else {
                switch window.autoPad {
                case .sameUpper, .sameLower:
                    out = input * window.strides[i]
                    let total = full - out
                    begin = window.autoPad == .sameUpper ? NetworkSupport.floorDiv(total, 2) : total - NetworkSupport.floorDiv(total, 2)
                    end = total - begin
                case .valid:
                    out = full; begin = 0; end = 0
                case .notSet:
                    begin = window.padsBegin[i]; end = window.padsEnd[i]
                    out = full - begin - end
                }
            }
            guard out > 0 else {
                throw NetworkSupport.shapeError(node, "output spatial dim \(i) would be \(out)")
            }
            outSpatial.append(out); padBegin.append(begin); padEnd.append(end)
        }
        return Plan(group: group, window: window, outSpatial: outSpatial, padBegin: padBegin, padEnd: padEnd)
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        // Output channels: W dim 1 per group.
        try NetworkSupport.inferConvolutionTypes(context, plan: plan) { w, p in w[1].value.map { .fixed($0 * p.group) } ?? .unknown }
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
            throw GraphError.unsupportedOperator("node \(node.displayName): the ConvTranspose reference kernel handles 1-3 spatial axes, got \(rank)")
        }
        let outSpatial = p.outSpatial.map { $0! }
        let g = Geometry3(rank: rank, input: Array(x.shape[2...]), output: outSpatial, window: p.window,
                          padBegin: p.padBegin.map { $0! }, padEnd: p.padEnd.map { $0! })
        let n = x.shape[0], c = x.shape[1]
        let groups = p.group
        let cg = c / groups, mg = w.shape[1], m = mg * groups
        let (out, y) = NetworkSupport.makeFloat([n, m] + outSpatial)
        let xp = NetworkSupport.floats(x), wp = NetworkSupport.floats(w)
        let bp = b.map(NetworkSupport.floats)
        let inVol = g.inputVolume, outVol = g.outputVolume, kVol = g.kernelVolume
        let ranges = g.transposedRanges()
        let (iH, iW) = (g.input[1], g.input[2])
        let (oH, oW) = (g.output[1], g.output[2])
        let (sD, sH, sW) = (g.strides[0], g.strides[1], g.strides[2])
        let (dD, dH, dW) = (g.dilations[0], g.dilations[1], g.dilations[2])
        let (pD, pH, pW) = (g.padBegin[0], g.padBegin[1], g.padBegin[2])
        let (kD, kH, kW) = (g.kernel[0], g.kernel[1], g.kernel[2])

        let acc = UnsafeMutablePointer<Double>.allocate(capacity: max(m * outVol, 1))
        defer { acc.deallocate() }
        for ni in 0..<n {
            for mi in 0..<m {
                (acc + mi * outVol).initialize(repeating: bp.map { Double($0[mi]) } ?? 0, count: outVol)
            }
            for gi in 0..<groups {
                for mo in 0..<mg {
                    let ac = acc + (gi * mg + mo) * outVol
                    // Input channels of the group in blocks of up to 4 per pass.
                    for c0 in stride(from: gi * cg, to: (gi + 1) * cg, by: 4) {
                        let count = min(4, (gi + 1) * cg - c0)
                        let xb = xp + (ni * c + c0) * inVol
                        let x1 = xb + (count > 1 ? inVol : 0), x2 = xb + (count > 2 ? 2 * inVol : 0)
                        let x3 = xb + (count > 3 ? 3 * inVol : 0)
                        let wb = wp + (c0 * mg + mo) * kVol
                        let wStep = mg * kVol
                        for kd in 0..<kD {
                            for kh in 0..<kH {
                                for kw in 0..<kW {
                                    let k = (kd * kH + kh) * kW + kw
                                    let w0 = Double(wb[k])
                                    let w1 = count > 1 ? Double(wb[wStep + k]) : 0
                                    let w2 = count > 2 ? Double(wb[2 * wStep + k]) : 0
                                    let w3 = count > 3 ? Double(wb[3 * wStep + k]) : 0
                                    let rw = ranges[2][kw]
                                    if rw.isEmpty { continue }
                                    for id in ranges[0][kd] {
                                        let od = id * sD - pD + kd * dD
                                        for ih in ranges[1][kh] {
                                            let oh = ih * sH - pH + kh * dH
                                            let off = (id * iH + ih) * iW
                                            NetworkSupport.accumulate(ac + (od * oH + oh) * oW + (kw * dW - pW), accStride: sW,
                                                                      xb + off, x1 + off, x2 + off, x3 + off, xStride: 1,
                                                                      w0, w1, w2, w3, count: count, range: rw)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let yn = y + ni * m * outVol
            for i in 0..<(m * outVol) { yn[i] = Float(acc[i]) }
        }
        return [out]
    }
}
