import ChatFlow
import ChatFlowWatch
import Dispatch
import Synchronization

/// `chatflow wait`'s and `claim --wait`'s blocking view of a PostgreSQL store's changes: LISTEN
/// through `PostgresChangeSource`, for a synchronous command. Armed when made.
package final class PostgresChangeWaiter: InstanceChangeWaiting, Sendable {
    private struct Pending {
        var ids: [String] = []
        var rescan = false
    }

    /// What the source's handler fills and `nextChange` drains.
    private final class Inbox: Sendable {
        let pending = Mutex(Pending())
        let signal = DispatchSemaphore(value: 0)
    }

    private let source: PostgresChangeSource
    private let token: Int
    private let inbox: Inbox

    package init(url: String) throws(ChatFlowError) {
        let source = try PostgresChangeSource(url: url)
        let inbox = Inbox()
        let subscribed = Mutex<Result<Int, WatchError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do throws(WatchError) {
                let token = try await source.subscribe { change in
                    inbox.pending.withLock { pending in
                        switch change {
                        case .instance(let id): pending.ids.append(id)
                        case .rescanAll: pending.rescan = true
                        }
                    }
                    inbox.signal.signal()
                }
                subscribed.withLock { $0 = .success(token) }
            } catch {
                subscribed.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        switch subscribed.withLock({ $0 })! {
        case .success(let token): self.token = token
        case .failure(let error):
            throw .store(operation: "wait for changes", store: PostgresChangeWaiter.redacted(url), reason: error.description)
        }
        self.source = source
        self.inbox = inbox
    }

    deinit {
        let source = source, token = token
        Task { await source.unsubscribe(token) }
    }

    private static func redacted(_ url: String) -> String {
        (try? PostgresLocation(url: url).description) ?? "the store"
    }

    package func nextChange(deadline: Double?, wakeAtLeastEvery interval: Double?) throws(ChatFlowError) -> [String]? {
        while true {
            let batch = inbox.pending.withLock { pending -> [String]? in
                defer { pending = Pending() }
                return pending.rescan ? [] : pending.ids.isEmpty ? nil : pending.ids
            }
            if let batch { return batch }
            let left = deadline.map { $0 - Timestamps.unix() }
            if let left, left <= 0 { return nil }
            guard let wait = [left, interval].compactMap({ $0 }).min() else {
                inbox.signal.wait()
                continue
            }
            if inbox.signal.wait(timeout: .now() + wait) == .timedOut, let interval, wait == interval { return [] }
        }
    }
}
