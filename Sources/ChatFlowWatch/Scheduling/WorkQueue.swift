import DequeModule
import Synchronization

/// A multi-consumer queue of instance ids whose mailboxes have work: `--jobs` workers take from
/// it, so at most that many hooks run at once. Pushing resumes a waiting worker directly.
final class WorkQueue: Sendable {
    private struct State {
        var items: Deque<String> = []
        var waiters: Deque<CheckedContinuation<String?, Never>> = []
        var finished = false
    }

    private let state = Mutex(State())

    /// Adds an id (ignored after `finish`).
    func push(_ id: String) {
        let waiter = state.withLock { state -> CheckedContinuation<String?, Never>? in
            guard !state.finished else { return nil }
            if let waiter = state.waiters.popFirst() { return waiter }
            state.items.append(id)
            return nil
        }
        waiter?.resume(returning: id)
    }

    /// A worker waiting for an id, taken out of the queue so the caller can start work before
    /// handing it over (`nil` when none is idle or ids are queued, which keeps order).
    func takeIdleWorker() -> IdleWorker? {
        state.withLock { state in
            guard !state.finished, state.items.isEmpty, let waiter = state.waiters.popFirst() else { return nil }
            return IdleWorker(continuation: waiter)
        }
    }

    /// A worker taken by `takeIdleWorker`; it must be handed exactly one id.
    struct IdleWorker: Sendable {
        fileprivate let continuation: CheckedContinuation<String?, Never>

        func hand(_ id: String) { continuation.resume(returning: id) }
    }

    /// The next id, or `nil` once finished and drained.
    func next() async -> String? {
        await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            let result = state.withLock { state -> String?? in
                if let item = state.items.popFirst() { return .some(item) }
                if state.finished { return .some(nil) }
                state.waiters.append(continuation)
                return .none
            }
            if let result { continuation.resume(returning: result) }
        }
    }

    /// No more ids: waiting workers get `nil`, queued ids are still handed out.
    func finish() {
        let waiters = state.withLock { state -> Deque<CheckedContinuation<String?, Never>> in
            state.finished = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }
}
