import Testing
import MegaFSGraph
@testable import MegaFSRuntime

// The memory plan never lets a buffer be overwritten while a later node still needs it:
// every intermediate value, captured when it is produced, equals the reference evaluator's.

private func expectEveryValueMatches(_ b: GraphBuilder, fusion: Bool = false, _ what: String,
                                     sourceLocation: SourceLocation = #_sourceLocation) throws -> InferenceSession {
    let session = try InferenceSession(graph: b.graph, options: SessionOptions(threads: 2, enableFusion: fusion))
    let (outputs, values) = try session.runCapturingValues(b.feeds)
    let want = try referenceValues(b.graph, b.feeds)
    // Every node the plan ran (dead nodes are gone, fused chains keep their last value's name).
    let planned = try #require(session.plannedGraph)
    #expect(planned.nodes.count > 0)
    for node in planned.nodes {
        for o in node.outputs where !o.isEmpty {
            let g = try #require(values[o], "\(what): \(o) not captured", sourceLocation: sourceLocation)
            let w = try #require(want[o], "\(what): \(o) not in the reference", sourceLocation: sourceLocation)
            expectClose(g, w, relative: 1e-5, "\(what): value \(o) of \(node.opType)", sourceLocation: sourceLocation)
        }
    }
    for o in b.graph.outputs {
        expectClose(try #require(outputs[o.name]), try #require(want[o.name]), relative: 1e-5, "\(what): output \(o.name)",
                    sourceLocation: sourceLocation)
    }
    return session
}

@Test func fanOutGraphKeepsLiveValues() throws {
    var rng = Rng(30)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([2, 3, 8, 8]))
    let a = b.node("Relu", [x])                       // a: read by four nodes
    let s = b.node("Sigmoid", [a])
    let t = b.node("Tanh", [a])
    let v = b.node("Reshape", [a, b.ints([2, 192])])  // a view of a
    let st = b.node("Add", [s, t])
    let m = b.node("Mul", [st, a])
    let r = b.node("Reshape", [m, b.ints([2, 192])])
    let d = b.node("Sub", [r, v])                     // reads the view of a after a's other readers
    let e = b.node("Neg", [d])
    let f = b.node("Exp", [b.node("Reshape", [e, b.ints([2, 3, 8, 8])])])
    let g = b.node("Add", [f, a])
    b.output(g)
    b.output(st)
    _ = try expectEveryValueMatches(b, "fan-out")
}

@Test func inPlaceChainReusesOneBuffer() throws {
    var rng = Rng(31)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([1, 8, 64, 64]))
    var cur = b.node("Relu", [x])
    for op in ["Sigmoid", "Tanh", "Neg", "Abs", "Sqrt", "Relu", "Exp"] { cur = b.node(op, [cur]) }
    let y = b.node("Add", [cur, b.constant(rng.tensor([8, 1, 1]))])
    b.output(y)
    let s = try expectEveryValueMatches(b, "in-place chain")
    let summary = try #require(s.lastPlanSummary)
    // Eight 128 kB intermediates, one buffer: each op writes over its dead input.
    #expect(summary.arenaBytes == 8 * 64 * 64 * 4, "arena \(summary.arenaBytes), unshared \(summary.unsharedBytes)")
    #expect(summary.unsharedBytes == 8 * summary.arenaBytes)
}

@Test func arenaIntervalsNeverOverlapWhileLive() throws {
    // A residual network's shape: every value read far later than it is produced.
    var rng = Rng(32)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([1, 4, 10, 10]))
    var skip = x
    var cur = x
    for i in 0..<4 {
        let c1 = b.node("Conv", [cur, b.constant(rng.tensor([4, 4, 3, 3], -0.3, 0.3)), b.constant(rng.tensor([4]))], ["pads": .ints([1, 1, 1, 1])])
        let r1 = b.node("Relu", [c1])
        let c2 = b.node("Conv", [r1, b.constant(rng.tensor([4, 4, 1, 1], -0.5, 0.5))])
        let sum = b.node("Add", [c2, skip])
        cur = b.node("Relu", [sum])
        if i % 2 == 1 { skip = cur }
    }
    let pooled = b.node("MaxPool", [cur], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])])
    b.output(pooled)
    for fusion in [false, true] {
        let s = try expectEveryValueMatches(b, fusion: fusion, "residual fusion=\(fusion)")
        let summary = try #require(s.lastPlanSummary)
        #expect(summary.arenaBytes < summary.unsharedBytes)
    }
}

@Test func randomGraphsMatchReferenceNodeByNode() throws {
    var rng = Rng(33)
    let unary = ["Relu", "Sigmoid", "Tanh", "Neg", "Abs"]
    let binary = ["Add", "Sub", "Mul", "Max"]
    for trial in 0..<25 {
        var b = GraphBuilder()
        var pool: [String] = [b.input("x", rng.tensor([2, 3, 4, 5])), b.input("y", rng.tensor([2, 3, 4, 5]))]
        for _ in 0..<18 {
            let pick = rng.int(0...9)
            let a = pool[rng.int(max(0, pool.count - 6)...(pool.count - 1))]
            let c = pool[rng.int(0...(pool.count - 1))]
            switch pick {
            case 0...3: pool.append(b.node(unary[rng.int(0...unary.count - 1)], [a]))
            case 4...6: pool.append(b.node(binary[rng.int(0...binary.count - 1)], [a, c]))
            case 7:
                let v = b.node("Reshape", [a, b.ints([6, 20])])
                pool.append(b.node("Reshape", [b.node("Sigmoid", [v]), b.ints([2, 3, 4, 5])]))
            case 8:
                let cat = b.node("Concat", [a, c], ["axis": .int(1)])
                pool.append(b.node("Slice", [cat, b.ints([1]), b.ints([4]), b.ints([1]), b.ints([1])]))
            default:
                pool.append(b.node("Transpose", [b.node("Transpose", [a], ["perm": .ints([0, 2, 1, 3])])], ["perm": .ints([0, 2, 1, 3])]))
            }
        }
        b.output(pool.last!)
        b.output(pool[pool.count / 2])
        _ = try expectEveryValueMatches(b, "random graph \(trial)")
    }
}
