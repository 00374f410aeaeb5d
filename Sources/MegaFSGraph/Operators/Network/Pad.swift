import Foundation

/// ONNX Pad, opsets 2-21, any element type (the kernel copies elements as bytes).
///
/// Opset < 11: attributes `pads`, `value` (float), `mode`. Opset 11+: inputs `data`, `pads`
/// (int64, `[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`), optional `constant_value`
/// (a one-element tensor of data's type) and, from opset 18, optional `axes` (then pads has
/// 2*len(axes) values). Modes: constant, reflect (mirror without repeating the edge), edge,
/// wrap (opset 19). Negative pads crop: as ONNX Runtime does, the crop is applied first and
/// reflect/edge/wrap then work on the cropped data. Reflect pads may exceed the axis size
/// (NumPy's repeated reflection; ONNX Runtime rejects those).
public enum PadOperator: Operator {
    public static let opType = "Pad"

    enum Mode: String { case constant, reflect, edge, wrap }

    static func mode(_ node: Node) throws -> Mode {
        let text = try NetworkSupport.string(node, "mode", default: "constant")
        guard let m = Mode(rawValue: text) else {
            throw NetworkSupport.attributeError(node, "mode '\(text)' is not one of constant, reflect, edge, wrap")
        }
        return m
    }

    /// Expands `pads` (over `axes`, or all axes) to begin/end per axis.
    static func expand(_ node: Node, pads: [Int], axes: [Int]?, rank: Int) throws -> (begin: [Int], end: [Int]) {
        let axisList = try (axes ?? Array(0..<rank)).map {
            try OperatorSupport.normalizeAxis($0, rank: rank, node: node.displayName)
        }
        guard Set(axisList).count == axisList.count else {
            throw NetworkSupport.attributeError(node, "axes \(axes ?? []) contain duplicates")
        }
        guard pads.count == 2 * axisList.count else {
            throw NetworkSupport.shapeError(node, "pads has \(pads.count) values, expected \(2 * axisList.count) for \(axisList.count) axes")
        }
        var begin = Array(repeating: 0, count: rank), end = Array(repeating: 0, count: rank)
        for (j, a) in axisList.enumerated() {
            begin[a] = pads[j]
            end[a] = pads[axisList.count + j]
        }
        return (begin, end)
    }

    /// The attribute form of opset < 11.
    static func attributePads(_ node: Node) throws -> [Int] {
        guard let attr = node.attributes["pads"], case .ints(let v) = attr else {
            throw NetworkSupport.attributeError(node, "the pads attribute (a list of ints) is required before opset 11")
        }
        return v
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        let xt = try context.inputType(0)
        _ = try mode(node)
        guard let xs = xt.shape else { return [TensorType(dtype: xt.dtype, shape: nil)] }
        let rank = xs.count
        var pads: [Int]? = nil
        var axes: [Int]? = nil
        var axesKnown = true
        if context.opset < 11 {
            pads = try attributePads(node)
        } else {
            guard NetworkSupport.isPresent(node, 1) else {
                throw NetworkSupport.shapeError(node, "the pads input is required from opset 11")
            }
            if let pt = NetworkSupport.optionalType(context, 1), !(pt.dtype == .int64 || pt.dtype == .int32) {
                throw NetworkSupport.shapeError(node, "pads must be int64, got \(pt.dtype.name)")
            }
            if context.constantInputs.count > 1, let p = context.constantInputs[1] {
                pads = p.int64s.map { Int($0) }
            }
            if let ct = NetworkSupport.optionalType(context, 2), ct.dtype != xt.dtype {
                throw NetworkSupport.shapeError(node, "constant_value is \(ct.dtype.name) but data is \(xt.dtype.name)")
            }
            if NetworkSupport.isPresent(node, 3) {
                if context.constantInputs.count > 3, let a = context.constantInputs[3] {
                    axes = a.int64s.map { Int($0) }
                } else {
                    axesKnown = false
                }
            }
        }
        guard let pads, axesKnown else {
            return [TensorType(dtype: xt.dtype, shape: Array(repeating: Dim.unknown, count: rank))]
        }
        let (begin, end) = try expand(node, pads: pads, axes: axes, rank: rank)
        let dims: [Dim] = try (0..<rank).map { a in
            if begin[a] == 0 && end[a] == 0 { return xs[a] }
            guard let v = xs[a].value else { return .unknown }
            let o = v + begin[a] + end[a]
            guard o >= 0 else {
                throw NetworkSupport.shapeError(node, "pads \(begin[a]), \(end[a]) crop axis \(a) of size \(v) below zero")
            }
            return .fixed(o)
        }
        return [TensorType(dtype: xt.dtype, shape: dims)]
    }

    /// `value` converted to `dtype`'s little-endian bytes (opset < 11's float attribute).
    static func bytes(of value: Float, as dtype: DType) -> [UInt8] {
        func raw<T>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
        switch dtype {
        case .float32: return raw(value)
        case .float16: return raw(Float16(value).bitPattern)
        case .int64: return raw(Int64(value))
        case .int32: return raw(Int32(value))
        case .int8: return raw(Int8(value))
        case .uint8: return raw(UInt8(value))
        case .bool: return [value != 0 ? 1 : 0]
        }
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        let x = try NetworkSupport.required(inputs, 0, node, "data")
        let mode = try mode(node)
        let size = x.dtype.byteSize
        var pads: [Int]
        var axes: [Int]? = nil
        var constant = [UInt8](repeating: 0, count: size)
        if opset < 11 {
            pads = try attributePads(node)
            constant = bytes(of: try NetworkSupport.float(node, "value", default: 0), as: x.dtype)
        } else {
            let p = try NetworkSupport.required(inputs, 1, node, "pads")
            guard p.dtype == .int64 || p.dtype == .int32 else {
                throw NetworkSupport.shapeError(node, "pads must be int64, got \(p.dtype.name)")
            }
            pads = p.int64s.map { Int($0) }
            if let c = NetworkSupport.optional(inputs, 2), mode == .constant {
                guard c.dtype == x.dtype else {
                    throw NetworkSupport.shapeError(node, "constant_value is \(c.dtype.name) but data is \(x.dtype.name)")
                }
                guard c.elementCount == 1 else {
                    throw NetworkSupport.shapeError(node, "constant_value must hold one value, got shape \(c.shape)")
                }
                constant = Array(c.bytes)
            }
            if let a = NetworkSupport.optional(inputs, 3) { axes = a.int64s.map { Int($0) } }
        }
        let rank = x.rank
        let (begin, end) = try expand(node, pads: pads, axes: axes, rank: rank)

        // Per axis: source index (times the input stride) for each output index, -1 for padding.
        let inStrides = OperatorSupport.strides(x.shape)
        var outShape: [Int] = []
        var maps: [[Int]] = []
        for a in 0..<rank {
            let n = x.shape[a]
            let cropB = max(0, -begin[a]), cropE = max(0, -end[a])
            let eff = n - cropB - cropE
            guard eff >= 0 else {
                throw NetworkSupport.shapeError(node, "pads \(begin[a]), \(end[a]) crop axis \(a) of size \(n) below zero")
            }
            let padB = max(0, begin[a]), padE = max(0, end[a])
            let outLen = eff + padB + padE
            if mode != .constant && eff == 0 && outLen > 0 {
                throw NetworkSupport.shapeError(node, "\(mode.rawValue) padding of axis \(a) needs a non-empty input")
            }
            var map: [Int] = []
            map.reserveCapacity(outLen)
            for o in 0..<outLen {
                var j = o - padB
                if j < 0 || j >= eff {
                    switch mode {
                    case .constant: map.append(-1); continue
                    case .edge: j = min(max(j, 0), eff - 1)
                    case .wrap: j = ((j % eff) + eff) % eff
                    case .reflect:
                        if eff == 1 { j = 0 } else {
                            let period = 2 * (eff - 1)
                            j = ((j % period) + period) % period
                            if j >= eff { j = period - j }
                        }
                    }
                }
                map.append((cropB + j) * inStrides[a])
            }
            outShape.append(outLen)
            maps.append(map)
        }

        let out = Tensor(zeros: x.dtype, shape: outShape)
        if out.elementCount == 0 { return [out] }
        let src = UnsafeRawPointer(x.storage.pointer)
        let dst = out.storage.pointer
        // Walk the output row by row (the last axis), an odometer over the leading axes
        // giving each row's source offset (or -1 when the row lies in padding).
        let last = rank - 1
        let rowMap = rank > 0 ? maps[last] : [0]
        let rowLength = rowMap.count
        let rows = out.elementCount / max(rowLength, 1)
        var index = Array(repeating: 0, count: max(rank - 1, 0))
        constant.withUnsafeBytes { cbytes in
            let cptr = cbytes.baseAddress!
            for row in 0..<rows {
                var base = 0
                for a in 0..<index.count {
                    let m = maps[a][index[a]]
                    if m < 0 { base = -1; break }
                    base += m
                }
                let drow = dst + row * rowLength * size
                for (j, m) in rowMap.enumerated() {
                    let from = base < 0 || m < 0 ? cptr : src + (base + m) * size
                    (drow + j * size).copyMemory(from: from, byteCount: size)
                }
                var a = index.count - 1
                while a >= 0 {
                    index[a] += 1
                    if index[a] < outShape[a] { break }
                    index[a] = 0
                    a -= 1
                }
            }
        }
        return [out]
    }
}
