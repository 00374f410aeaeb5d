import Foundation

/// The buffer a session's activations and scratch live in (the plan's arena). One arena can
/// serve several sessions that run one after another, such as a swap's encoder, swapper and
/// generator: the process then holds the largest plan's arena instead of one per session (the
/// fp32 swap: the generator's 206 MB alone instead of that plus the encoder's 28.5 MB).
/// Sessions given the same `SharedArena` (`SessionOptions.sharedArena`) run one at a time,
/// each holding it for the whole of its run; a session without one has its own.
///
/// (Mapped for transparent huge pages, the generator's arena made its steady runs 2-4 % faster
/// but its first run 808-831 against 591-677 ms, the kernel compacting memory for the huge
/// pages: not taken.)
public final class SharedArena: @unchecked Sendable {
    private let lock = NSLock()
    private var base: UnsafeMutableRawPointer?
    private var capacity = 0

    public init() {}

    deinit { base?.deallocate() }

    /// Bytes held now (the largest arena a run has asked for so far).
    public var byteCount: Int { lock.withLock { capacity } }

    /// Runs `body` with a buffer of at least `bytes`, no other run using it meanwhile.
    func withBuffer<T>(atLeast bytes: Int, _ body: (UnsafeMutableRawPointer) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        if base == nil || capacity < bytes {
            base?.deallocate()
            capacity = max(bytes, 64)
            base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: Planner.alignment)
        }
        return try body(base!)
    }
}
