import Foundation

/// Slice(data, starts, ends[, axes[, steps]]) (opset 10+; before, starts/ends/axes are
/// attributes and steps are 1). Per the ONNX spec, negative starts/ends count from the end,
/// then starts are clamped to [0, d] (to [0, d-1] for negative steps) and ends to [0, d]
/// ([-1, d-1] for negative steps), so INT64_MAX / INT64_MIN mean "to the end". Steps may be
/// negative (reversal), not zero. Axes are unique and may be negative.
///
/// Spec semantics are kept where ONNX Runtime's kernel deviates: ORT reads an end of INT32_MAX
/// or INT64_MAX as "to the end in the step's direction" even for negative steps (x[3:MAX:-1]
/// gives [3, 2, 1, 0] there, and ORT warns that this contradicts ONNX shape inference); here,
/// as in the spec, ONNX shape inference and onnx.reference, it is clamped to d-1 and the slice
/// is empty. Exporters write INT64_MIN for backward slices (torch.flip does), which agree.
public enum SliceOperator: Operator {
    public static let opType = "Slice"

    struct Parameters {
        var starts: [Int]
        var ends: [Int]
        var axes: [Int]?
        var steps: [Int]?
    }

    /// Start index and element count along one axis (ONNX clamping; no overflow for steps or
    /// bounds near Int.min/max). The runtime's strided-copy Slice uses it too.
    public static func range(start: Int, end: Int, step: Int, dim: Int) -> (start: Int, count: Int) {
        var s = start, e = end
        if s < 0 { s = s &+ dim }
        if e < 0 { e = e &+ dim }
        if step > 0 {
            s = Swift.min(Swift.max(s, 0), dim)
            e = Swift.min(Swift.max(e, 0), dim)
            return (s, e > s ? (e - s - 1) / step + 1 : 0)
        }
        if dim == 0 { return (0, 0) }
        s = Swift.min(Swift.max(s, 0), dim - 1)
        e = Swift.min(Swift.max(e, -1), dim - 1)
        let m = step == Int.min ? Int.max : -step
        return (s, s > e ? (s - e - 1) / m + 1 : 0)
    }

    /// Normalised axes and steps, checked against `rank`.
    static func axesAndSteps(_ p: Parameters, rank: Int, _ node: Node) throws -> (axes: [Int], steps: [Int]) {
        guard p.starts.count == p.ends.count else {
            throw TensorOpSupport.shapeError(node, "starts (\(p.starts.count)) and ends (\(p.ends.count)) differ in length")
        }
        let axes = try (p.axes ?? Array(0..<p.starts.count)).map {
            try OperatorSupport.normalizeAxis($0, rank: rank, node: node.displayName)
        }
        guard axes.count == p.starts.count else {
            throw TensorOpSupport.shapeError(node, "axes (\(axes.count)) and starts (\(p.starts.count)) differ in length")
        }
        guard Set(axes).count == axes.count else {
            throw TensorOpSupport.attributeError(node, "axes \(p.axes ?? []) repeat an axis")
        }
        let steps = p.steps ?? Array(repeating: 1, count: axes.count)
        guard steps.count == axes.count else {
            throw TensorOpSupport.shapeError(node, "steps (\(steps.count)) and starts (\(p.starts.count)) differ in length")
        }
        guard !steps.contains(0) else { throw TensorOpSupport.attributeError(node, "Slice steps cannot be 0") }
        return (axes, steps)
    }

    /// Whether the node uses the old attribute form.
    static func usesAttributes(_ node: Node) -> Bool { node.inputs.count == 1 }

    static func attributeParameters(_ node: Node) throws -> Parameters {
        guard let starts = try TensorOpSupport.ints(node, "starts"), let ends = try TensorOpSupport.ints(node, "ends") else {
            throw TensorOpSupport.attributeError(node, "Slice needs starts and ends")
        }
        return Parameters(starts: starts, ends: ends, axes: try TensorOpSupport.ints(node, "axes"), steps: nil)
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        typealias S = TensorOpSupport
        let node = context.node
        guard context.inputTypes.count == 1 || (3...5).contains(context.inputTypes.count) else {
            throw S.shapeError(node, "Slice takes 3 to 5 inputs, got \(context.inputTypes.count)")
        }
        let t = try context.inputType(0)
        guard let shape = t.shape else { return [TensorType(dtype: t.dtype, shape: nil)] }
        var p: Parameters?
        var constantAxes: [Int]?
        if usesAttributes(node) {
            p = try attributeParameters(node)
        } else {
            let axes = S.hasInput(node, 3) ? try S.constantIntegers(context, 3, "axes") : nil
            let axesKnown = !S.hasInput(node, 3) || axes != nil
            if axesKnown, let a = axes { constantAxes = a }
            if let starts = try S.constantIntegers(context, 1, "starts"), let ends = try S.constantIntegers(context, 2, "ends"),
               axesKnown, !S.hasInput(node, 4) || S.constant(context, 4) != nil {
                p = Parameters(starts: starts, ends: ends, axes: axes,
                               steps: S.hasInput(node, 4) ? try S.constantIntegers(context, 4, "steps") : nil)
            }
        }
        guard let p else {
            // Bounds unknown: only axes not sliced keep their size.
            var out = Array(repeating: Dim.unknown, count: shape.count)
            if let axes = constantAxes {
                let sliced = Set(try axes.map { try OperatorSupport.normalizeAxis($0, rank: shape.count, node: node.displayName) })
                for i in 0..<shape.count where !sliced.contains(i) { out[i] = shape[i] }
            }
            return [TensorType(dtype: t.dtype, shape: out)]
        }
        let (axes, steps) = try axesAndSteps(p, rank: shape.count, node)
        var out = shape
        for (k, a) in axes.enumerated() {
            if let d = shape[a].value {
                out[a] = .fixed(range(start: p.starts[k], end: p.ends[k], step: steps[k], dim: d).count)
            } else {
                out[a] = .unknown
            }
        }
        return [TensorType(dtype: t.dtype, shape: out)]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        typealias S = TensorOpSupport
        guard inputs.count == 1 || (3...5).contains(inputs.count) else {
            throw S.shapeError(node, "Slice takes 3 to 5 inputs, got \(inputs.count)")
        }
        let x = try S.required(inputs, 0, node)
        let p: Parameters
        if inputs.count == 1 {
            p = try attributeParameters(node)
        } else {
            p = Parameters(starts: try S.integers1D(S.required(inputs, 1, node), node, "starts"),
                           ends: try S.integers1D(S.required(inputs, 2, node), node, "ends"),
                           axes: try S.optional(inputs, 3).map { try S.integers1D($0, node, "axes") },
                           steps: try S.optional(inputs, 4).map { try S.integers1D($0, node, "steps") })
        }
        let (axes, steps) = try axesAndSteps(p, rank: x.rank, node)
        let inStrides = S.contiguousStrides(x.shape)
        var outShape = x.shape
        var strides = inStrides
        var base = 0
        for (k, a) in axes.enumerated() {
            let r = range(start: p.starts[k], end: p.ends[k], step: steps[k], dim: x.shape[a])
            outShape[a] = r.count
            // With at most one element the step is irrelevant (and a huge one would overflow).
            strides[a] = r.count > 1 ? inStrides[a] * steps[k] : inStrides[a]
            base += r.start * inStrides[a]
        }
        if outShape == x.shape && strides == inStrides { return [x] }
        return [S.stridedCopy(x, shape: outShape, strides: strides, base: base, outShape: outShape)]
    }
}
