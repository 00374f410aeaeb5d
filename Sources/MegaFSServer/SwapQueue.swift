import Foundation

/// Admission and scheduling of swaps: at most `concurrency` run at once and at most
/// `queueLength` more wait; beyond that a request is turned away at once (503), before its body
/// is read, so that memory stays bounded under any load: at most `concurrency + queueLength`
/// bodies are held, and at most `concurrency` swaps use working memory.
///
/// A request first takes a `Ticket` (`admit`), reads its body, then waits for a slot in arrival
/// order (`waitForSlot`) until its deadline; the slot is given back when the swap's work ends
/// (`release`), which may be after the request gave up waiting for it: a swap cannot be stopped
/// half-way, so its slot stays taken until it really finishes.
public actor SwapQueue {
    public let concurrency: Int
    public let queueLength: Int

    /// Tickets held: requests reading their body, waiting or running.
    public private(set) var admitted = 0
    /// Swaps holding a slot.
    public private(set) var running = 0
    /// Requests waiting for a slot.
    public var waiting: Int { waiters.count }

    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    private var nextID: UInt64 = 0
    private let onChange: @Sendable (_ waiting: Int, _ running: Int) -> Void

    public enum Rejection: Error, Equatable {
        /// `concurrency + queueLength` requests are in already.
        case full
        /// The deadline passed while waiting for a slot.
        case deadline
    }

    /// A place in the system, taken by `admit` and given back by `leave` (exactly once).
    public struct Ticket: Sendable {
        let id: UInt64
    }

    public init(concurrency: Int, queueLength: Int,
                onChange: @escaping @Sendable (_ waiting: Int, _ running: Int) -> Void = { _, _ in }) {
        precondition(concurrency >= 1 && queueLength >= 0)
        self.concurrency = concurrency
        self.queueLength = queueLength
        self.onChange = onChange
    }

    /// A ticket, or `.full`.
    public func admit() throws(Rejection) -> Ticket {
        guard admitted < concurrency + queueLength else { throw .full }
        admitted += 1
        nextID &+= 1
        return Ticket(id: nextID)
    }

    /// Gives the ticket back (after the swap's slot was released, or when it never ran).
    public func leave(_ ticket: Ticket) {
        admitted -= 1
    }

    /// Waits in arrival order for a slot, until `deadline`.
    public func waitForSlot(_ ticket: Ticket, deadline: ContinuousClock.Instant) async throws {
        if running < concurrency && waiters.isEmpty {
            running += 1
            onChange(waiters.count, running)
            return
        }
        guard deadline > .now else { throw Rejection.deadline }
        let timer = Task { [weak self] in
            try? await Task.sleep(until: deadline, clock: .continuous)
            await self?.expire(ticket.id)
        }
        defer { timer.cancel() }
        try await withCheckedThrowingContinuation { continuation in
            waiters.append((ticket.id, continuation))
            onChange(waiters.count, running)
        }
    }

    /// Gives a slot back: to the first waiter, or free.
    public func release() {
        if waiters.isEmpty {
            running -= 1
        } else {
            waiters.removeFirst().continuation.resume()
        }
        onChange(waiters.count, running)
    }

    private func expire(_ id: UInt64) {
        guard let i = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: i).continuation.resume(throwing: Rejection.deadline)
        onChange(waiters.count, running)
    }
}
