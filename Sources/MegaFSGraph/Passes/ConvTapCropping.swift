/// Drops the kernel rows and columns of a 2-D Conv that only ever meet padding, and moves the
/// pads so that the output keeps its size and every remaining tap its input pixels.
///
/// The encoder's last mapping convs (3x3, stride 2, pad 1) see a 2x2 input: only the kernel's
/// bottom-right 2x2 taps touch it, so 5/9 of each weight (94 MB over the 18 convs) multiplied
/// zeros on every run and sat in memory. Such a conv becomes a 2x2 conv with pads (0, 0, 1, 1).
/// Exact: the dropped products were all of padding zeros. Needs the spatial input sizes, so it
/// runs after shape inference; a symbolic height or width leaves the conv as it is.
public struct ConvTapCropping: GraphPass {
    public let name = "conv-tap-cropping"

    public init() {}

    public func run(_ graph: inout Graph) throws -> Int {
        let inputTypes = Dictionary(graph.inputs.map { ($0.name, $0.type) }, uniquingKeysWith: { a, _ in a })
        var cropped = 0
        var replaced: [String] = []
        for index in graph.nodes.indices {
            let node = graph.nodes[index]
            guard node.opType == "Conv", node.domain.isEmpty || node.domain == "ai.onnx", node.inputs.count >= 2,
                  let weight = graph.initializers[node.inputs[1]], weight.dtype == .float32, weight.rank == 4,
                  let xType = graph.valueTypes[node.inputs[0]] ?? inputTypes[node.inputs[0]],
                  let shape = xType.shape, shape.count == 4,
                  let height = shape[2].value, let width = shape[3].value,
                  let window = try? WindowAttributes.parse(node, kernel: Array(weight.shape[2...])),
                  window.autoPad == .notSet,
                  let rows = Self.usedTaps(window, axis: 0, input: height, node: node),
                  let columns = Self.usedTaps(window, axis: 1, input: width, node: node),
                  rows.taps.count < window.kernel[0] || columns.taps.count < window.kernel[1] else { continue }

            let (cout, cinG, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
            let (nh, nw) = (rows.taps.count, columns.taps.count)
            let source = weight.floats
            var values = [Float](repeating: 0, count: cout * cinG * nh * nw)
            for plane in 0..<(cout * cinG) {
                for (y, ky) in rows.taps.enumerated() {
                    for (x, kx) in columns.taps.enumerated() {
                        values[(plane * nh + y) * nw + x] = source[(plane * kh + ky) * kw + kx]
                    }
                }
            }
            let weightName = graph.uniqueInitializerName("\(node.inputs[1]).cropped")
            graph.initializers[weightName] = Tensor(values, shape: [cout, cinG, nh, nw])
            var rewritten = node
            rewritten.inputs[1] = weightName
            rewritten.attributes["kernel_shape"] = .ints([nh, nw])
            rewritten.attributes["pads"] = .ints([rows.begin, columns.begin, rows.end, columns.end])
            graph.nodes[index] = rewritten
            replaced.append(node.inputs[1])
            cropped += 1
        }
        // The original weights go unless another node still reads them.
        let stillRead = Set(graph.nodes.flatMap(\.inputs))
        for name in replaced where !stillRead.contains(name) { graph.initializers.removeValue(forKey: name) }
        return cropped
    }

    /// The contiguous taps along `axis` that read at least one input pixel, with the pads that
    /// keep the output size when only they remain; nil when nothing can be dropped safely.
    static func usedTaps(_ window: WindowAttributes, axis: Int, input: Int, node: Node)
        -> (taps: Range<Int>, begin: Int, end: Int)? {
        guard let (out, begin, end) = try? window.forward(axis: axis, input: input, node: node), out > 0 else { return nil }
        let stride = window.strides[axis], dilation = window.dilations[axis], kernel = window.kernel[axis]
        // Tap k reads begin-relative positions k*dilation + o*stride for o in 0..<out.
        func reads(_ k: Int) -> Bool {
            let first = k * dilation - begin
            let last = first + (out - 1) * stride
            guard last >= 0, first < input else { return false }
            // Some o with 0 <= first + o*stride < input.
            let o = first >= 0 ? 0 : (-first + stride - 1) / stride
            return o < out && first + o * stride < input
        }
        let used = (0..<kernel).filter(reads)
        guard let low = used.first, let high = used.last else { return nil }  // all padding: leave it
        let newBegin = begin - low * dilation, newEnd = end - (kernel - 1 - high) * dilation
        guard newBegin >= 0, newEnd >= 0 else { return nil }
        // The output size must not change.
        let span = input + newBegin + newEnd - ((high - low) * dilation + 1)
        guard span >= 0, span / stride + 1 == out else { return nil }
        return (low..<(high + 1), newBegin, newEnd)
    }
}
