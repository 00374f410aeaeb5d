import Foundation

// Reshape, Flatten, Squeeze, Unsqueeze: metadata-only operators (the output shares the
// input's storage).

/// Reshape(data, shape). `shape` is an int64 input (opset 5+) or, for old models, the `shape`
/// attribute. 0 copies the input dimension at the same index (unless allowzero = 1, opset 14,
/// where 0 is a real zero), -1 (at most once) is inferred from the element count.
public enum ReshapeOperator: Operator {
    public static let opType = "Reshape"

    static func allowZero(_ node: Node) throws -> Bool {
        let a = try TensorOpSupport.int(node, "allowzero", default: 0)
        guard a == 0 || a == 1 else { throw TensorOpSupport.attributeError(node, "allowzero must be 0 or 1, got \(a)") }
        return a == 1
    }

    /// Checks a requested shape: at most one -1, nothing below -1, 0 and -1 not mixed under allowzero.
    static func check(_ requested: [Int], allowZero: Bool, inputRank: Int?, _ node: Node) throws {
        guard requested.filter({ $0 == -1 }).count <= 1 else {
            throw TensorOpSupport.attributeError(node, "shape \(requested) has more than one -1")
        }
        if let bad = requested.first(where: { $0 < -1 }) {
            throw TensorOpSupport.attributeError(node, "shape \(requested) has the invalid dimension \(bad)")
        }
        if allowZero && requested.contains(0) && requested.contains(-1) {
            throw TensorOpSupport.attributeError(node, "shape \(requested) mixes 0 and -1 with allowzero = 1")
        }
        if !allowZero, let r = inputRank, let i = requested.indices.first(where: { requested[$0] == 0 && $0 >= r }) {
            throw TensorOpSupport.shapeError(node, "shape \(requested) copies dimension \(i) of a rank-\(r) input")
        }
    }

    /// The concrete output shape.
    static func resolve(_ requested: [Int], input: [Int], allowZero: Bool, _ node: Node) throws -> [Int] {
        try check(requested, allowZero: allowZero, inputRank: input.count, node)
        var out = requested
        for i in out.indices where out[i] == 0 && !allowZero { out[i] = input[i] }
        // The input shape may be a hostile declared type: its product can overflow.
        let total = try TensorOpSupport.checkedCount(input, node)
        if let i = out.firstIndex(of: -1) {
            var others = out
            others.remove(at: i)
            let known = try TensorOpSupport.checkedCount(others, node)
            guard known != 0, total % known == 0 else {
                throw TensorOpSupport.shapeError(node, "cannot reshape \(input) to \(requested)")
            }
            out[i] = total / known
        }
        guard try TensorOpSupport.checkedCount(out, node) == total else {
            throw TensorOpSupport.shapeError(node, "cannot reshape \(input) (\(total) elements) to \(requested)")
        }
        return out
    }

    /// The requested shape from the constant input or attribute; nil when not known.
    static func requested(_ context: OperatorContext) throws -> [Int]? {
        if TensorOpSupport.hasInput(context.node, 1) {
            return try TensorOpSupport.constantIntegers(context, 1, "shape")
        }
        guard let s = try TensorOpSupport.ints(context.node, "shape") else {
            throw TensorOpSupport.shapeError(context.node, "Reshape needs a shape input")
        }
        return s
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        guard (1...2).contains(context.inputTypes.count) else {
            throw TensorOpSupport.shapeError(node, "Reshape takes 2 inputs, got \(context.inputTypes.count)")
        }
        let t = try context.inputType(0)
        let allowZero = try allowZero(node)
        guard let req = try requested(context) else {
            if let k = TensorOpSupport.staticLength(context, 1) {
                return [TensorType(dtype: t.dtype, shape: Array(repeating: .unknown, count: k))]
            }
            return [TensorType(dtype: t.dtype, shape: nil)]
        }
        guard let input = t.shape else {
            try check(req, allowZero: allowZero, inputRank: nil, node)
            let dims: [Dim] = req.map { $0 > 0 || ($0 == 0 && allowZero) ? .fixed($0) : .unknown }
            return [TensorType(dtype: t.dtype, shape: dims)]
        }
        if let concrete = t.concreteShape {
            return [TensorType(dtype: t.dtype, dims: try resolve(req, input: concrete, allowZero: allowZero, node))]
        }
        try check(req, allowZero: allowZero, inputRank: input.count, node)
        var out: [Dim] = req.enumerated().map { i, v in
            v == 0 && !allowZero ? input[i] : (v == -1 ? .unknown : .fixed(v))
        }
        guard let inferIndex = req.firstIndex(of: -1) else { return [TensorType(dtype: t.dtype, shape: out)] }
        // Solve -1 symbolically: cancel the symbols copied by 0 against the input's symbols.
        var inSymbols: [String] = [], outSymbols: [String] = []
        for d in input { if case .symbolic(let s) = d { inSymbols.append(s) } }
        for (i, d) in out.enumerated() where i != inferIndex { if case .symbolic(let s) = d { outSymbols.append(s) } }
        let inProduct = TensorOpSupport.product(ArraySlice(input.map { $0.value.map(Dim.fixed) ?? .fixed(1) }))
        let outProduct = TensorOpSupport.product(ArraySlice(out.enumerated().filter { $0.offset != inferIndex }
            .map { $0.element.value.map(Dim.fixed) ?? .fixed(1) }))
        guard let inFixed = inProduct.value, let outFixed = outProduct.value else {
            return [TensorType(dtype: t.dtype, shape: out)]
        }
        var remaining = inSymbols
        var solvable = !outSymbols.contains("") && !inSymbols.contains("")
        for s in outSymbols {
            if let j = remaining.firstIndex(of: s) { remaining.remove(at: j) } else { solvable = false }
        }
        if solvable && outFixed != 0 {
            if remaining.isEmpty {
                guard inFixed % outFixed == 0 else {
                    throw TensorOpSupport.shapeError(node, "cannot reshape \(input) to \(req)")
                }
                out[inferIndex] = .fixed(inFixed / outFixed)
            } else if remaining.count == 1 && inFixed == outFixed {
                out[inferIndex] = .symbolic(remaining[0])
            }
        }
        return [TensorType(dtype: t.dtype, shape: out)]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 1, max: 2)
        let x = try TensorOpSupport.required(inputs, 0, node)
        let req: [Int]
        if let s = TensorOpSupport.optional(inputs, 1) {
            req = try TensorOpSupport.integers1D(s, node, "shape")
        } else if let s = try TensorOpSupport.ints(node, "shape") {
            req = s
        } else {
            throw TensorOpSupport.shapeError(node, "Reshape needs a shape input")
        }
        return [x.reshaped(try resolve(req, input: x.shape, allowZero: try allowZero(node), node))]
    }
}

/// Flatten(input) -> 2-D [prod(d[0..<axis]), prod(d[axis...])]; axis in [-r, r], default 1.
public enum FlattenOperator: Operator {
    public static let opType = "Flatten"

    static func axis(_ node: Node, rank: Int) throws -> Int {
        let axis = try TensorOpSupport.int(node, "axis", default: 1)
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a <= rank else {
            throw TensorOpSupport.attributeError(node, "axis \(axis) is out of range for rank \(rank)")
        }
        return a
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let t = try context.inputType(0)
        guard let shape = t.shape else { return [TensorType(dtype: t.dtype, shape: [.unknown, .unknown])] }
        let a = try axis(context.node, rank: shape.count)
        return [TensorType(dtype: t.dtype, shape: [TensorOpSupport.product(shape[..<a]), TensorOpSupport.product(shape[a...])])]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 1, max: 1)
        let x = try TensorOpSupport.required(inputs, 0, node)
        let a = try axis(node, rank: x.rank)
        return [x.reshaped([x.shape[..<a].reduce(1, *), x.shape[a...].reduce(1, *)])]
    }
}

/// Squeeze(data[, axes]): axes from the input (opset 13+) or attribute (before). Without axes,
/// every dimension of size 1 is removed. A listed axis whose size is not 1 is an error.
public enum SqueezeOperator: Operator {
    public static let opType = "Squeeze"

    static func axes(_ node: Node, given: Tensor?) throws -> [Int]? {
        if let given { return try TensorOpSupport.integers1D(given, node, "axes") }
        return try TensorOpSupport.ints(node, "axes")
    }

    static func normalize(_ axes: [Int], rank: Int, _ node: Node) throws -> Set<Int> {
        let n = try axes.map { try OperatorSupport.normalizeAxis($0, rank: rank, node: node.displayName) }
        guard Set(n).count == n.count else { throw TensorOpSupport.attributeError(node, "axes \(axes) repeat an axis") }
        return Set(n)
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        let t = try context.inputType(0)
        let axes: [Int]?
        if TensorOpSupport.hasInput(node, 1) {
            guard let a = try TensorOpSupport.constantIntegers(context, 1, "axes") else {
                if let r = t.rank, let k = TensorOpSupport.staticLength(context, 1), k <= r {
                    return [TensorType(dtype: t.dtype, shape: Array(repeating: .unknown, count: r - k))]
                }
                return [TensorType(dtype: t.dtype, shape: nil)]
            }
            axes = a
        } else {
            axes = try TensorOpSupport.ints(node, "axes")
        }
        guard let shape = t.shape else { return [TensorType(dtype: t.dtype, shape: nil)] }
        guard let axes, !axes.isEmpty else {
            // Which symbolic dims are 1 is not known before run time.
            if shape.contains(where: { $0.value == nil }) { return [TensorType(dtype: t.dtype, shape: nil)] }
            return [TensorType(dtype: t.dtype, shape: shape.filter { $0 != .fixed(1) })]
        }
        let set = try normalize(axes, rank: shape.count, node)
        for a in set.sorted() {
            if let v = shape[a].value, v != 1 {
                throw TensorOpSupport.shapeError(node, "cannot squeeze axis \(a) of size \(v)")
            }
        }
        return [TensorType(dtype: t.dtype, shape: shape.enumerated().filter { !set.contains($0.offset) }.map(\.element))]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 1, max: 2)
        let x = try TensorOpSupport.required(inputs, 0, node)
        guard let axes = try axes(node, given: TensorOpSupport.optional(inputs, 1)), !axes.isEmpty else {
            return [x.reshaped(x.shape.filter { $0 != 1 })]
        }
        let set = try normalize(axes, rank: x.rank, node)
        for a in set.sorted() where x.shape[a] != 1 {
            throw TensorOpSupport.shapeError(node, "cannot squeeze axis \(a) of size \(x.shape[a])")
        }
        return [x.reshaped(x.shape.enumerated().filter { !set.contains($0.offset) }.map(\.element))]
    }
}

/// Unsqueeze(data[, axes]): axes (required) from the input (opset 13+) or attribute (before),
/// each in [-r', r'-1] for the output rank r' = r + len(axes).
public enum UnsqueezeOperator: Operator {
    public static let opType = "Unsqueeze"

    static func outputShape<D>(_ input: [D], _ axes: [Int], one: D, _ node: Node) throws -> [D] {
        let outRank = input.count + axes.count
        let n = try axes.map { try OperatorSupport.normalizeAxis($0, rank: outRank, node: node.displayName) }
        let set = Set(n)
        guard set.count == n.count else { throw TensorOpSupport.attributeError(node, "axes \(axes) repeat an axis") }
        var out: [D] = []
        var next = input.makeIterator()
        for i in 0..<outRank { out.append(set.contains(i) ? one : next.next()!) }
        return out
    }

    static func axes(_ node: Node, given: Tensor?) throws -> [Int] {
        if let given { return try TensorOpSupport.integers1D(given, node, "axes") }
        guard let a = try TensorOpSupport.ints(node, "axes") else {
            throw TensorOpSupport.attributeError(node, "Unsqueeze needs axes")
        }
        return a
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        let t = try context.inputType(0)
        let axes: [Int]
        if TensorOpSupport.hasInput(node, 1) {
            guard let a = try TensorOpSupport.constantIntegers(context, 1, "axes") else {
                if let r = t.rank, let k = TensorOpSupport.staticLength(context, 1) {
                    return [TensorType(dtype: t.dtype, shape: Array(repeating: .unknown, count: r + k))]
                }
                return [TensorType(dtype: t.dtype, shape: nil)]
            }
            axes = a
        } else {
            axes = try self.axes(node, given: nil)
        }
        guard let shape = t.shape else { return [TensorType(dtype: t.dtype, shape: nil)] }
        return [TensorType(dtype: t.dtype, shape: try outputShape(shape, axes, one: Dim.fixed(1), node))]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 1, max: 2)
        let x = try TensorOpSupport.required(inputs, 0, node)
        let axes = try axes(node, given: TensorOpSupport.optional(inputs, 1))
        return [x.reshaped(try outputShape(x.shape, axes, one: 1, node))]
    }
}
