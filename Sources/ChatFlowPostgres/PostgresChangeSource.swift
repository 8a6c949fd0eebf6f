import ChatFlow
import ChatFlowWatch
import Logging
import PostgresNIO
import Synchronization

/// Changes of a PostgreSQL store, for any long-running process (live cache invalidation, the MCP
/// server's resource updates, the web view's events, waits): LISTEN on the store's channel on a
/// connection of its own. Each notification (an instance id) is `.instance`. A notification sent
/// while no one listened is lost, so every reconnect reports `.rescanAll`. The first subscription
/// returns once LISTEN is in place (armed), or throws when the server cannot be reached; later
/// connection losses are retried with backoff (0.1 s doubling to 5 s) while subscriptions last.
public final class PostgresChangeSource: InstanceChangeSource {
    public typealias Handler = @Sendable (InstanceChange) -> Void

    private struct State {
        var handlers: [Int: Handler] = [:]
        var nextToken = 1
        /// The listening task's number; a task whose number is no longer this one has been replaced.
        var generation = 0
        var running = false
        var connection: PostgresConnection?
        var armed = false
        /// Armed once in this generation: a gap from here on ends in `.rescanAll`.
        var everArmed = false
        var waiting: [CheckedContinuation<String?, Never>] = []
    }

    private let location: PostgresLocation
    private let logger: Logger
    private let state = Mutex(State())

    /// Listens on the store at `url` (`postgres://…`, as `WorkflowEngine.postgres(url:)` takes).
    public convenience init(url: String, logger: Logger = Logger(label: "chatflow.postgres.changes")) throws(ChatFlowError) {
        self.init(location: try PostgresLocation(url: url), logger: logger)
    }

    package init(location: PostgresLocation, logger: Logger) {
        self.location = location
        self.logger = logger
    }

    public func subscribe(_ handler: @escaping Handler) async throws(WatchError) -> Int {
        let (token, generation, armedOnce) = state.withLock { state -> (Int, Int?, Bool) in
            let token = state.nextToken
            state.nextToken += 1
            state.handlers[token] = handler
            guard !state.running else { return (token, nil, state.everArmed) }
            state.running = true
            state.everArmed = false
            state.generation += 1
            return (token, state.generation, false)
        }
        if let generation { Task { await self.listen(generation) } }
        // Listening, or reconnecting (its `.rescanAll` covers what the gap misses).
        if armedOnce { return token }
        let failure = await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            let ready = state.withLock { state -> Bool? in
                if state.everArmed { return true }
                if !state.running { return false }
                state.waiting.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready ? nil : "the connection failed") }
        }
        if let failure {
            state.withLock { _ = $0.handlers.removeValue(forKey: token) }
            throw .watchFailed(path: location.description, reason: "cannot LISTEN on \(PostgresSchema.channel): \(failure)")
        }
        return token
    }

    public func unsubscribe(_ token: Int) async {
        let connection = state.withLock { state -> PostgresConnection? in
            state.handlers[token] = nil
            guard state.handlers.isEmpty, state.running else { return nil }
            // The last one gone: stop listening (closing the connection ends the LISTEN).
            state.running = false
            state.armed = false
            state.generation += 1
            defer { state.connection = nil }
            return state.connection
        }
        if let connection { try? await connection.close() }
    }

    private func current(_ generation: Int) -> Bool { state.withLock { $0.running && $0.generation == generation } }

    private func deliver(_ change: InstanceChange, _ generation: Int) {
        let handlers = state.withLock { state in
            state.generation == generation ? state.handlers.sorted { $0.key < $1.key }.map(\.value) : []
        }
        for handler in handlers { handler(change) }
    }

    /// Connects, LISTENs and reports, until unsubscribed; reconnects with backoff. A first
    /// connection that fails ends it, failing the subscriptions waiting to be armed.
    private func listen(_ generation: Int) async {
        var backoff = 0.1
        while current(generation) {
            var failure: String?
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: location.configuration, id: 1, logger: PostgresStore.silent)
                let kept = state.withLock { state -> Bool in
                    guard state.running, state.generation == generation else { return false }
                    state.connection = connection
                    return true
                }
                guard kept else {
                    try? await connection.close()
                    return
                }
                do {
                    try await connection.listen(on: PostgresSchema.channel) { notifications in
                        let (waiters, again) = state.withLock { state -> ([CheckedContinuation<String?, Never>], Bool) in
                            let again = state.everArmed
                            state.armed = true
                            state.everArmed = true
                            defer { state.waiting = [] }
                            return (state.waiting, again)
                        }
                        for waiter in waiters { waiter.resume(returning: nil) }
                        backoff = 0.1
                        if again { deliver(.rescanAll(reason: "reconnected to \(location.description)"), generation) }
                        for try await notification in notifications where Identifiers.isInstanceID(notification.payload) {
                            deliver(.instance(id: notification.payload), generation)
                        }
                    }
                } catch {
                    failure = PostgresConnector.reason(error)
                }
                state.withLock { state in
                    state.armed = false
                    if state.generation == generation { state.connection = nil }
                }
                try? await connection.close()
            } catch {
                failure = PostgresConnector.reason(error)
            }
            guard current(generation) else { return }
            if !state.withLock({ $0.everArmed }) {
                let waiters = state.withLock { state -> [CheckedContinuation<String?, Never>] in
                    state.running = false
                    state.generation += 1
                    defer { state.waiting = [] }
                    return state.waiting
                }
                for waiter in waiters { waiter.resume(returning: failure ?? "the connection ended") }
                return
            }
            logger.warning("LISTEN ended (\(location.description)): \(failure ?? "the connection closed"); reconnecting in \(backoff) s")
            try? await Task.sleep(for: .seconds(backoff))
            backoff = min(backoff * 2, 5)
        }
    }
}
