import ChatFlow

/// What a change source reports: the seam between where changes are noticed (today inotify on
/// `instances/`; a database's notifications later) and what reacts to them (the watcher, live
/// cache invalidation, waiters).
public enum InstanceChange: Sendable, Hashable {
    /// This instance may have changed: read it again.
    case instance(id: String)
    /// Changes may have been missed (an overflow, a reconnect, a recreated directory): read
    /// every instance again.
    case rescanAll(reason: String)
}

/// A source of `InstanceChange`s for one state directory.
///
/// A subscription is armed when `subscribe` returns: a change committed after that is reported,
/// so a caller that subscribes, then reads, misses nothing. Handlers run on the source's own
/// thread, in order; they must be short (hand work to another thread).
public protocol InstanceChangeSource: Sendable {
    /// Starts calling `handler`; returns a token for `unsubscribe`.
    func subscribe(_ handler: @escaping @Sendable (InstanceChange) -> Void) async throws(WatchError) -> Int
    /// Stops calling the handler registered under `token`.
    func unsubscribe(_ token: Int) async
}

/// Changes of a file store, from the process's inotify source: a state file renamed into place
/// (or written, or removed) is `.instance`; lost events are `.rescanAll`. Temp files, lock files
/// and strays are never reported.
public struct FileChangeSource: InstanceChangeSource {
    /// The `instances/` directory watched.
    public let directory: String

    public init(layout: Layout) { directory = layout.instancesDirectory }

    public func subscribe(_ handler: @escaping @Sendable (InstanceChange) -> Void) async throws(WatchError) -> Int {
        try await FileEventSource.shared.subscribe(directory: directory) { event in
            switch event {
            case .changed(let name):
                if let id = Layout.instanceID(fromStateFileName: name) { handler(.instance(id: id)) }
            case .rescan(let reason):
                handler(.rescanAll(reason: reason))
            }
        }
    }

    public func unsubscribe(_ token: Int) async {
        await FileEventSource.shared.unsubscribe(token)
    }
}
