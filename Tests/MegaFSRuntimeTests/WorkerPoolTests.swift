import CKernels
import Dispatch
import Testing
@testable import MegaFSRuntime

/// Thousands of back-to-back loops of 1 to 9 parts, some empty and some uneven: every index
/// of every loop is visited exactly once (a worker waking late must not run a part of a newer
/// loop, nor miss one of its own), whatever the number of threads.
@Test func workerPoolRunsEveryPartOfEveryLoopOnce() {
    var rng = Rng(7701)
    let loops = 4000
    let counts = (0..<loops).map { _ in Int(rng.next() % 40) }
    let offsets = counts.reduce(into: [0]) { $0.append($0.last! + $1) }
    let visits = ZeroedCounters(offsets.last!)
    defer { visits.free() }
    let shared = visits.shared
    for (l, count) in counts.enumerated() {
        let threads = ThreadPartition(threads: 1 + l % 9)
        threads.forRanges(count) { range in
            for i in range { shared.p[offsets[l] + i] += 1 }
            if l % 7 == 0 { var spin = 0; for _ in 0..<(range.count * 50) { spin &+= 1 }; _ = spin }
        }
    }
    let wrong = (0..<offsets.last!).filter { visits[$0] != 1 }
    #expect(wrong.isEmpty, "\(wrong.count) indices not visited exactly once, first \(wrong.prefix(5).map { visits[$0] })")
}

/// A loop started from inside a part runs on that thread alone, and completes.
@Test func workerPoolRunsNestedLoopsInline() {
    let threads = ThreadPartition(threads: 2)
    let sums = ZeroedCounters(2)
    defer { sums.free() }
    let shared = sums.shared
    var before = (0, 0), after = (0, 0)
    mfs_pool_stats(&before.0, &before.1)
    threads.forRanges(2) { outer in
        for o in outer {
            threads.forRanges(100) { inner in for i in inner { shared.p[o] += i } }
        }
    }
    mfs_pool_stats(&after.0, &after.1)
    #expect(sums[0] == 4950 && sums[1] == 4950)
    #expect(after.0 - before.0 == 1, "the outer loop ran on the pool")
    #expect(after.1 - before.1 == 2, "both inner loops ran inline")
}

/// After `mfs_pool_quiesce` the idle workers sleep; the next loop wakes them and still runs
/// every part. Several threads posting at once: one gets the pool, the others run inline.
@Test func workerPoolWakesAfterQuiesceAndServesRacingCallers() {
    let threads = ThreadPartition(threads: 4)
    let total = ZeroedCounters(64)
    defer { total.free() }
    let shared = total.shared
    for round in 0..<50 {
        mfs_pool_quiesce()
        threads.forRanges(64) { range in for i in range { shared.p[i] += round } }
    }
    #expect((0..<64).allSatisfy { total[$0] == 1225 })

    let results = ZeroedCounters(4000)
    defer { results.free() }
    let out = results.shared
    DispatchQueue.concurrentPerform(iterations: 4) { caller in
        for _ in 0..<100 {
            threads.forRanges(1000) { range in for i in range { out.p[caller * 1000 + i] += 1 } }
        }
    }
    #expect((0..<4000).allSatisfy { results[$0] == 100 })
}

/// Counters that the parts of a loop increment, each part its own indices.
private struct ZeroedCounters {
    let shared: SendablePointer<Int>
    init(_ count: Int) {
        let p = UnsafeMutablePointer<Int>.allocate(capacity: count)
        p.initialize(repeating: 0, count: count)
        shared = SendablePointer(p)
    }
    subscript(i: Int) -> Int { shared.p[i] }
    func free() { shared.p.deallocate() }
}
