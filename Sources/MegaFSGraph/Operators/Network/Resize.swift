import Foundation

/// ONNX Resize, opsets 10-19, N-D and separable: each resized axis maps every output index to
/// input taps (1 for nearest, 2 for linear, 4 for cubic) and the axes are applied one after
/// another (multilinear/multicubic interpolation is separable).
///
/// Inputs: opset 10 `(X, scales)`; opset 11+ `(X, roi, scales, sizes)`, an empty tensor or an
/// omitted input meaning "not given". Exactly one of scales and sizes must be given.
/// - scales: `out = floor(in * scale)` (in float32, as ONNX Runtime), and the coordinate
///   transform uses the given scale (not out/in);
/// - sizes: `out = sizes`, and the transform uses `out/in`; with opset 18's
///   `keep_aspect_ratio_policy` not_larger / not_smaller one scale (the min / max over the
///   resized axes) is used and `out = round(scale * in)`.
/// Opset 18's `axes` restricts scales/sizes/roi to those axes. Coordinate arithmetic is done
/// in float32 in the same order as ONNX Runtime so nearest-neighbour ties resolve alike.
/// Opset 10 behaves as ONNX Runtime's Resize-10: asymmetric coordinates, nearest rounds down
/// when upsampling and up when downsampling. `antialias=1` is rejected.
public enum ResizeOperator: Operator {
    public static let opType = "Resize"

    enum Mode: String { case nearest, linear, cubic }
    enum Coordinates: String {
        case halfPixel = "half_pixel"
        case halfPixelSymmetric = "half_pixel_symmetric"
        case pytorchHalfPixel = "pytorch_half_pixel"
        case alignCorners = "align_corners"
        case asymmetric
        case tfHalfPixelForNearest = "tf_half_pixel_for_nearest"
        case tfCropAndResize = "tf_crop_and_resize"
    }
    enum NearestMode: String {
        case roundPreferFloor = "round_prefer_floor"
        case roundPreferCeil = "round_prefer_ceil"
        case floor, ceil
        /// Resize-10 as ONNX Runtime implements it.
        case simple
    }
    enum AspectPolicy: String {
        case stretch
        case notLarger = "not_larger"
        case notSmaller = "not_smaller"
    }

    struct Attributes {
        var mode: Mode
        var coordinates: Coordinates
        var nearest: NearestMode
        var cubicA: Float
        var excludeOutside: Bool
        var extrapolation: Float
        var axes: [Int]?
        var policy: AspectPolicy
    }

    static func attributes(_ node: Node, opset: Int) throws -> Attributes {
        let modeText = try NetworkSupport.string(node, "mode", default: "nearest")
        guard let mode = Mode(rawValue: modeText) else {
            throw NetworkSupport.attributeError(node, "mode '\(modeText)' is not one of nearest, linear, cubic")
        }
        if opset < 11 {
            guard mode != .cubic else { throw NetworkSupport.attributeError(node, "mode 'cubic' needs opset 11") }
            return Attributes(mode: mode, coordinates: .asymmetric, nearest: .simple, cubicA: -0.75,
                              excludeOutside: false, extrapolation: 0, axes: nil, policy: .stretch)
        }
        let coordText = try NetworkSupport.string(node, "coordinate_transformation_mode", default: "half_pixel")
        guard let coordinates = Coordinates(rawValue: coordText) else {
            throw NetworkSupport.attributeError(node, "coordinate_transformation_mode '\(coordText)' is not supported")
        }
        if coordinates == .tfHalfPixelForNearest && opset >= 13 {
            throw NetworkSupport.attributeError(node, "coordinate_transformation_mode 'tf_half_pixel_for_nearest' was removed in opset 13")
        }
        if coordinates == .halfPixelSymmetric && opset < 19 {
            throw NetworkSupport.attributeError(node, "coordinate_transformation_mode 'half_pixel_symmetric' needs opset 19")
        }
        let nearestText = try NetworkSupport.string(node, "nearest_mode", default: "round_prefer_floor")
        guard let nearest = NearestMode(rawValue: nearestText), nearest != .simple else {
            throw NetworkSupport.attributeError(node, "nearest_mode '\(nearestText)' is not one of round_prefer_floor, round_prefer_ceil, floor, ceil")
        }
        if try NetworkSupport.int(node, "antialias", default: 0) != 0 {
            throw GraphError.unsupportedOperator("node \(node.displayName): Resize with antialias=1 is not supported")
        }
        let policyText = try NetworkSupport.string(node, "keep_aspect_ratio_policy", default: "stretch")
        guard let policy = AspectPolicy(rawValue: policyText) else {
            throw NetworkSupport.attributeError(node, "keep_aspect_ratio_policy '\(policyText)' is not one of stretch, not_larger, not_smaller")
        }
        var axes: [Int]? = nil
        if let attr = node.attributes["axes"] {
            guard case .ints(let v) = attr else { throw NetworkSupport.attributeError(node, "axes must be a list of ints") }
            axes = v
        }
        return Attributes(mode: mode, coordinates: coordinates, nearest: nearest,
                          cubicA: try NetworkSupport.float(node, "cubic_coeff_a", default: -0.75),
                          excludeOutside: try NetworkSupport.flag(node, "exclude_outside"),
                          extrapolation: try NetworkSupport.float(node, "extrapolation_value", default: 0),
                          axes: axes, policy: policy)
    }

    /// What is known of an optional input's value.
    enum Known<T> {
        case absent
        case unknown
        case value(T)
    }

    struct Resolved {
        /// Output dims (nil = unknown at this stage).
        var output: [Int?]
        /// Scale used in the coordinate transform, per axis (nil = unknown).
        var scales: [Float?]
        var roiStart: [Float]
        var roiEnd: [Float]
        /// Whether an axis's output dim equals its input dim by construction (scale exactly 1).
        var keepsInputDim: [Bool]
    }

    static func inputIndices(opset: Int) -> (roi: Int?, scales: Int, sizes: Int?) {
        opset < 11 ? (nil, 1, nil) : (1, 2, 3)
    }

    static func resolve(_ node: Node, _ attrs: Attributes, input: [Int?], roi: Known<[Float]>,
                        scales: Known<[Float]>, sizes: Known<[Int]>) throws -> Resolved {
        let rank = input.count
        guard rank >= 1 else { throw NetworkSupport.shapeError(node, "X must have rank >= 1") }
        var axes = Array(0..<rank)
        if let a = attrs.axes {
            axes = try a.map { try OperatorSupport.normalizeAxis($0, rank: rank, node: node.displayName) }
            guard Set(axes).count == axes.count else {
                throw NetworkSupport.attributeError(node, "axes \(a) contain duplicates")
            }
        }
        var out = input
        var scale: [Float?] = Array(repeating: 1, count: rank)
        var keeps = Array(repeating: true, count: rank)
        var roiStart = Array(repeating: Float(0), count: rank)
        var roiEnd = Array(repeating: Float(1), count: rank)
        if case .value(let r) = roi, attrs.coordinates == .tfCropAndResize {
            guard r.count == 2 * axes.count else {
                throw NetworkSupport.shapeError(node, "roi has \(r.count) values, expected \(2 * axes.count)")
            }
            for (j, a) in axes.enumerated() { roiStart[a] = r[j]; roiEnd[a] = r[axes.count + j] }
        }

        switch (scales, sizes) {
        case (.absent, .absent):
            throw NetworkSupport.shapeError(node, "neither scales nor sizes is given")
        case (.value, .value):
            throw NetworkSupport.shapeError(node, "only one of scales and sizes may be given")
        case (.value(let s), _):
            guard s.count == axes.count else {
                throw NetworkSupport.shapeError(node, "scales has \(s.count) values for \(axes.count) axes")
            }
            guard s.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw NetworkSupport.shapeError(node, "scales \(s) must be positive and finite")
            }
            for (j, a) in axes.enumerated() {
                scale[a] = s[j]
                // The spec's text scales by the roi's extent for tf_crop_and_resize, but ONNX's
                // own shape inference, its reference evaluator and ONNX Runtime all use
                // floor(in * scale); so do we.
                out[a] = try input[a].map { d in
                    let size = (Float(d) * s[j]).rounded(.down)
                    // A fuzzed scale of 3e38 overflowed the conversion to Int.
                    guard size <= Float(TensorOpSupport.maxElements) else {
                        throw NetworkSupport.shapeError(node, "scale \(s[j]) makes axis \(a) \(size) long, above \(TensorOpSupport.maxElements)")
                    }
                    return Int(size)
                }
                keeps[a] = s[j] == 1
            }
        case (_, .value(let z)):
            guard z.count == axes.count else {
                throw NetworkSupport.shapeError(node, "sizes has \(z.count) values for \(axes.count) axes")
            }
            guard z.allSatisfy({ $0 >= 0 }) else {
                throw NetworkSupport.shapeError(node, "sizes \(z) must not be negative")
            }
            if attrs.policy == .stretch {
                for (j, a) in axes.enumerated() {
                    out[a] = z[j]
                    scale[a] = input[a].map { Float(z[j]) / Float($0) }
                    keeps[a] = false
                }
            } else {
                let known = axes.compactMap { input[$0] }
                if known.count == axes.count {
                    let ratios = zip(axes, z).map { Float($1) / Float(input[$0]!) }
                    let s = attrs.policy == .notLarger ? ratios.min()! : ratios.max()!
                    for a in axes {
                        scale[a] = s
                        out[a] = Int((s * Float(input[a]!)).rounded(.toNearestOrAwayFromZero))
                        keeps[a] = false
                    }
                } else {
                    for a in axes { scale[a] = nil; out[a] = nil; keeps[a] = false }
                }
            }
        default:
            // The deciding input is not constant: sizes or scales are only known at run time.
            for a in axes { scale[a] = nil; out[a] = nil; keeps[a] = false }
        }
        return Resolved(output: out, scales: scale, roiStart: roiStart, roiEnd: roiEnd, keepsInputDim: keeps)
    }

    // MARK: Shape rule

    static func known<T>(_ context: OperatorContext, _ index: Int?, _ convert: (Tensor) -> T) -> Known<T> {
        guard let index, NetworkSupport.isPresent(context.node, index) else { return .absent }
        if index < context.constantInputs.count, let t = context.constantInputs[index] {
            return t.elementCount == 0 ? .absent : .value(convert(t))
        }
        if index < context.inputTypes.count, let type = context.inputTypes[index],
           let dims = type.shape, dims.contains(.fixed(0)) {
            return .absent
        }
        return .unknown
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        let xt = try context.inputType(0)
        let attrs = try attributes(node, opset: context.opset)
        guard let xs = xt.shape else { return [TensorType(dtype: xt.dtype, shape: nil)] }
        let idx = inputIndices(opset: context.opset)
        let r = try resolve(node, attrs, input: NetworkSupport.dimValues(xs),
                            roi: known(context, idx.roi) { $0.floats },
                            scales: known(context, idx.scales) { $0.floats },
                            sizes: known(context, idx.sizes) { $0.int64s.map { Int($0) } })
        let dims: [Dim] = (0..<xs.count).map { a in
            if r.keepsInputDim[a] { return xs[a] }
            return r.output[a].map(Dim.fixed) ?? .unknown
        }
        return [TensorType(dtype: xt.dtype, shape: dims)]
    }

    // MARK: Reference kernel

    /// The input coordinate of output index `x` (ONNX Runtime's float32 formulas).
    static func originalCoordinate(_ c: Coordinates, x: Float, scale: Float, outLen: Int, inLen: Int,
                                   roiStart: Float, roiEnd: Float) -> Float {
        switch c {
        case .halfPixel:
            return (x + 0.5) / scale - 0.5
        case .halfPixelSymmetric:
            let outputWidth = scale * Float(inLen)
            let adjustment = Float(outLen) / outputWidth
            let center = Float(inLen) / 2
            let offset = center * (1 - adjustment)
            return offset + (x + 0.5) / scale - 0.5
        case .pytorchHalfPixel:
            return outLen > 1 ? (x + 0.5) / scale - 0.5 : 0
        case .alignCorners:
            return outLen == 1 ? 0 : x * Float(inLen - 1) / Float(outLen - 1)
        case .asymmetric:
            return x / scale
        case .tfHalfPixelForNearest:
            return (x + 0.5) / scale
        case .tfCropAndResize:
            if outLen > 1 {
                return roiStart * Float(inLen - 1) + (x * (roiEnd - roiStart) * Float(inLen - 1)) / Float(outLen - 1)
            }
            return Float(0.5 * Double(roiStart + roiEnd) * Double(inLen - 1))
        }
    }

    static func nearestIndex(_ mode: NearestMode, _ x: Float, downsampling: Bool) -> Float {
        switch mode {
        case .roundPreferFloor:
            if x == x.rounded(.towardZero) + 0.5 { return x.rounded(.down) }
            return x.rounded(.toNearestOrAwayFromZero)
        case .roundPreferCeil: return x.rounded(.toNearestOrAwayFromZero)
        case .floor: return x.rounded(.down)
        case .ceil: return x.rounded(.up)
        case .simple: return downsampling ? x.rounded(.up) : x.rounded(.towardZero)
        }
    }

    /// Cubic convolution weights for fractional offset `s` (ONNX Runtime's formulas).
    static func cubicCoefficients(_ s: Float, a: Float) -> [Float] {
        let t = abs(s)
        let c0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
        let c1 = ((a + 2) * t - (a + 3)) * t * t + 1
        let c2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
        let c3 = ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a
        return [c0, c1, c2, c3]
    }

    struct AxisMap {
        /// Taps per output index: 1 (nearest), 2 (linear) or 4 (cubic).
        var width: Int
        /// Input index and weight of tap t of output j at `j * width + t`.
        var index: [Int]
        var weight: [Double]
        /// Per output index: whether the coordinate falls outside the input (tf_crop_and_resize).
        var outside: [Bool]
        var isIdentity: Bool
    }

    static func axisMap(_ attrs: Attributes, inLen: Int, outLen: Int, scale: Float, roiStart: Float, roiEnd: Float) -> AxisMap {
        let width = attrs.mode == .nearest ? 1 : attrs.mode == .linear ? 2 : 4
        var index: [Int] = [], weight: [Double] = [], outside: [Bool] = []
        index.reserveCapacity(outLen * width)
        weight.reserveCapacity(outLen * width)
        outside.reserveCapacity(outLen)
        let extrapolate = attrs.coordinates == .tfCropAndResize
        var identity = inLen == outLen && !extrapolate
        let last = inLen - 1
        for o in 0..<outLen {
            let x = originalCoordinate(attrs.coordinates, x: Float(o), scale: scale, outLen: outLen, inLen: inLen,
                                       roiStart: roiStart, roiEnd: roiEnd)
            outside.append(extrapolate && (x < 0 || x > Float(last)))
            switch attrs.mode {
            case .nearest:
                let i = min(max(nearestIndex(attrs.nearest, x, downsampling: scale < 1), 0), Float(last))
                index.append(x.isFinite ? Int(i) : 0); weight.append(1)
                if identity && index[o] != o { identity = false }
            case .linear:
                // ONNX Runtime's form: clamp the coordinate, weight each neighbour by the
                // distance to the other one.
                let xc = x.isFinite ? min(max(x, 0), Float(last)) : 0
                let i0 = min(Int(xc), last)
                let i1 = min(i0 + 1, last)
                if i0 == i1 {
                    index += [i0, i0]; weight += [1, 0]
                } else {
                    index += [i0, i1]; weight += [Double(abs(xc - Float(i1))), Double(abs(xc - Float(i0)))]
                }
                if identity && !(index[2 * o] == o && weight[2 * o] == 1 && weight[2 * o + 1] == 0) { identity = false }
            case .cubic:
                let xf = x.isFinite ? x : 0
                let base = Int(xf.rounded(.down))
                var coeffs = cubicCoefficients(xf - xf.rounded(.down), a: attrs.cubicA)
                var sum: Float = 1
                if attrs.excludeOutside {
                    sum = 0
                    for j in 0..<4 {
                        let p = base - 1 + j
                        if p < 0 || p > last { coeffs[j] = 0 }
                        sum += coeffs[j]
                    }
                }
                for j in 0..<4 {
                    index.append(min(max(base - 1 + j, 0), last))
                    weight.append(Double(coeffs[j] / sum))
                }
                if identity && !(base == o && coeffs[1] / sum == 1 && coeffs[0] == 0 && coeffs[2] == 0 && coeffs[3] == 0) {
                    identity = false
                }
            }
        }
        return AxisMap(width: width, index: index, weight: weight, outside: outside, isIdentity: identity)
    }

    /// Resizes axis `a` of `src` (shape `shape`) into `dst` with `newLen` along that axis.
    static func apply(_ map: AxisMap, src: UnsafePointer<Double>, dst: UnsafeMutablePointer<Double>, shape: [Int], axis a: Int, newLen: Int) {
        let outer = shape[..<a].reduce(1, *), len = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        let width = map.width
        map.index.withUnsafeBufferPointer { index in
            map.weight.withUnsafeBufferPointer { weight in
                for o in 0..<outer {
                    let s = src + o * len * inner, d = dst + o * newLen * inner
                    if inner == 1 {
                        for j in 0..<newLen {
                            var acc = 0.0
                            for t in (j * width)..<(j * width + width) { acc += weight[t] * s[index[t]] }
                            d[j] = acc
                        }
                    } else {
                        for j in 0..<newLen {
                            let drow = d + j * inner
                            drow.initialize(repeating: 0, count: inner)
                            for t in (j * width)..<(j * width + width) {
                                let w = weight[t], srow = s + index[t] * inner
                                for k in 0..<inner { drow[k] += w * srow[k] }
                            }
                        }
                    }
                }
            }
        }
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        let x = try NetworkSupport.required(inputs, 0, node, "X")
        try NetworkSupport.requireFloat32(x, node, "X")
        let attrs = try attributes(node, opset: opset)
        let idx = inputIndices(opset: opset)
        func known<T>(_ i: Int?, _ convert: (Tensor) -> T) -> Known<T> {
            guard let i, let t = NetworkSupport.optional(inputs, i), t.elementCount > 0 else { return .absent }
            return .value(convert(t))
        }
        let r = try resolve(node, attrs, input: x.shape,
                            roi: known(idx.roi) { $0.floats },
                            scales: known(idx.scales) { $0.floats },
                            sizes: known(idx.sizes) { $0.int64s.map { Int($0) } })
        let rank = x.rank
        let outShape = r.output.map { $0! }
        var maps: [AxisMap] = []
        for a in 0..<rank {
            if x.shape[a] == 0 && outShape[a] > 0 {
                throw NetworkSupport.shapeError(node, "cannot resize an empty axis \(a) to \(outShape[a])")
            }
            maps.append(axisMap(attrs, inLen: x.shape[a], outLen: outShape[a], scale: r.scales[a]!,
                                roiStart: r.roiStart[a], roiEnd: r.roiEnd[a]))
        }
        let (out, y) = NetworkSupport.makeFloat(outShape)
        if out.elementCount == 0 { return [out] }

        // Apply the axes one at a time on a Double buffer.
        var shape = x.shape
        let xp = NetworkSupport.floats(x)
        var cur = UnsafeMutablePointer<Double>.allocate(capacity: max(x.elementCount, 1))
        for i in 0..<x.elementCount { cur[i] = Double(xp[i]) }
        for a in 0..<rank where !maps[a].isIdentity {
            let newLen = outShape[a]
            let count = shape.reduce(1, *) / max(shape[a], 1) * newLen
            let next = UnsafeMutablePointer<Double>.allocate(capacity: max(count, 1))
            apply(maps[a], src: cur, dst: next, shape: shape, axis: a, newLen: newLen)
            cur.deallocate()
            cur = next
            shape[a] = newLen
        }
        for i in 0..<out.elementCount { y[i] = Float(cur[i]) }
        cur.deallocate()

        // tf_crop_and_resize: any coordinate outside the input gives extrapolation_value.
        for a in 0..<rank where maps[a].outside.contains(true) {
            let outer = outShape[..<a].reduce(1, *), len = outShape[a], inner = outShape[(a + 1)...].reduce(1, *)
            for o in 0..<outer {
                for j in 0..<len where maps[a].outside[j] {
                    let base = (o * len + j) * inner
                    for t in 0..<inner { y[base + t] = attrs.extrapolation }
                }
            }
        }
        return [out]
    }
}
