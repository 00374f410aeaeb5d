import Foundation
import Testing
import MegaFSGraph
@testable import MegaFSRuntime

enum Paths {
    static let repo: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let fixtures = repo + "/fixtures"
}

/// Deterministic pseudo-random numbers (xorshift), so failures reproduce.
struct Rng {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 0x9E3779B97F4A7C15 | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
    mutating func float(_ lo: Float = -1, _ hi: Float = 1) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }
    mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
    mutating func tensor(_ shape: [Int], _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
        Tensor((0..<shape.reduce(1, *)).map { _ in float(lo, hi) }, shape: shape)
    }
}

struct Comparison: CustomStringConvertible {
    var maxAbsError: Float
    var range: Float
    var cosine: Double
    var at: Int
    var description: String { "max abs error \(maxAbsError) at \(at), range \(range), cosine \(cosine)" }
}

func compare(_ got: Tensor, _ want: Tensor) -> Comparison {
    let g = got.floats, w = want.floats
    var worst: Float = 0, at = 0
    var dot = 0.0, ng = 0.0, nw = 0.0
    for i in 0..<min(g.count, w.count) {
        let e = abs(g[i] - w[i])
        if !(e <= worst) { worst = e; at = i }
        dot += Double(g[i]) * Double(w[i]); ng += Double(g[i]) * Double(g[i]); nw += Double(w[i]) * Double(w[i])
    }
    let range = (w.max() ?? 0) - (w.min() ?? 0)
    let cosine = (ng == 0 && nw == 0) ? 1 : dot / ((ng * nw).squareRoot() + 1e-300)
    return Comparison(maxAbsError: worst, range: range, cosine: cosine, at: at)
}

/// Expects `got` to match `want` within `relative` of the golden range (or of its magnitude
/// when the range is 0).
func expectClose(_ got: Tensor, _ want: Tensor, relative: Float = 1e-4, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.shape == want.shape, "\(what): shape \(got.shape), want \(want.shape)", sourceLocation: sourceLocation)
    guard got.shape == want.shape else { return }
    if !want.dtype.isFloatingPoint {
        #expect(got.dtype == want.dtype && got.int64s == want.int64s, "\(what): values differ", sourceLocation: sourceLocation)
        return
    }
    let c = compare(got, want)
    let scale = c.range > 0 ? c.range : max(want.floats.map { abs($0) }.max() ?? 1, 1)
    #expect(c.maxAbsError <= relative * scale, "\(what): \(c)", sourceLocation: sourceLocation)
}

/// A one-node graph: inputs named in0..., constants as initializers.
func singleNodeGraph(_ node: Node, inputs: [Tensor?], constant: [Bool], opset: Int = 17) -> (Graph, [String: Tensor]) {
    var g = Graph(name: "t", opsets: ["": opset])
    var feeds: [String: Tensor] = [:]
    var n = node
    n.inputs = []
    for (i, t) in inputs.enumerated() {
        guard let t else { n.inputs.append(""); continue }
        let name = "in\(i)"
        n.inputs.append(name)
        if constant[i] { g.initializers[name] = t } else {
            g.inputs.append(ValueInfo(name: name, type: t.type))
            feeds[name] = t
        }
    }
    while n.inputs.last == "" { n.inputs.removeLast() }
    g.nodes = [n]
    g.outputs = n.outputs.map { ValueInfo(name: $0, type: TensorType(dtype: .float32, shape: nil)) }
    return (g, feeds)
}

/// Runs `graph` with every node's reference kernel, node by node: every value by name.
func referenceValues(_ graph: Graph, _ feeds: [String: Tensor]) throws -> [String: Tensor] {
    var values = feeds
    for (k, v) in graph.initializers { values[k] = v }
    for node in graph.nodes {
        let op = try #require(OperatorRegistry.lookup(node.opType))
        let outs = try op.evaluate(node, inputs: node.inputs.map { $0.isEmpty ? nil : values[$0] }, opset: graph.opset)
        for (name, t) in zip(node.outputs, outs) where !name.isEmpty { values[name] = t }
    }
    return values
}

/// Builds small graphs for tests.
struct GraphBuilder {
    var graph: Graph
    var feeds: [String: Tensor] = [:]
    private var counter = 0

    init(opset: Int = 17) { graph = Graph(name: "test", opsets: ["": opset]) }

    mutating func input(_ name: String, _ t: Tensor) -> String {
        graph.inputs.append(ValueInfo(name: name, type: t.type))
        feeds[name] = t
        return name
    }

    mutating func constant(_ t: Tensor, _ hint: String = "c") -> String {
        counter += 1
        let name = "\(hint)\(counter)"
        graph.initializers[name] = t
        return name
    }

    mutating func ints(_ v: [Int]) -> String { constant(Tensor(v.map(Int64.init), shape: [v.count]), "i") }
    mutating func scalar(_ v: Float) -> String { constant(Tensor(scalar: v), "s") }

    @discardableResult
    mutating func node(_ op: String, _ inputs: [String], _ attrs: [String: Attribute] = [:], outputs: Int = 1) -> String {
        counter += 1
        let outs = (0..<outputs).map { "\(op.lowercased())\(counter)_\($0)" }
        graph.nodes.append(Node(name: "\(op)_\(counter)", opType: op, inputs: inputs, outputs: outs, attributes: attrs))
        return outs[0]
    }

    mutating func output(_ name: String) {
        graph.outputs.append(ValueInfo(name: name, type: TensorType(dtype: .float32, shape: nil)))
    }
}

/// Runs a graph through a session (fast kernels, fusion as asked) and through the reference
/// kernels; expects every graph output to match.
@discardableResult
func expectMatchesReference(_ b: GraphBuilder, fusion: Bool = true, relative: Float = 1e-4, conv: ConvAlgorithm? = nil,
                            _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> InferenceSession {
    let session = try InferenceSession(graph: b.graph, options: SessionOptions(threads: 2, enableFusion: fusion, convAlgorithm: conv))
    let got = try session.run(b.feeds)
    let want = try referenceValues(b.graph, b.feeds)
    for o in b.graph.outputs {
        let g = try #require(got[o.name], sourceLocation: sourceLocation)
        let w = try #require(want[o.name], sourceLocation: sourceLocation)
        expectClose(g, w, relative: relative, "\(what) [\(o.name)]", sourceLocation: sourceLocation)
    }
    return session
}
