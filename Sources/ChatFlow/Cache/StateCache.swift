import Synchronization

/// The in-memory read cache: entries live for a TTL (30 s by default), this process's own writes
/// replace them at once, and `invalidate` drops them (the watcher calls it on every change it sees).
///
/// A generation counter closes the race where a slow reader would put an old state back into the
/// cache after a write or invalidation: a read inserts only if nothing changed since it started.
final class StateCache: Sendable {
    private struct Entry {
        var state: InstanceState
        var expires: Double
    }

    private struct Storage {
        var entries: [String: Entry] = [:]
        var generation: UInt64 = 0
    }

    let timeToLive: Double
    private let storage = Mutex(Storage())

    init(timeToLive: Double) { self.timeToLive = timeToLive }

    /// A live entry, or `nil`.
    func state(_ id: String) -> InstanceState? {
        let now = Timestamps.monotonic(coarse: true)
        return storage.withLock { storage in
            guard let entry = storage.entries[id], entry.expires > now else { return nil }
            return entry.state
        }
    }

    /// Capture before reading from disk; pass to `insert(_:readAt:)`.
    var generation: UInt64 { storage.withLock { $0.generation } }

    /// Caches a state read from disk unless a write or invalidation happened since `generation`.
    func insert(_ state: InstanceState, readAt generation: UInt64) {
        let expires = Timestamps.monotonic(coarse: true) + timeToLive
        storage.withLock { storage in
            guard storage.generation == generation else { return }
            storage.entries[state.instanceID] = Entry(state: state, expires: expires)
        }
    }

    /// Records a state this process just wrote (call with the instance lock held).
    func store(_ state: InstanceState) {
        let expires = Timestamps.monotonic(coarse: true) + timeToLive
        storage.withLock { storage in
            storage.generation &+= 1
            storage.entries[state.instanceID] = Entry(state: state, expires: expires)
        }
    }

    func invalidate(_ id: String) {
        storage.withLock { storage in
            storage.generation &+= 1
            storage.entries[id] = nil
        }
    }

    func invalidateAll() {
        storage.withLock { storage in
            storage.generation &+= 1
            storage.entries.removeAll(keepingCapacity: true)
        }
    }
}
