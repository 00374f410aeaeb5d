import Foundation

/// Helpers shared by the tensor operators (Operators/Tensor/): attribute and input access that
/// throws `GraphError` naming the node, strided loops with broadcasting, dtype plumbing.
enum TensorOpSupport {
    // MARK: - Errors

    static func attributeError(_ node: Node, _ message: String) -> GraphError {
        .invalidAttribute(node: node.displayName, message)
    }

    static func shapeError(_ node: Node, _ message: String) -> GraphError {
        .shapeMismatch(node: node.displayName, message)
    }

    // MARK: - Attributes (absent -> nil; present with the wrong kind -> error)

    static func int(_ node: Node, _ key: String) throws -> Int? {
        guard let a = node.attributes[key] else { return nil }
        if case .int(let v) = a { return v }
        throw attributeError(node, "attribute '\(key)' must be an int, not \(a)")
    }

    static func int(_ node: Node, _ key: String, default value: Int) throws -> Int {
        try int(node, key) ?? value
    }

    static func ints(_ node: Node, _ key: String) throws -> [Int]? {
        guard let a = node.attributes[key] else { return nil }
        if case .ints(let v) = a { return v }
        throw attributeError(node, "attribute '\(key)' must be a list of ints, not \(a)")
    }

    static func float(_ node: Node, _ key: String) throws -> Float? {
        guard let a = node.attributes[key] else { return nil }
        switch a {
        case .float(let v): return v
        case .int(let v): return Float(v)
        default: throw attributeError(node, "attribute '\(key)' must be a float, not \(a)")
        }
    }

    static func floats(_ node: Node, _ key: String) throws -> [Float]? {
        guard let a = node.attributes[key] else { return nil }
        switch a {
        case .floats(let v): return v
        case .ints(let v): return v.map { Float($0) }
        default: throw attributeError(node, "attribute '\(key)' must be a list of floats, not \(a)")
        }
    }

    static func tensor(_ node: Node, _ key: String) throws -> Tensor? {
        guard let a = node.attributes[key] else { return nil }
        if case .tensor(let v) = a { return v }
        throw attributeError(node, "attribute '\(key)' must be a tensor, not \(a)")
    }

    // MARK: - Inputs

    /// Whether the node names input `index` (not omitted).
    static func hasInput(_ node: Node, _ index: Int) -> Bool {
        index < node.inputs.count && !node.inputs[index].isEmpty
    }

    static func checkInputCount(_ node: Node, _ inputs: [Tensor?], min: Int, max: Int) throws {
        guard inputs.count >= min && inputs.count <= max else {
            let expected = min == max ? "\(min)" : max == Int.max ? "at least \(min)" : "\(min) to \(max)"
            throw shapeError(node, "\(node.opType) takes \(expected) inputs, got \(inputs.count)")
        }
    }

    static func required(_ inputs: [Tensor?], _ index: Int, _ node: Node) throws -> Tensor {
        guard index < inputs.count, let t = inputs[index] else {
            throw shapeError(node, "required input \(index) of \(node.opType) is missing")
        }
        return t
    }

    static func optional(_ inputs: [Tensor?], _ index: Int) -> Tensor? {
        index < inputs.count ? inputs[index] : nil
    }

    /// An integer list (shape, axes, starts, repeats...) from an int64/int32 tensor.
    static func integers(_ t: Tensor, _ node: Node, _ what: String) throws -> [Int] {
        switch t.dtype {
        case .int64: return t.elements(as: Int64.self).map { Int($0) }
        case .int32: return t.elements(as: Int32.self).map { Int($0) }
        default: throw shapeError(node, "\(what) must be int64, not \(t.dtype.name)")
        }
    }

    /// A scalar or 1-element integer list input.
    static func integers1D(_ t: Tensor, _ node: Node, _ what: String) throws -> [Int] {
        guard t.rank <= 1 else { throw shapeError(node, "\(what) must be 1-D, got shape \(t.shape)") }
        return try integers(t, node, what)
    }

    /// The type of input `index` when given and known.
    static func optionalType(_ context: OperatorContext, _ index: Int) -> TensorType? {
        index < context.inputTypes.count ? context.inputTypes[index] : nil
    }

    /// The value of input `index` when it is given and constant.
    static func constant(_ context: OperatorContext, _ index: Int) -> Tensor? {
        guard hasInput(context.node, index), index < context.constantInputs.count else { return nil }
        return context.constantInputs[index]
    }

    static func constantIntegers(_ context: OperatorContext, _ index: Int, _ what: String) throws -> [Int]? {
        guard let t = constant(context, index) else { return nil }
        return try integers1D(t, context.node, what)
    }

    /// The static length of a 1-D input (e.g. a non-constant shape tensor of type int64[4]).
    static func staticLength(_ context: OperatorContext, _ index: Int) -> Int? {
        guard let t = optionalType(context, index), let s = t.shape, s.count == 1 else { return nil }
        return s[0].value
    }

    /// Largest element count a shape read from a model may have (larger is treated as corrupt):
    /// 2^34, the importer's and the model file's limit per tensor (docs/limits.md).
    static let maxElements = 1 << 34

    /// Element count of a shape that comes from model data (Reshape/Expand/ConstantOfShape/Tile
    /// targets): throws instead of trapping on negative dims or overflow.
    static func checkedCount(_ shape: [Int], _ node: Node) throws -> Int {
        if let bad = shape.first(where: { $0 < 0 }) {
            throw shapeError(node, "negative dimension \(bad) in shape \(shape)")
        }
        if shape.contains(0) { return 0 }
        var count = 1
        for d in shape {
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, p <= maxElements else { throw shapeError(node, "shape \(shape) is too large") }
            count = p
        }
        return count
    }

    /// Product of dims: fixed if all fixed, the symbol if exactly one symbolic and the rest 1.
    static func product(_ dims: ArraySlice<Dim>) -> Dim {
        var p = 1
        var symbol: Dim?
        for d in dims {
            if let v = d.value {
                let (q, overflow) = p.multipliedReportingOverflow(by: v)
                if overflow { return .unknown }
                p = q
            } else {
                if symbol != nil { return p == 0 ? .fixed(0) : .unknown }
                symbol = d
            }
        }
        if let symbol { return p == 0 ? .fixed(0) : (p == 1 ? symbol : .unknown) }
        return .fixed(p)
    }

    /// Merges two dims that must be equal (fixed wins; different fixed values throw).
    static func unify(_ a: Dim, _ b: Dim, _ node: Node, _ what: String) throws -> Dim {
        if a == b { return a }
        switch (a.value, b.value) {
        case (let x?, let y?):
            throw shapeError(node, "\(what): dimensions \(x) and \(y) differ")
        case (_?, nil): return a
        case (nil, _?): return b
        default: return .unknown
        }
    }

    // MARK: - Dtypes

    static func requireDType(_ t: Tensor, _ allowed: Set<DType>, _ node: Node, _ what: String = "input") throws {
        guard allowed.contains(t.dtype) else {
            throw shapeError(node, "\(node.opType) does not support \(what) of type \(t.dtype.name) (supported: \(allowed.map(\.name).sorted().joined(separator: ", ")))")
        }
    }

    static func requireDType(_ t: TensorType, _ allowed: Set<DType>, _ node: Node, _ what: String = "input") throws {
        guard allowed.contains(t.dtype) else {
            throw shapeError(node, "\(node.opType) does not support \(what) of type \(t.dtype.name) (supported: \(allowed.map(\.name).sorted().joined(separator: ", ")))")
        }
    }

    static let numeric: Set<DType> = [.float32, .float16, .int64, .int32, .int8, .uint8]
    static let floating: Set<DType> = [.float32, .float16]
    static let all: Set<DType> = Set(DType.allCases)

    static func dtype(onnxCode code: Int, _ node: Node) throws -> DType {
        guard let c = Int32(exactly: code), let t = DType(rawValue: c) else {
            throw attributeError(node, "element type \(DType.onnxName(code: Int32(truncatingIfNeeded: code))) is not supported (supported: float32, float16, int64, int32, int8, uint8, bool)")
        }
        return t
    }

    static func typedPointer<T>(_ t: Tensor, _: T.Type) -> UnsafeMutablePointer<T> {
        precondition(MemoryLayout<T>.stride == t.dtype.byteSize)
        return t.storage.pointer.bindMemory(to: T.self, capacity: max(t.elementCount, 1))
    }

    /// float16 -> float32 (other dtypes are returned unchanged).
    static func toFloat32(_ t: Tensor) -> Tensor {
        guard t.dtype == .float16 else { return t }
        let out = Tensor(zeros: .float32, shape: t.shape)
        let s = typedPointer(t, UInt16.self), d = typedPointer(out, Float.self)
        for i in 0..<t.elementCount { d[i] = Float(Float16(bitPattern: s[i])) }
        return out
    }

    /// float32 -> float16, rounding to nearest even.
    static func toFloat16(_ t: Tensor) -> Tensor {
        precondition(t.dtype == .float32)
        let out = Tensor(zeros: .float16, shape: t.shape)
        let s = typedPointer(t, Float.self), d = typedPointer(out, UInt16.self)
        for i in 0..<t.elementCount { d[i] = Float16(s[i]).bitPattern }
        return out
    }

    /// Runs a float32 kernel on a float32 or float16 tensor (float16 goes through float32).
    @inline(__always)
    static func viaFloat32(_ t: Tensor, _ body: (Tensor) throws -> Tensor) rethrows -> Tensor {
        if t.dtype == .float16 { return toFloat16(try body(toFloat32(t))) }
        return try body(t)
    }

    /// Double -> integer truncating toward zero, without trapping: NaN and out-of-range values
    /// give `T.min` for 32/64-bit types (the x86 "integer indefinite" of cvttss2si) and wrap
    /// through Int32 for narrower types (as C casts compile on x86).
    @inline(__always)
    static func truncate<T: FixedWidthInteger>(_ x: Double, to: T.Type) -> T {
        if T.bitWidth >= 32 {
            if x.isNaN || x >= Double(T.max) + 1 || x < Double(T.min) {
                return T.bitWidth == 32 && !T.isSigned ? 0 : T.min
            }
            return T(x.rounded(.towardZero))
        }
        if x.isNaN || x >= 2147483648.0 || x < -2147483648.0 { return T(truncatingIfNeeded: Int32.min) }
        return T(truncatingIfNeeded: Int32(x.rounded(.towardZero)))
    }

    // MARK: - Strided loops

    static func contiguousStrides(_ shape: [Int]) -> [Int] { OperatorSupport.strides(shape) }

    /// Element strides that read `shape` (right-aligned) broadcast to `outShape` (0 on broadcast dims).
    static func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
        let pad = outShape.count - shape.count
        let s = contiguousStrides(shape)
        return (0..<outShape.count).map { i in
            i < pad ? 0 : (shape[i - pad] == 1 && outShape[i] != 1 ? 0 : s[i - pad])
        }
    }

    /// Drops size-1 dims and merges adjacent dims that every operand walks contiguously.
    static func coalesce(_ shape: [Int], _ strides: [[Int]]) -> (shape: [Int], strides: [[Int]]) {
        var outShape: [Int] = []
        var outStrides: [[Int]] = Array(repeating: [], count: strides.count)
        for d in 0..<shape.count where shape[d] != 1 {
            if let last = outShape.last,
               (0..<strides.count).allSatisfy({ outStrides[$0].last! == strides[$0][d] * shape[d] }) {
                outShape[outShape.count - 1] = last * shape[d]
                for k in 0..<strides.count { outStrides[k][outStrides[k].count - 1] = strides[k][d] }
            } else {
                outShape.append(shape[d])
                for k in 0..<strides.count { outStrides[k].append(strides[k][d]) }
            }
        }
        return (outShape, outStrides)
    }

    /// Walks `shape` with one element stride vector per operand, calling `body` once per run
    /// along the (coalesced) innermost dimension with each operand's starting offset, the run
    /// length and each operand's inner stride. Nothing is called for an empty shape.
    static func forEachRun(shape: [Int], strides: [[Int]], bases: [Int]? = nil,
                           _ body: (_ offsets: UnsafeBufferPointer<Int>, _ count: Int,
                                    _ inner: UnsafeBufferPointer<Int>) throws -> Void) rethrows {
        let n = strides.count
        if shape.contains(0) { return }
        let (cs, cst) = coalesce(shape, strides)
        var offsets = bases ?? Array(repeating: 0, count: n)
        let r = cs.count
        let inner = r == 0 ? Array(repeating: 0, count: n) : cst.map { $0[r - 1] }
        let innerCount = r == 0 ? 1 : cs[r - 1]
        let outerRank = max(r - 1, 0)
        // Flattened [dim][operand] strides for the outer dims.
        var outerStrides = [Int](repeating: 0, count: outerRank * n)
        for d in 0..<outerRank { for k in 0..<n { outerStrides[d * n + k] = cst[k][d] } }
        var counter = [Int](repeating: 0, count: outerRank)
        try inner.withUnsafeBufferPointer { innerBuf in
            try offsets.withUnsafeMutableBufferPointer { off in
                while true {
                    try body(UnsafeBufferPointer(off), innerCount, innerBuf)
                    var d = outerRank - 1
                    while d >= 0 {
                        counter[d] += 1
                        for k in 0..<n { off[k] += outerStrides[d * n + k] }
                        if counter[d] < cs[d] { break }
                        for k in 0..<n { off[k] -= outerStrides[d * n + k] * cs[d] }
                        counter[d] = 0
                        d -= 1
                    }
                    if d < 0 { return }
                }
            }
        }
    }

    // MARK: - Elementwise maps

    @inline(__always)
    static func unaryMap<A, R>(_ a: Tensor, _: A.Type, to dtype: DType, _ f: (A) throws -> R) rethrows -> Tensor {
        let out = Tensor(zeros: dtype, shape: a.shape)
        let s = typedPointer(a, A.self), d = typedPointer(out, R.self)
        for i in 0..<a.elementCount { d[i] = try f(s[i]) }
        return out
    }

    /// Broadcasting binary map. The caller has checked the shapes broadcast to `shape`.
    @inline(__always)
    static func binaryMap<A, B, R>(_ a: Tensor, _: A.Type, _ b: Tensor, _: B.Type, shape: [Int], to dtype: DType,
                                   _ f: (A, B) throws -> R) rethrows -> Tensor {
        let out = Tensor(zeros: dtype, shape: shape)
        let pa = typedPointer(a, A.self), pb = typedPointer(b, B.self), po = typedPointer(out, R.self)
        if a.shape == shape && b.shape == shape {
            for i in 0..<out.elementCount { po[i] = try f(pa[i], pb[i]) }
            return out
        }
        try forEachRun(shape: shape, strides: [contiguousStrides(shape), broadcastStrides(a.shape, to: shape),
                                               broadcastStrides(b.shape, to: shape)]) { off, n, inner in
            let o = po + off[0]
            var ia = off[1], ib = off[2]
            let sa = inner[1], sb = inner[2]
            if sa == 1 && sb == 0 {
                let y = pb[ib]
                for i in 0..<n { o[i] = try f(pa[ia + i], y) }
            } else if sa == 0 && sb == 1 {
                let x = pa[ia]
                for i in 0..<n { o[i] = try f(x, pb[ib + i]) }
            } else {
                for i in 0..<n { o[i] = try f(pa[ia], pb[ib]); ia += sa; ib += sb }
            }
        }
        return out
    }

    /// Copies `src` into a new tensor of `outShape`, reading element `i` of the output (in
    /// row-major order over `shape`, which has `outShape`'s element count) at
    /// `base + sum(index[d] * strides[d])` in `src`. Works for every dtype by element width.
    static func stridedCopy(_ src: Tensor, shape: [Int], strides: [Int], base: Int = 0, outShape: [Int]) -> Tensor {
        let out = Tensor(zeros: src.dtype, shape: outShape)
        switch src.dtype.byteSize {
        case 1: stridedCopy(UInt8.self, src, out, shape, strides, base)
        case 2: stridedCopy(UInt16.self, src, out, shape, strides, base)
        case 4: stridedCopy(UInt32.self, src, out, shape, strides, base)
        default: stridedCopy(UInt64.self, src, out, shape, strides, base)
        }
        return out
    }

    private static func stridedCopy<T>(_: T.Type, _ src: Tensor, _ out: Tensor, _ shape: [Int], _ strides: [Int], _ base: Int) {
        let s = typedPointer(src, T.self), d = typedPointer(out, T.self)
        forEachRun(shape: shape, strides: [contiguousStrides(shape), strides], bases: [0, base]) { off, n, inner in
            let o = d + off[0]
            let si = off[1], ss = inner[1]
            if ss == 1 {
                o.update(from: s + si, count: n)
            } else if ss == 0 {
                o.update(repeating: s[si], count: n)
            } else {
                var j = si
                for i in 0..<n { o[i] = s[j]; j += ss }
            }
        }
    }
}
