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
