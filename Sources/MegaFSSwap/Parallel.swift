import Dispatch
import Foundation

/// Splits the image loops of pre- and post-processing over the processors. Each pixel is computed
/// as it would be in one loop, so the result does not depend on the split.
enum ImageLoops {
    /// Calls `body` on disjoint contiguous sub-ranges covering 0..<count, in parallel when there
    /// are at least `minPerJob` indices per job. `body` must only write disjoint data.
    static func ranges(_ count: Int, minPerJob: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let jobs = min(ProcessInfo.processInfo.activeProcessorCount, max(1, count / max(1, minPerJob)))
        if jobs <= 1 { body(0..<count); return }
        withoutActuallyEscaping(body) { escapable in
            let box = UncheckedSendableBox(escapable)
            DispatchQueue.concurrentPerform(iterations: jobs) { j in
                box.value((count * j / jobs)..<(count * (j + 1) / jobs))
            }
        }
    }
}

/// Hands a value that is not Sendable to a concurrent loop whose iterations touch disjoint data.
struct UncheckedSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
