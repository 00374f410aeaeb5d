import Dispatch
import Foundation
import Testing
@testable import MegaFSGraph
@testable import MegaFSRuntime

// Sessions given one SharedArena run one at a time in a single buffer as large as the largest
// plan's arena, with the outputs of sessions that each have their own.

/// A conv (3x3, pad 1) then a ReLU then another conv: intermediate values live in the arena.
private func twoConvs(_ rng: inout Rng, channels: Int, side: Int) -> GraphBuilder {
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([1, channels, side, side]))
    let w1 = b.constant(rng.tensor([channels, channels, 3, 3], -0.1, 0.1), "w1")
    let w2 = b.constant(rng.tensor([channels, channels, 3, 3], -0.1, 0.1), "w2")
    let attrs: [String: Attribute] = ["pads": .ints([1, 1, 1, 1]), "kernel_shape": .ints([3, 3])]
    let h = b.node("Relu", [b.node("Conv", [x, w1], attrs)])
    b.output(b.node("Conv", [h, w2], attrs))
    return b
}

@Test func sessionsSharingAnArenaMatchSessionsWithTheirOwn() throws {
    var rng = Rng(7301)
    let small = twoConvs(&rng, channels: 4, side: 6), large = twoConvs(&rng, channels: 8, side: 20)
    let shared = SharedArena()
    var sharing = SessionOptions(threads: 2)
    sharing.sharedArena = shared
    let a = try InferenceSession(graph: small.graph, options: sharing)
    let b = try InferenceSession(graph: large.graph, options: sharing)
    let ownA = try InferenceSession(graph: small.graph, options: SessionOptions(threads: 2))
    let ownB = try InferenceSession(graph: large.graph, options: SessionOptions(threads: 2))

    // Alternate, so that each run finds the other's values in the buffer.
    for _ in 0..<2 {
        for (s, own, g) in [(a, ownA, small), (b, ownB, large), (a, ownA, small)] {
            let got = try s.run(g.feeds), want = try own.run(g.feeds)
            for o in g.graph.outputs { #expect(same(got[o.name], want[o.name])) }
        }
    }
    let arenaA = try #require(a.lastPlanSummary).arenaBytes, arenaB = try #require(b.lastPlanSummary).arenaBytes
    #expect(arenaB > arenaA)
    #expect(shared.byteCount == arenaB, "one buffer of the larger arena, not \(shared.byteCount) bytes")

    // Runs from two threads at once are serialized and still right.
    let wantA = try ownA.run(small.feeds), wantB = try ownB.run(large.feeds)
    let results = Results()
    DispatchQueue.concurrentPerform(iterations: 8) { i in
        let (s, g, want) = i % 2 == 0 ? (a, small, wantA) : (b, large, wantB)
        let ok = (try? s.run(g.feeds)).map { got in g.graph.outputs.allSatisfy { same(got[$0.name], want[$0.name]) } } ?? false
        results.record(ok)
    }
    #expect(results.all == 8)
}

/// Same shape and bytes.
private func same(_ a: Tensor?, _ b: Tensor?) -> Bool {
    guard let a, let b else { return false }
    return a.shape == b.shape && Array(a.storage.bytes) == Array(b.storage.bytes)
}

private final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var ok = 0
    func record(_ v: Bool) { lock.lock(); if v { ok += 1 }; lock.unlock() }
    var all: Int { lock.lock(); defer { lock.unlock() }; return ok }
}
