/// Shared rules used by many operators' shape rules and reference kernels.
public enum OperatorSupport {
    /// ONNX/NumPy multidirectional broadcasting of two concrete shapes.
    public static func broadcast(_ a: [Int], _ b: [Int], node: String = "") throws -> [Int] {
        let rank = max(a.count, b.count)
        let pa = Array(repeating: 1, count: rank - a.count) + a
        let pb = Array(repeating: 1, count: rank - b.count) + b
        return try zip(pa, pb).map { x, y in
            if x == y || y == 1 { return x }
            if x == 1 { return y }
            throw GraphError.shapeMismatch(node: node, "shapes \(a) and \(b) do not broadcast")
        }
    }

    /// Broadcasting on possibly symbolic shapes; unknown where it cannot be decided.
    public static func broadcast(_ a: [Dim], _ b: [Dim], node: String = "") throws -> [Dim] {
        let rank = max(a.count, b.count)
        let pa = Array(repeating: Dim.fixed(1), count: rank - a.count) + a
        let pb = Array(repeating: Dim.fixed(1), count: rank - b.count) + b
        return try zip(pa, pb).map { x, y in
            if x == y || y == .fixed(1) { return x }
            if x == .fixed(1) { return y }
            if case .fixed = x, case .fixed = y {
                throw GraphError.shapeMismatch(node: node, "shapes \(a) and \(b) do not broadcast")
            }
            // One side symbolic: the fixed non-1 side wins if the program is valid.
            if case .fixed = x { return x }
            if case .fixed = y { return y }
            return .unknown
        }
    }

    /// Resolves a possibly negative axis against `rank`; throws naming the node when out of range.
    public static func normalizeAxis(_ axis: Int, rank: Int, node: String = "") throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < rank else {
            throw GraphError.invalidAttribute(node: node, "axis \(axis) is out of range for rank \(rank)")
        }
        return a
    }

    /// Row-major strides of a shape.
    public static func strides(_ shape: [Int]) -> [Int] {
        var s = Array(repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= shape[i]
        }
        return s
    }
}
