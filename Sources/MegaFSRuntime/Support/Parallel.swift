import Dispatch

/// Splits loops over the session's threads. Our loops and OpenBLAS's never run at the same
/// time (a kernel either calls a GEMM or runs its own loop), so the process never has more
/// runnable compute threads than the `threads` option.
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
            let box = UncheckedBox(escapable)
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let lo = count * p / parts
                let hi = count * (p + 1) / parts
                if lo < hi { box.value(lo..<hi) }
            }
        }
    }

    /// Calls `body(i)` for each i in 0..<count, spread over the threads in contiguous chunks.
    @inline(__always)
    public func forEach(_ count: Int, minPerThread: Int = 1, _ body: (Int) -> Void) {
        forRanges(count, minPerThread: minPerThread) { range in for i in range { body(i) } }
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
