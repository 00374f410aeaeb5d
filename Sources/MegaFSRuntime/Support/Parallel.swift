import CKernels

/// Splits loops over the session's threads, run by the worker pool in `workerpool.c`. Our
/// loops and OpenBLAS's never run at the same time (a kernel either calls a GEMM or runs its
/// own loop, and the pool's idle workers stop polling before a GEMM), so the process never has
/// more runnable compute threads than the `threads` option.
public struct ThreadPartition: Sendable {
    public let threads: Int

    public init(threads: Int) { self.threads = max(1, threads) }

    /// Calls `body` on disjoint contiguous sub-ranges covering 0..<count, in parallel when
    /// `count` is at least `minPerThread` per thread. `body` must only write disjoint data.
    @inline(__always)
    public func forRanges(_ count: Int, minPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let parts = min(threads, max(1, count / max(1, minPerThread)))
        if parts <= 1 { body(0..<count); return }
        withoutActuallyEscaping(body) { escapable in
            var loop = RangeLoop(count: count, parts: parts, body: escapable)
            withUnsafeMutablePointer(to: &loop) { mfs_pool_run(parts, RangeLoop.runPart, $0) }
        }
    }

    /// Calls `body(i)` for each i in 0..<count, spread over the threads in contiguous chunks.
    @inline(__always)
    public func forEach(_ count: Int, minPerThread: Int = 1, _ body: (Int) -> Void) {
        forRanges(count, minPerThread: minPerThread) { range in for i in range { body(i) } }
    }
}

/// A `forRanges` call as the C pool sees it: a context pointer and a part number.
private struct RangeLoop {
    let count: Int
    let parts: Int
    let body: (Range<Int>) -> Void

    static let runPart: @convention(c) (UnsafeMutableRawPointer?, Int) -> Void = { context, part in
        let loop = context!.assumingMemoryBound(to: RangeLoop.self)
        let lo = loop.pointee.count * part / loop.pointee.parts
        let hi = loop.pointee.count * (part + 1) / loop.pointee.parts
        if lo < hi { loop.pointee.body(lo..<hi) }
    }
}

/// Hands a non-Sendable value to a concurrent loop whose iterations touch disjoint data.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// A raw pointer that may cross into a concurrent loop (each iteration writes disjoint parts).
struct SendablePointer<T>: @unchecked Sendable {
    let p: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { self.p = p }
}
