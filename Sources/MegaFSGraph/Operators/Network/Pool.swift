/// ONNX pooling: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool on X (N, C, D1..Dk).
///
/// Window rules shared by MaxPool and AveragePool: `kernel_shape` is required; strides,
/// pads, dilations and auto_pad as for Conv (SAME_* pads use the dilated kernel, as the spec
/// says; ONNX Runtime 1.31's MaxPool uses the undilated one there). With `ceil_mode` the
/// output size rounds up, but a last window that would start inside the end padding is
/// dropped (ONNX Runtime, the ONNX reference implementation and PyTorch agree on this).
/// Padding never contributes to a maximum; AveragePool divides by the number of taps inside
/// the input (`count_include_pad=0`) or inside input plus explicit pads
/// (`count_include_pad=1`; taps beyond the end pad that `ceil_mode` adds are not counted).
enum PoolKind { case max, average }

enum PoolSupport {
    struct Plan {
        var window: WindowAttributes
        var outSpatial: [Int?]
        var padBegin: [Int?]
        var padEnd: [Int?]
    }

    static func plan(_ node: Node, x: [Int?], kind: PoolKind) throws -> Plan {
        guard x.count >= 3 else {
            throw NetworkSupport.shapeError(node, "input X must have rank >= 3 (N, C, spatial...), got rank \(x.count)")
        }
        let rank = x.count - 2
        guard let kattr = node.attributes["kernel_shape"] else {
            throw NetworkSupport.attributeError(node, "the required attribute kernel_shape is missing")
        }
        guard case .ints(let kernel) = kattr, kernel.count == rank else {
            throw NetworkSupport.attributeError(node, "kernel_shape \(kattr) must have \(rank) values for a rank-\(x.count) input")
        }
        let window = try WindowAttributes.parse(node, kernel: kernel)
        let ceilMode = try NetworkSupport.flag(node, "ceil_mode")
        for i in 0..<rank where window.padsBegin[i] >= window.dilatedKernel(i) || window.padsEnd[i] >= window.dilatedKernel(i) {
            throw NetworkSupport.attributeError(node, "pads \(window.padsBegin + window.padsEnd) must be smaller than the (dilated) kernel \(kernel)")
        }
        if kind == .max, let order = node.int("storage_order"), order != 0 && order != 1 {
            throw NetworkSupport.attributeError(node, "storage_order must be 0 or 1, got \(order)")
        }
        var outSpatial: [Int?] = [], padBegin: [Int?] = [], padEnd: [Int?] = []
        for i in 0..<rank {
            if let d = x[2 + i] {
                let r = try window.forward(axis: i, input: d, ceilMode: ceilMode, node: node)
                guard r.out > 0 else { throw NetworkSupport.shapeError(node, "output spatial dim \(i) would be \(r.out)") }
                outSpatial.append(r.out); padBegin.append(r.begin); padEnd.append(r.end)
            } else {
                outSpatial.append(nil); padBegin.append(nil); padEnd.append(nil)
            }
        }
        return Plan(window: window, outSpatial: outSpatial, padBegin: padBegin, padEnd: padEnd)
    }

    static func inferTypes(_ context: OperatorContext, kind: PoolKind) throws -> [TensorType] {
        let node = context.node
        let xt = try context.inputType(0)
        // MaxPool-12 also takes int8/uint8 (only float32 is evaluated here).
        if !(kind == .max && (xt.dtype == .int8 || xt.dtype == .uint8)) {
            try NetworkSupport.requireFloatType(xt, node, "X")
        }
        if kind == .max && node.outputs.count > 1 && !node.outputs[1].isEmpty {
            throw GraphError.unsupportedOperator("node \(node.displayName): MaxPool's second output (Indices) is not supported")
        }
        guard let xs = xt.shape else { return [TensorType(dtype: xt.dtype, shape: nil)] }
        let p = try plan(node, x: NetworkSupport.dimValues(xs), kind: kind)
        let out: [Dim] = [xs[0], xs[1]] + p.outSpatial.map { $0.map(Dim.fixed) ?? .unknown }
        return [TensorType(dtype: xt.dtype, shape: out)]
    }

    static func evaluate(_ node: Node, inputs: [Tensor?], kind: PoolKind) throws -> [Tensor] {
        let x = try NetworkSupport.required(inputs, 0, node, "X")
        try NetworkSupport.requireFloat32(x, node, "X")
        if kind == .max && node.outputs.count > 1 && !node.outputs[1].isEmpty {
            throw GraphError.unsupportedOperator("node \(node.displayName): MaxPool's second output (Indices) is not supported")
        }
        let p = try plan(node, x: x.shape, kind: kind)
        let rank = x.rank - 2
        guard rank <= 3 else {
            throw GraphError.unsupportedOperator("node \(node.displayName): the \(node.opType) reference kernel handles 1-3 spatial axes, got \(rank)")
        }
        let countIncludePad = kind == .average ? try NetworkSupport.flag(node, "count_include_pad") : false
        let outSpatial = p.outSpatial.map { $0! }
        let g = Geometry3(rank: rank, input: Array(x.shape[2...]), output: outSpatial, window: p.window,
                          padBegin: p.padBegin.map { $0! }, padEnd: p.padEnd.map { $0! })
        // Per axis and output index: input position of tap 0, valid tap range, taps counted
        // with padding.
        struct AxisTaps { var base: Int; var lo: Int; var hi: Int; var padded: Int }
        let taps: [[AxisTaps]] = (0..<3).map { a in
            (0..<g.output[a]).map { o in
                let base = o * g.strides[a] - g.padBegin[a]
                let d = g.dilations[a], k = g.kernel[a]
                let lo = max(0, NetworkSupport.ceilDiv(-base, d))
                let hi = min(k, NetworkSupport.ceilDiv(g.input[a] - base, d))
                let padded = min(k, NetworkSupport.ceilDiv(g.input[a] + g.padEnd[a] - base, d))
                return AxisTaps(base: base, lo: lo, hi: max(lo, hi), padded: padded)
            }
        }
        let planes = x.shape[0] * x.shape[1]
        let (out, y) = NetworkSupport.makeFloat(Array(x.shape[0..<2]) + outSpatial)
        let xp = NetworkSupport.floats(x)
        let inVol = g.inputVolume, outVol = g.outputVolume
        let (iH, iW) = (g.input[1], g.input[2])
        let (dD, dH, dW) = (g.dilations[0], g.dilations[1], g.dilations[2])
        for plane in 0..<planes {
            let xc = xp + plane * inVol
            var yi = plane * outVol
            for td in taps[0] {
                for th in taps[1] {
                    for tw in taps[2] {
                        switch kind {
                        case .max:
                            var best = -Float.greatestFiniteMagnitude
                            for kd in td.lo..<td.hi {
                                let id = td.base + kd * dD
                                for kh in th.lo..<th.hi {
                                    let row = xc + (id * iH + th.base + kh * dH) * iW + tw.base
                                    for kw in tw.lo..<tw.hi {
                                        let v = row[kw * dW]
                                        if v > best { best = v }
                                    }
                                }
                            }
                            y[yi] = best
                        case .average:
                            var sum = 0.0
                            for kd in td.lo..<td.hi {
                                let id = td.base + kd * dD
                                for kh in th.lo..<th.hi {
                                    let row = xc + (id * iH + th.base + kh * dH) * iW + tw.base
                                    for kw in tw.lo..<tw.hi { sum += Double(row[kw * dW]) }
                                }
                            }
                            let count = countIncludePad
                                ? td.padded * th.padded * tw.padded
                                : (td.hi - td.lo) * (th.hi - th.lo) * (tw.hi - tw.lo)
                            y[yi] = Float(sum / Double(count))
                        }
                        yi += 1
                    }
                }
            }
        }
        return [out]
    }
}

/// ONNX MaxPool (opsets 8-22), output Y only (the Indices output is rejected).
public enum MaxPoolOperator: Operator {
    public static let opType = "MaxPool"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try PoolSupport.inferTypes(context, kind: .max)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try PoolSupport.evaluate(node, inputs: inputs, kind: .max)
    }
}

/// ONNX AveragePool (opsets 7-22), with count_include_pad, ceil_mode and dilations.
public enum AveragePoolOperator: Operator {
    public static let opType = "AveragePool"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try PoolSupport.inferTypes(context, kind: .average)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try PoolSupport.evaluate(node, inputs: inputs, kind: .average)
    }
}

/// Global pooling over all spatial axes: (N, C, D1..Dk) -> (N, C, 1..1).
enum GlobalPoolSupport {
    static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        let xt = try context.inputType(0)
        try NetworkSupport.requireFloatType(xt, node, "X")
        guard let xs = xt.shape else { return [TensorType(dtype: xt.dtype, shape: nil)] }
        guard xs.count >= 3 else {
            throw NetworkSupport.shapeError(node, "input X must have rank >= 3 (N, C, spatial...), got rank \(xs.count)")
        }
        return [TensorType(dtype: xt.dtype, shape: [xs[0], xs[1]] + Array(repeating: .fixed(1), count: xs.count - 2))]
    }

    static func evaluate(_ node: Node, inputs: [Tensor?], kind: PoolKind) throws -> [Tensor] {
        let x = try NetworkSupport.required(inputs, 0, node, "X")
        try NetworkSupport.requireFloat32(x, node, "X")
        guard x.rank >= 3 else {
            throw NetworkSupport.shapeError(node, "input X must have rank >= 3 (N, C, spatial...), got rank \(x.rank)")
        }
        let inner = x.shape.dropFirst(2).reduce(1, *)
        let planes = x.shape[0] * x.shape[1]
        let (out, y) = NetworkSupport.makeFloat(Array(x.shape[0..<2]) + Array(repeating: 1, count: x.rank - 2))
        let xp = NetworkSupport.floats(x)
        for plane in 0..<planes {
            let xc = xp + plane * inner
            switch kind {
            case .average:
                var sum = 0.0
                for i in 0..<inner { sum += Double(xc[i]) }
                y[plane] = Float(sum / Double(inner))
            case .max:
                var best = -Float.greatestFiniteMagnitude
                for i in 0..<inner where xc[i] > best { best = xc[i] }
                y[plane] = best
            }
        }
        return [out]
    }
}

public enum GlobalAveragePoolOperator: Operator {
    public static let opType = "GlobalAveragePool"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try GlobalPoolSupport.inferTypes(context)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try GlobalPoolSupport.evaluate(node, inputs: inputs, kind: .average)
    }
}

public enum GlobalMaxPoolOperator: Operator {
    public static let opType = "GlobalMaxPool"
    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        try GlobalPoolSupport.inferTypes(context)
    }
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try GlobalPoolSupport.evaluate(node, inputs: inputs, kind: .max)
    }
}
