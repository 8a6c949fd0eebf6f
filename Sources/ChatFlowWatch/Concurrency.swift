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

    /// Returns once shutdown is requested.
    public func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            onRequest { continuation.resume() }
        }
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

/// A multi-consumer queue of instance ids whose mailboxes have work: `--jobs` workers take from
/// it, so at most that many hooks run at once. Pushing resumes a waiting worker directly.
final class WorkQueue: Sendable {
    private struct State {
        var items: [String] = []
        var head = 0
        var waiters: [CheckedContinuation<String?, Never>] = []
        var finished = false
    }

    private let state = Mutex(State())

    /// Adds an id (ignored after `finish`).
    func push(_ id: String) {
        let waiter = state.withLock { state -> CheckedContinuation<String?, Never>? in
            guard !state.finished else { return nil }
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.items.append(id)
            return nil
        }
        waiter?.resume(returning: id)
    }

    /// A worker waiting for an id, taken out of the queue so the caller can start work before
    /// handing it over (`nil` when none is idle or ids are queued, which keeps order).
    func takeIdleWorker() -> IdleWorker? {
        state.withLock { state in
            guard !state.finished, state.head >= state.items.count, !state.waiters.isEmpty else { return nil }
            return IdleWorker(continuation: state.waiters.removeFirst())
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
                if state.head < state.items.count {
                    defer {
                        state.head += 1
                        if state.head > 1024 && state.head * 2 > state.items.count {
                            state.items.removeFirst(state.head)
                            state.head = 0
                        }
                    }
                    return .some(state.items[state.head])
                }
                if state.finished { return .some(nil) }
                state.waiters.append(continuation)
                return .none
            }
            if let result { continuation.resume(returning: result) }
        }
    }

    /// No more ids: waiting workers get `nil`, queued ids are still handed out.
    func finish() {
        let waiters = state.withLock { state -> [CheckedContinuation<String?, Never>] in
            state.finished = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }
}

/// Per-instance serial queues: each instance's transitions run one at a time, in order, by one
/// worker; different instances run in parallel. (An actor would interleave two runs of one
/// instance at every `await`.)
final class Mailboxes: Sendable {
    /// A transition and the state file's bytes it was detected in (the hooks' stdin).
    struct Job: Sendable {
        var transition: Transition
        var stateText: [UInt8]
        /// Set when the first hook was started on the event thread: its hooks and that launch.
        var started: StartedHooks?
    }

    /// A transition's hooks (looked up once), the first of which is already running.
    struct StartedHooks: Sendable {
        var hooks: [Hook]
        var first: HookRunner.Launch
    }

    private struct Queue {
        var pending: [Job] = []
        var active = false
    }

    private let queues = Mutex<[String: Queue]>([:])

    /// Queues transitions; `true` when the instance just became ready (hand it to a worker).
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
            // A job whose hook is already running is always handed out, so it is waited for.
            if queue.pending.isEmpty || (stopping && queue.pending[0].started == nil) {
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
