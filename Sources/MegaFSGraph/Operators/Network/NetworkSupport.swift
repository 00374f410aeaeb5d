/// Helpers shared by the network operators (convolution, pooling, matrix products, resizing,
/// padding): attribute parsing, the sliding-window geometry of ONNX's conv/pool family, and
/// raw float access for the reference kernels.
enum NetworkSupport {
    // MARK: - Errors

    static func attributeError(_ node: Node, _ message: String) -> GraphError {
        .invalidAttribute(node: node.displayName, "\(node.opType): \(message)")
    }

    static func shapeError(_ node: Node, _ message: String) -> GraphError {
        .shapeMismatch(node: node.displayName, "\(node.opType): \(message)")
    }

    // MARK: - Inputs

    /// The input tensor at `index`, or an error naming the node when it is missing.
    static func required(_ inputs: [Tensor?], _ index: Int, _ node: Node, _ role: String) throws -> Tensor {
        guard index < inputs.count, let t = inputs[index] else {
            throw shapeError(node, "missing required input \(index) (\(role))")
        }
        return t
    }

    /// An optional input: nil when the node omits it ("" name) or the caller passes nil.
    static func optional(_ inputs: [Tensor?], _ index: Int) -> Tensor? {
        index < inputs.count ? inputs[index] : nil
    }

    /// Throws unless `tensor` is float32 (the only type the reference kernels compute in).
    static func requireFloat32(_ tensor: Tensor, _ node: Node, _ role: String) throws {
        guard tensor.dtype == .float32 else {
            throw GraphError.unsupportedOperator(
                "node \(node.displayName): the \(node.opType) reference kernel computes in float32 only; \(role) is \(tensor.dtype.name)")
        }
    }

    /// Throws unless the (type-level) dtype is a floating point type.
    static func requireFloatType(_ type: TensorType, _ node: Node, _ role: String) throws {
        guard type.dtype.isFloatingPoint else {
            throw shapeError(node, "\(role) must be a floating point tensor, got \(type.dtype.name)")
        }
    }

    /// The type at `index` when the input is present (non-empty name and a known type).
    static func optionalType(_ context: OperatorContext, _ index: Int) -> TensorType? {
        let node = context.node
        guard index < node.inputs.count, !node.inputs[index].isEmpty, index < context.inputTypes.count else { return nil }
        return context.inputTypes[index]
    }

    static func isPresent(_ node: Node, _ index: Int) -> Bool {
        index < node.inputs.count && !node.inputs[index].isEmpty
    }

    // MARK: - Raw float access

    /// Read-only floats of a float32 tensor. The buffer lives as long as the tensor's storage.
    @inline(__always)
    static func floats(_ t: Tensor) -> UnsafePointer<Float> {
        UnsafePointer(t.storage.pointer.bindMemory(to: Float.self, capacity: max(t.elementCount, 1)))
    }

    /// A new zero-filled float32 tensor and a pointer to write its elements.
    static func makeFloat(_ shape: [Int]) -> (Tensor, UnsafeMutablePointer<Float>) {
        let t = Tensor(zeros: .float32, shape: shape)
        return (t, t.storage.pointer.bindMemory(to: Float.self, capacity: max(t.elementCount, 1)))
    }

    // MARK: - Attributes

    /// An ints attribute of exactly `count` values, or `fallback` repeated when absent.
    static func ints(_ node: Node, _ key: String, count: Int, default fallback: Int) throws -> [Int] {
        guard let attr = node.attributes[key] else { return Array(repeating: fallback, count: count) }
        guard case .ints(let v) = attr else {
            throw attributeError(node, "attribute '\(key)' must be a list of ints, got \(attr)")
        }
        guard v.count == count else {
            throw attributeError(node, "attribute '\(key)' has \(v.count) values, expected \(count)")
        }
        return v
    }

    static func int(_ node: Node, _ key: String, default fallback: Int) throws -> Int {
        guard let attr = node.attributes[key] else { return fallback }
        guard case .int(let v) = attr else { throw attributeError(node, "attribute '\(key)' must be an int, got \(attr)") }
        return v
    }

    static func float(_ node: Node, _ key: String, default fallback: Float) throws -> Float {
        guard let attr = node.attributes[key] else { return fallback }
        switch attr {
        case .float(let v): return v
        case .int(let v): return Float(v)
        default: throw attributeError(node, "attribute '\(key)' must be a float, got \(attr)")
        }
    }

    static func string(_ node: Node, _ key: String, default fallback: String) throws -> String {
        guard let attr = node.attributes[key] else { return fallback }
        guard case .string(let v) = attr else { throw attributeError(node, "attribute '\(key)' must be a string, got \(attr)") }
        return v
    }

    /// A 0/1 flag attribute.
    static func flag(_ node: Node, _ key: String, default fallback: Int = 0) throws -> Bool {
        let v = try int(node, key, default: fallback)
        guard v == 0 || v == 1 else { throw attributeError(node, "attribute '\(key)' must be 0 or 1, got \(v)") }
        return v == 1
    }

    // MARK: - Integer helpers

    /// Floor division for a positive divisor.
    @inline(__always)
    static func floorDiv(_ a: Int, _ b: Int) -> Int {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }

    /// Ceiling division for a positive divisor.
    @inline(__always)
    static func ceilDiv(_ a: Int, _ b: Int) -> Int {
        a >= 0 ? (a + b - 1) / b : -((-a) / b)
    }

    /// Dims of a shape, with nil for unknown ones.
    static func dimValues(_ dims: [Dim]) -> [Int?] { dims.map(\.value) }
}

// MARK: - Sliding-window geometry (Conv, ConvTranspose, MaxPool, AveragePool)

/// ONNX's `auto_pad` attribute.
enum AutoPad: String {
    case notSet = "NOTSET"
    case sameUpper = "SAME_UPPER"
    case sameLower = "SAME_LOWER"
    case valid = "VALID"

    static func parse(_ node: Node) throws -> AutoPad {
        let text = try NetworkSupport.string(node, "auto_pad", default: "NOTSET")
        guard let v = AutoPad(rawValue: text) else {
            throw NetworkSupport.attributeError(node, "auto_pad '\(text)' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
        }
        return v
    }
}

/// The window attributes common to convolution and pooling, for `rank` spatial axes.
struct WindowAttributes {
    var kernel: [Int]
    var strides: [Int]
    var dilations: [Int]
    /// Explicit pads (begin values then end values), zero when `auto_pad` is not NOTSET.
    var padsBegin: [Int]
    var padsEnd: [Int]
    var autoPad: AutoPad

    var rank: Int { kernel.count }

    /// Parses strides, dilations, pads and auto_pad; `kernel` comes from the caller
    /// (attribute or weight shape). Validates positivity and non-negative pads.
    static func parse(_ node: Node, kernel: [Int], allowDilations: Bool = true) throws -> WindowAttributes {
        let rank = kernel.count
        let strides = try NetworkSupport.ints(node, "strides", count: rank, default: 1)
        let dilations = try NetworkSupport.ints(node, "dilations", count: rank, default: 1)
        let pads = try NetworkSupport.ints(node, "pads", count: 2 * rank, default: 0)
        let autoPad = try AutoPad.parse(node)
        guard kernel.allSatisfy({ $0 > 0 }) else {
            throw NetworkSupport.attributeError(node, "kernel shape \(kernel) must be positive")
        }
        guard strides.allSatisfy({ $0 > 0 }) else {
            throw NetworkSupport.attributeError(node, "strides \(strides) must be positive")
        }
        guard dilations.allSatisfy({ $0 > 0 }) else {
            throw NetworkSupport.attributeError(node, "dilations \(dilations) must be positive")
        }
        if !allowDilations && dilations.contains(where: { $0 != 1 }) {
            throw NetworkSupport.attributeError(node, "dilations \(dilations) are not supported here")
        }
        guard pads.allSatisfy({ $0 >= 0 }) else {
            throw NetworkSupport.attributeError(node, "pads \(pads) must not be negative")
        }
        if autoPad != .notSet && node.attributes["pads"] != nil && pads.contains(where: { $0 != 0 }) {
            throw NetworkSupport.attributeError(node, "explicit pads \(pads) cannot be combined with auto_pad \(autoPad.rawValue)")
        }
        return WindowAttributes(kernel: kernel, strides: strides, dilations: dilations,
                                padsBegin: Array(pads[0..<rank]), padsEnd: Array(pads[rank...]), autoPad: autoPad)
    }

    func dilatedKernel(_ i: Int) -> Int { (kernel[i] - 1) * dilations[i] + 1 }

    /// Output size and begin/end pads of a forward window (Conv, pooling) along axis `i`.
    /// `ceilMode` applies the pooling rule: ceil instead of floor, and a last window that
    /// would start inside the end padding is dropped (as ONNX Runtime and PyTorch do).
    func forward(axis i: Int, input: Int, ceilMode: Bool = false, node: Node) throws -> (out: Int, begin: Int, end: Int) {
        let dk = dilatedKernel(i)
        let s = strides[i]
        switch autoPad {
        case .sameUpper, .sameLower:
            let out = NetworkSupport.ceilDiv(input, s)
            let total = max(0, (out - 1) * s + dk - input)
            let begin = autoPad == .sameUpper ? total / 2 : total - total / 2
            return (out, begin, total - begin)
        case .notSet, .valid:
            let pb = autoPad == .valid ? 0 : padsBegin[i]
            let pe = autoPad == .valid ? 0 : padsEnd[i]
            let span = input + pb + pe - dk
            guard span >= 0 else {
                throw NetworkSupport.shapeError(node, "window \(dk) (kernel \(kernel[i]), dilation \(dilations[i])) is larger than the padded input \(input + pb + pe) along spatial axis \(i)")
            }
            var out = (ceilMode ? NetworkSupport.ceilDiv(span, s) : span / s) + 1
            if ceilMode && (out - 1) * s >= input + pb { out -= 1 }
            return (out, pb, pe)
        }
    }
}

/// Resolved geometry of a 1-3-D window operation, canonicalised to three spatial axes
/// (leading unit axes for lower ranks) so one loop nest serves all ranks.
struct Geometry3 {
    var input: [Int] = [1, 1, 1]
    var output: [Int] = [1, 1, 1]
    var kernel: [Int] = [1, 1, 1]
    var strides: [Int] = [1, 1, 1]
    var dilations: [Int] = [1, 1, 1]
    var padBegin: [Int] = [0, 0, 0]
    var padEnd: [Int] = [0, 0, 0]

    init(rank: Int, input: [Int], output: [Int], window: WindowAttributes, padBegin: [Int], padEnd: [Int]) {
        let o = 3 - rank
        for i in 0..<rank {
            self.input[o + i] = input[i]
            self.output[o + i] = output[i]
            self.kernel[o + i] = window.kernel[i]
            self.strides[o + i] = window.strides[i]
            self.dilations[o + i] = window.dilations[i]
            self.padBegin[o + i] = padBegin[i]
            self.padEnd[o + i] = padEnd[i]
        }
    }

    var inputVolume: Int { input[0] * input[1] * input[2] }
    var outputVolume: Int { output[0] * output[1] * output[2] }
    var kernelVolume: Int { kernel[0] * kernel[1] * kernel[2] }

    /// For a forward window: for each axis and kernel tap, the output index range whose tap
    /// falls inside the input (`o*s - p + k*d` in `[0, input)`).
    func forwardRanges() -> [[Range<Int>]] {
        (0..<3).map { a in
            (0..<kernel[a]).map { k in
                let off = k * dilations[a] - padBegin[a]
                let lo = max(0, NetworkSupport.ceilDiv(-off, strides[a]))
                let hi = min(output[a], NetworkSupport.ceilDiv(input[a] - off, strides[a]))
                return lo < hi ? lo..<hi : 0..<0
            }
        }
    }

    /// For a transposed window: for each axis and kernel tap, the input index range whose
    /// target `i*s - p + k*d` falls inside the output.
    func transposedRanges() -> [[Range<Int>]] {
        (0..<3).map { a in
            (0..<kernel[a]).map { k in
                let off = k * dilations[a] - padBegin[a]
                let lo = max(0, NetworkSupport.ceilDiv(-off, strides[a]))
                let hi = min(input[a], NetworkSupport.ceilDiv(output[a] - off, strides[a]))
                return lo < hi ? lo..<hi : 0..<0
            }
        }
    }
}

// MARK: - Inner loop of the convolution kernels

extension NetworkSupport {
    /// `acc[o * accStride] += Σ_c w.c * x.c[o * xStride]` for `o` in `range`, over the first
    /// `count` (1-4) sources. Summing several input channels per pass over the accumulator
    /// row cuts its loads and stores by up to 4x.
    @inline(__always)
    static func accumulate(_ acc: UnsafeMutablePointer<Double>, accStride: Int,
                           _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>,
                           _ x2: UnsafePointer<Float>, _ x3: UnsafePointer<Float>, xStride: Int,
                           _ w0: Double, _ w1: Double, _ w2: Double, _ w3: Double,
                           count: Int, range: Range<Int>) {
        if accStride == 1 && xStride == 1 {
            switch count {
            case 4:
                for o in range {
                    acc[o] += w0 * Double(x0[o]) + w1 * Double(x1[o]) + w2 * Double(x2[o]) + w3 * Double(x3[o])
                }
            case 3:
                for o in range { acc[o] += w0 * Double(x0[o]) + w1 * Double(x1[o]) + w2 * Double(x2[o]) }
            case 2:
                for o in range { acc[o] += w0 * Double(x0[o]) + w1 * Double(x1[o]) }
            default:
                for o in range { acc[o] += w0 * Double(x0[o]) }
            }
        } else {
            switch count {
            case 4:
                for o in range {
                    let i = o * xStride
                    acc[o * accStride] += w0 * Double(x0[i]) + w1 * Double(x1[i]) + w2 * Double(x2[i]) + w3 * Double(x3[i])
                }
            case 3:
                for o in range {
                    let i = o * xStride
                    acc[o * accStride] += w0 * Double(x0[i]) + w1 * Double(x1[i]) + w2 * Double(x2[i])
                }
            case 2:
                for o in range {
                    let i = o * xStride
                    acc[o * accStride] += w0 * Double(x0[i]) + w1 * Double(x1[i])
                }
            default:
                for o in range { acc[o * accStride] += w0 * Double(x0[o * xStride]) }
            }
        }
    }
}

/// What Conv and ConvTranspose resolve from their attributes and shapes.
struct ConvolutionPlan {
    var group: Int
    var window: WindowAttributes
    /// Output spatial dims (nil where the input dim is unknown) and pads actually applied.
    var outSpatial: [Int?]
    var padBegin: [Int?]
    var padEnd: [Int?]
}

extension NetworkSupport {
    /// The checks and attributes Conv and ConvTranspose share: ranks of X and W, `group`, and
    /// the kernel (the `kernel_shape` attribute, which must agree with W, else W's spatial dims).
    static func convolutionWindow(_ node: Node, x: [Int?], w: [Int?]) throws -> (rank: Int, group: Int, window: WindowAttributes) {
        guard x.count >= 3 else {
            throw shapeError(node, "input X must have rank >= 3 (N, C, spatial...), got rank \(x.count)")
        }
        guard w.count == x.count else {
            throw shapeError(node, "weight W has rank \(w.count) but X has rank \(x.count)")
        }
        let rank = x.count - 2
        let group = try int(node, "group", default: 1)
        guard group >= 1 else { throw attributeError(node, "group \(group) must be >= 1") }

        var kernel: [Int] = []
        if node.attributes["kernel_shape"] != nil {
            kernel = try ints(node, "kernel_shape", count: rank, default: 1)
            for i in 0..<rank {
                if let wk = w[2 + i], wk != kernel[i] {
                    throw shapeError(node, "kernel_shape \(kernel) does not match the weight's spatial dims \(w.dropFirst(2).map { $0.map(String.init) ?? "?" })")
                }
            }
        } else {
            for i in 0..<rank {
                guard let v = w[2 + i] else {
                    throw shapeError(node, "the kernel size is unknown: no kernel_shape attribute and the weight's spatial dims are not known")
                }
                kernel.append(v)
            }
        }
        return (rank, group, try WindowAttributes.parse(node, kernel: kernel))
    }
}

extension NetworkSupport {
    /// The shape rule Conv and ConvTranspose share: (N, channels, spatial from `plan`), with the
    /// batch dim carried through and everything unknown that the weight's shape cannot tell.
    static func inferConvolutionTypes(
        _ context: OperatorContext,
        plan: (Node, [Int?], [Int?], [Int?]?) throws -> ConvolutionPlan,
        outputChannels: ([Dim], ConvolutionPlan) -> Dim
    ) throws -> [TensorType] {
        let node = context.node
        let xt = try context.inputType(0)
        let wt = try context.inputType(1)
        try requireFloatType(xt, node, "X")
        guard let xs = xt.shape else { return [TensorType(dtype: xt.dtype, shape: nil)] }
        guard let ws = wt.shape else {
            // Without the weight's shape neither channels nor the kernel are known.
            return [TensorType(dtype: xt.dtype, shape: [xs[0]] + Array(repeating: Dim.unknown, count: xs.count - 1))]
        }
        let bs = optionalType(context, 2)?.shape
        let p = try plan(node, dimValues(xs), dimValues(ws), bs.map(dimValues))
        let out: [Dim] = [xs[0], outputChannels(ws, p)] + p.outSpatial.map { $0.map(Dim.fixed) ?? .unknown }
        return [TensorType(dtype: xt.dtype, shape: out)]
    }
}
