import ChatFlow
import Synchronization

/// A one-shot request to stop, observable by handlers and by polling.
public final class ShutdownSignal: Sendable {
    private struct State {
        var requested = false
        var handlers: [@Sendable () -> Void] = []
    }

    private let state = Mutex(State())

    public init() {}

    public var isRequested: Bool { state.withLock { $0.requested } }

    /// Requests shutdown; handlers run once, on the caller's thread.
    public func request() {
        let handlers = state.withLock { state -> [@Sendable () -> Void] in
            guard !state.requested else { return [] }
            state.requested = true
            defer { state.handlers.removeAll() }
            return state.handlers
        }
        for handler in handlers { handler() }
    }

    /// Runs `handler` at shutdown (at once if already requested).
    public func onRequest(_ handler: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            if state.requested { return true }
            state.handlers.append(handler)
            return false
        }
        if runNow { handler() }
    }
}

/// Limits how many hooks run at once (`--jobs`).
final class AsyncSemaphore: Sendable {
    private struct State {
        var available: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    init(_ count: Int) { state = Mutex(State(available: max(1, count))) }

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { state -> Bool in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
    }

    func release() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.available += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.resume()
    }
}

/// Per-instance serial queues: each instance's transitions run one at a time, in order, by one
/// worker; different instances run in parallel. (An actor would interleave two runs of one
/// instance at every `await`.)
final class Mailboxes: Sendable {
    /// A transition and the state it was detected in (the hooks' stdin).
    struct Job: Sendable {
        var transition: Transition
        var state: InstanceState
    }

    private struct Queue {
        var pending: [Job] = []
        var active = false
    }

    private let queues = Mutex<[String: Queue]>([:])

    /// Queues transitions; `true` when the caller must start a worker for this instance.
    func enqueue(_ id: String, _ transitions: [Job]) -> Bool {
        queues.withLock { queues in
            var queue = queues[id] ?? Queue()
            queue.pending += transitions
            let start = !queue.active && !queue.pending.isEmpty
            if start { queue.active = true }
            queues[id] = queue
            return start
        }
    }

    /// The next transition for the worker of `id`, or `nil` (the worker then ends).
    func next(_ id: String, stopping: Bool) -> Job? {
        queues.withLock { queues in
            guard var queue = queues[id] else { return nil }
            if stopping || queue.pending.isEmpty {
                queue.active = false
                queues[id] = queue.pending.isEmpty ? nil : queue
                return nil
            }
            let transition = queue.pending.removeFirst()
            queues[id] = queue
            return transition
        }
    }

    /// Whether the instance has nothing queued or running.
    func isIdle(_ id: String) -> Bool { queues.withLock { $0[id] == nil } }
}
