import ChatFlow
import Synchronization

/// A request to stop, in two stages: the first asks for a graceful stop (running hooks may
/// finish), a second one for an immediate one (running hooks are ended at once), as a second
/// Ctrl-C does.
public final class ShutdownSignal: Sendable {
    private struct State {
        var requests = 0
        var nextToken = 0
        /// Per stage (1, 2): who waits for it.
        var handlers: [Int: [Int: @Sendable () -> Void]] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Requests shutdown: the first call a graceful stop, the second an immediate one. The
    /// handlers of that stage run once, on the caller's thread.
    public func request() {
        let handlers = state.withLock { state -> [@Sendable () -> Void] in
            state.requests += 1
            return Array((state.handlers.removeValue(forKey: state.requests) ?? [:]).values)
        }
        for handler in handlers { handler() }
    }

    /// Returns once shutdown is requested.
    public func wait() async { await wait(forStage: 1) }

    /// Returns once an immediate stop is requested (a second `request`), or the task is cancelled.
    public func waitForImmediate() async { await wait(forStage: 2) }

    /// Runs `handler` at shutdown (at once if already requested).
    public func onRequest(_ handler: @escaping @Sendable () -> Void) {
        _ = register(stage: 1, handler)
    }

    /// Runs `handler` when an immediate stop is requested (at once if it already was).
    public func onImmediateRequest(_ handler: @escaping @Sendable () -> Void) {
        _ = register(stage: 2, handler)
    }

    private func register(stage: Int, _ handler: @escaping @Sendable () -> Void) -> Int? {
        let token = state.withLock { state -> Int? in
            if state.requests >= stage { return nil }
            state.nextToken += 1
            state.handlers[stage, default: [:]][state.nextToken] = handler
            return state.nextToken
        }
        if token == nil { handler() }
        return token
    }

    private func wait(forStage stage: Int) async {
        let resumed = Mutex(false)
        let token = Mutex<Int?>(nil)
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeOnce: @Sendable () -> Void = {
                    let first = resumed.withLock { done in
                        defer { done = true }
                        return !done
                    }
                    if first { continuation.resume() }
                }
                token.withLock { $0 = register(stage: stage, resumeOnce) }
                if Task.isCancelled { cancel(stage: stage, token: token.withLock { $0 }, resumeOnce) }
            }
        } onCancel: {
            // Resumes the waiter through its registered handler.
            let handler = state.withLock { state -> (@Sendable () -> Void)? in
                guard let key = token.withLock({ $0 }) else { return nil }
                return state.handlers[stage]?.removeValue(forKey: key)
            }
            handler?()
        }
    }

    private func cancel(stage: Int, token: Int?, _ resume: @Sendable () -> Void) {
        if let token { _ = state.withLock { $0.handlers[stage]?.removeValue(forKey: token) } }
        resume()
    }
}
