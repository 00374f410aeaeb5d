import Foundation
import Testing
@testable import MegaFSGraph

/// Small helpers for the tensor operator tests.
enum TensorTestSupport {
    static func node(_ op: any Operator.Type, inputs: Int, outputs: Int = 1, attrs: [String: Attribute] = [:],
                     omitted: Set<Int> = [], name: String = "n") -> Node {
        Node(name: name, opType: op.opType, inputs: (0..<inputs).map { omitted.contains($0) ? "" : "in\($0)" },
             outputs: (0..<outputs).map { "out\($0)" }, attributes: attrs)
    }

    /// Runs the reference kernel of `op` on `inputs` (nil = omitted optional input).
    static func run(_ op: any Operator.Type, _ inputs: [Tensor?], _ attrs: [String: Attribute] = [:],
                    opset: Int = 17, outputs: Int = 1) throws -> [Tensor] {
        let n = node(op, inputs: inputs.count, outputs: outputs, attrs: attrs,
                     omitted: Set(inputs.indices.filter { inputs[$0] == nil }))
        return try op.evaluate(n, inputs: inputs, opset: opset)
    }

    static func run1(_ op: any Operator.Type, _ inputs: [Tensor?], _ attrs: [String: Attribute] = [:],
                     opset: Int = 17) throws -> Tensor {
        let r = try run(op, inputs, attrs, opset: opset)
        guard r.count == 1 else { throw GraphError.invalidGraph("expected one output, got \(r.count)") }
        return r[0]
    }

    /// Runs the shape rule of `op`; `constants` are aligned with `types` (missing = not constant).
    static func infer(_ op: any Operator.Type, _ types: [TensorType?], constants: [Int: Tensor] = [:],
                      _ attrs: [String: Attribute] = [:], opset: Int = 17, outputs: Int = 1) throws -> [TensorType] {
        let n = node(op, inputs: types.count, outputs: outputs, attrs: attrs,
                     omitted: Set(types.indices.filter { types[$0] == nil && constants[$0] == nil }))
        let ts = types.enumerated().map { i, t in t ?? constants[i]?.type }
        return try op.inferTypes(OperatorContext(node: n, inputTypes: ts, constantInputs: types.indices.map { constants[$0] },
                                                 opset: opset))
    }

    static func f32(_ dims: [Dim]) -> TensorType { TensorType(dtype: .float32, shape: dims) }
    static func f32(_ dims: Int...) -> TensorType { TensorType(dtype: .float32, dims: dims) }
    static let N = Dim.symbolic("N")
    static let H = Dim.symbolic("H")
    static let W = Dim.symbolic("W")

    static func floats(_ values: [Float], _ shape: [Int]) -> Tensor { Tensor(values, shape: shape) }
    static func i64(_ values: [Int64], _ shape: [Int]? = nil) -> Tensor { Tensor(values, shape: shape ?? [values.count]) }
    static func bools(_ values: [Bool], _ shape: [Int]? = nil) -> Tensor { Tensor(values, shape: shape ?? [values.count]) }

    /// Expects `body` to throw a GraphError whose message names node "n" and contains `fragment`.
    static func expectGraphError(_ fragment: String, sourceLocation: SourceLocation = #_sourceLocation,
                                 _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected an error containing '\(fragment)'", sourceLocation: sourceLocation)
        } catch let error as GraphError {
            let text = error.description
            #expect(text.contains("node n"), "error does not name the node: \(text)", sourceLocation: sourceLocation)
            #expect(text.contains(fragment), "error '\(text)' does not mention '\(fragment)'", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }
}

@Suite("Tensor operators: shared loops and registry")
struct TensorSupportTests {
    @Test func coalesceMergesContiguousAndBroadcastDims() {
        // [2,3,4] contiguous + operand broadcast over the last two dims
        let (shape, strides) = TensorOpSupport.coalesce([2, 3, 4], [[12, 4, 1], [1, 0, 0]])
        #expect(shape == [2, 12])
        #expect(strides == [[12, 1], [1, 0]])
        // size-1 dims vanish; a fully contiguous walk becomes one run
        let (s2, st2) = TensorOpSupport.coalesce([1, 5, 1, 6], [[30, 6, 6, 1]])
        #expect(s2 == [30] && st2 == [[1]])
    }

    @Test func forEachRunVisitsEveryElementOnce() {
        var seen: [Int] = []
        TensorOpSupport.forEachRun(shape: [2, 3], strides: [[3, 1], [1, 2]]) { off, n, inner in
            for i in 0..<n { seen.append(off[1] + i * inner[1]) }
        }
        #expect(seen == [0, 2, 4, 1, 3, 5]) // a transposed walk of a [3,2] tensor
        var calls = 0
        TensorOpSupport.forEachRun(shape: [], strides: [[]]) { _, n, _ in calls += n }
        #expect(calls == 1) // a scalar is one element
        TensorOpSupport.forEachRun(shape: [3, 0], strides: [[0, 1]]) { _, _, _ in calls += 100 }
        #expect(calls == 1) // empty shapes visit nothing
    }

    @Test func truncationNeverTraps() {
        #expect(TensorOpSupport.truncate(-2.7, to: Int64.self) == -2)
        #expect(TensorOpSupport.truncate(.nan, to: Int64.self) == Int64.min)
        #expect(TensorOpSupport.truncate(1e30, to: Int32.self) == Int32.min)
        #expect(TensorOpSupport.truncate(300.5, to: UInt8.self) == 44)
        #expect(TensorOpSupport.truncate(-1.5, to: UInt8.self) == 255)
    }

    @Test func everyRequiredOperatorIsRegistered() {
        let required = """
            Relu LeakyRelu Sigmoid Tanh Add Sub Mul Div Pow Sqrt Reciprocal Neg Abs Exp Log Erf Floor Ceil Clip \
            Min Max Equal Less Greater Not And Or Where ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd \
            ReduceSumSquare Softmax Reshape Flatten Squeeze Unsqueeze Transpose Concat Slice Gather Split Expand \
            Tile Shape Size Constant ConstantOfShape Cast Identity Range Dropout
            """.split(separator: " ").map(String.init)
        for op in required {
            #expect(OperatorRegistry.tensorOperators.contains { $0.opType == op }, "\(op) is missing")
        }
        let types = OperatorRegistry.tensorOperators.map { $0.opType }
        #expect(Set(types).count == types.count)
    }
}

/// The model reader's slab (`TensorSlab`): the tensors marked for it get 64-byte aligned,
/// disjoint, zeroed ranges of one 2 MB aligned mapping, the others their own allocations; a
/// tensor dropped early gives its pages back without touching its neighbours' bytes.
@Test func slabbedStoragesAreDisjointAlignedAndOutliveTheirNeighbours() {
    let counts = [100_000, 3, 70_000, 0, 1 << 20, 4096, 65_536]
    let inSlab = [true, false, true, true, true, false, true]
    var storages = TensorStorage.slabbed(byteCounts: counts, inSlab: inSlab)
    #expect(storages.map(\.byteCount) == counts)
    let slabbed = storages.indices.filter { inSlab[$0] }
    #expect(Int(bitPattern: storages[slabbed[0]].pointer) % (2 << 20) == 0, "the slab starts on a huge page")
    for i in storages.indices {
        #expect(Int(bitPattern: storages[i].pointer) % TensorStorage.alignment == 0, "storage \(i)")
        #expect(storages[i].bytes.allSatisfy { $0 == 0 }, "storage \(i) starts zeroed")
        storages[i].mutableBytes.initializeMemory(as: UInt8.self, repeating: UInt8(i + 1))
    }
    // Ranges of slab members are disjoint and in order.
    for (a, b) in zip(slabbed, slabbed.dropFirst()) {
        #expect(Int(bitPattern: storages[a].pointer) + counts[a] <= Int(bitPattern: storages[b].pointer))
    }
    // Drop the 1 MB member: its neighbours keep their bytes.
    storages[4] = TensorStorage(byteCount: 1)
    for i in storages.indices where i != 4 {
        #expect(storages[i].bytes.allSatisfy { $0 == UInt8(i + 1) }, "storage \(i) after its neighbour was freed")
    }
}
