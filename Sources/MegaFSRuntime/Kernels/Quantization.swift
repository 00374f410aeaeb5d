import MegaFSGraph

/// An int8 weight kept as int8 in memory: `values` (int8) stands for `values * scales[c]` with c
/// the index along `axis` (symmetric, zero point 0). Produced by a DequantizeLinear node whose
/// inputs are initializers; kernels that can use the int8 values directly read them from here.
struct QuantizedConstant {
    let values: Tensor
    let scales: [Float]
    /// nil: one scale for the whole tensor.
    let axis: Int?

    /// Recognises DequantizeLinear(int8 constant, float scales[, zero point of zeros]);
    /// `constant(i)` is the value of the node's input i when it is a constant.
    init?(node: Node, constant: (Int) -> Tensor?) {
        guard node.opType == "DequantizeLinear", node.domain.isEmpty, node.inputs.count >= 2,
              let q = constant(0), q.dtype == .int8, let s = constant(1), s.dtype == .float32,
              (node.int("block_size") ?? 0) == 0,
              let layout = ScaleLayout(node, valueShape: q.shape, scaleShape: s.shape) else { return nil }
        if node.inputs.count > 2, !node.inputs[2].isEmpty {
            guard let z = constant(2), z.int64s.allSatisfy({ $0 == 0 }) else { return nil }
        }
        values = q
        scales = s.floats
        axis = layout.axis
    }

    init(values: Tensor, scales: [Float], axis: Int?) {
        self.values = values; self.scales = scales; self.axis = axis
    }

    init?(node: Node, inputs: [ValueDesc?]) {
        self.init(node: node) { i in i < inputs.count ? inputs[i]?.constant : nil }
    }

    /// Whether the values are `rows` rows of `rowLength` with one scale per row or one for the
    /// whole tensor: the layouts the row-streaming kernels read as int8 directly.
    func scalesRows(_ rows: Int, rowLength: Int) -> Bool {
        values.elementCount == rows * rowLength
            && (axis == 0 ? scales.count == rows && values.shape[0] == rows : axis == nil && scales.count == 1)
    }

    /// Elements after the axis (the run length sharing one scale).
    var inner: Int { axis.map { values.shape[($0 + 1)...].reduce(1, *) } ?? values.elementCount }
    var channels: Int { axis.map { values.shape[$0] } ?? 1 }

    /// The float weight (exactly what DequantizeLinear computes), for load-time precomputation.
    func dequantized() -> Tensor {
        let out = Tensor(zeros: .float32, shape: values.shape)
        let p = out.storage.pointer.assumingMemoryBound(to: Float.self)
        let q = UnsafePointer(values.storage.pointer.assumingMemoryBound(to: Int8.self))
        scales.withUnsafeBufferPointer { s in
            DequantizeKernel.dequantize(q, into: p, range: 0..<values.elementCount, inner: max(1, inner),
                                        channels: channels, scales: s.baseAddress!)
        }
        return out
    }
}

/// How a DequantizeLinear's scales map onto its input: one for all, or one per index along an
/// axis. nil when the scale's shape does not fit the value's.
enum ScaleLayout {
    case perTensor
    case perAxis(Int)

    var axis: Int? { if case .perAxis(let a) = self { return a } else { return nil } }

    init?(_ node: Node, valueShape: [Int], scaleShape: [Int]) {
        let count = scaleShape.reduce(1, *)
        if scaleShape.isEmpty { self = .perTensor; return }
        guard scaleShape.count == 1 else { return nil }
        var a = node.int("axis") ?? 1
        if a < 0 { a += valueShape.count }
        if count > 1, a >= 0, a < valueShape.count, valueShape[a] == count { self = .perAxis(a); return }
        guard count == 1 else { return nil }
        self = .perTensor
    }
}

/// DequantizeLinear of an int8 weight into a float32 buffer: the weight-only int8 mode, where the
/// float weight exists only from just before its consumer runs until it is done (the planner
/// schedules constant-only nodes late, so the arena reuses the buffer).
final class DequantizeKernel: RuntimeKernel {
    let weight: QuantizedConstant
    let y: Int
    var kernelName: String { "dequantize(int8)" }

    init(weight: QuantizedConstant, y: Int) { self.weight = weight; self.y = y }

    static func build(_ req: KernelRequest) -> RuntimeKernel? {
        guard let q = QuantizedConstant(node: req.node, inputs: req.inputs), let y = req.outputs.first ?? nil,
              y.dtype == .float32, y.shape == q.values.shape else { return nil }
        return DequantizeKernel(weight: q, y: y.slot)
    }

    func run(_ ctx: KernelContext) throws {
        let q = UnsafePointer(weight.values.storage.pointer.assumingMemoryBound(to: Int8.self))
        let out = SendablePointer(ctx.f32(y))
        let inner = max(1, weight.inner), channels = weight.channels
        weight.scales.withUnsafeBufferPointer { s in
            let scales = s.baseAddress!
            ctx.threads.forRanges(weight.values.elementCount, minPerThread: 1 << 16) { range in
                Self.dequantize(q, into: out.p, range: range, inner: inner, channels: channels, scales: scales)
            }
        }
    }

    /// out[i] = Float(q[i]) * scales[(i / inner) % channels] for i in range.
    @inline(__always)
    static func dequantize(_ q: UnsafePointer<Int8>, into out: UnsafeMutablePointer<Float>, range: Range<Int>,
                           inner: Int, channels: Int, scales: UnsafePointer<Float>) {
        var i = range.lowerBound
        while i < range.upperBound {
            let c = (i / inner) % channels
            let end = min(range.upperBound, (i / inner + 1) * inner)
            let s = scales[c]
            for j in i..<end { out[j] = Float(q[j]) * s }
            i = end
        }
    }
}
