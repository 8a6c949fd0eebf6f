import Glibc

/// The seam between the engine's rules and where state lives: what `WorkflowEngine` calls to
/// lock, read, append history and commit. Today the one implementation is `StateStore` (the
/// files of docs/FORMAT.md); a database store implements the same calls with the same
/// guarantees (an exclusive per-instance critical section, a commit that is atomic and durable
/// when it returns, history readable by position).
///
/// The engine keeps everything else (validation, the order of a trigger's steps, the cache), so
/// a second store changes where bytes go, not what a trigger means.
package protocol WorkflowStore: Sendable, CustomStringConvertible {
    /// Creates whatever the store needs before the first write (idempotent).
    func prepare() throws(ChatFlowError)

    /// Whether an instance exists, without reading it.
    func exists(_ id: String) -> Bool

    /// Runs `body` as the only writer of instance `id` (across threads and processes). A store
    /// may instead run it optimistically and again when another writer committed between its
    /// read and its commit (the database store's compare-and-set): `body` acts only through
    /// `commit`.
    func withInstanceLock<T>(_ id: String, _ body: () throws(ChatFlowError) -> T) throws(ChatFlowError) -> T

    /// Whether `withInstanceLock` may be entered for `id`: the file store creates a lock file,
    /// which an unknown (possibly hostile) id must not get.
    func mayLock(_ id: String) -> Bool

    /// `withInstanceLock` for an instance that exists; `nil` (without running `body`) when it
    /// does not.
    func withExistingInstanceLock<T>(_ id: String, _ body: () throws(ChatFlowError) -> T) throws(ChatFlowError) -> T?

    /// One change of an existing instance as its only writer: the committed state read under the
    /// lock (`readLocked`), `change` (which returns the history entries it closed), `commit`, then
    /// `committed` with the lock still held. `nil`, without running `change`, when the instance
    /// does not exist. The default is those calls in turn; the file store
    /// opens each file once.
    func modify(
        _ id: String, _ change: (inout InstanceState) throws(ChatFlowError) -> [HistoryEntry],
        committed: (InstanceState) -> Void
    ) throws(ChatFlowError) -> InstanceState?

    /// The committed state, or `nil` if the instance does not exist.
    func read(_ id: String) throws(ChatFlowError) -> InstanceState?

    /// The committed state and its stored text, with members in `skipping` checked but not
    /// built. With `waitingForWriter` false, a reader that hears of every commit (the watcher)
    /// may get the state before a commit in progress rather than wait for it.
    func readWithText(
        _ id: String, skipping: Set<String>, waitingForWriter: Bool
    ) throws(ChatFlowError) -> (state: InstanceState, text: [UInt8])?

    /// The committed state read inside `withInstanceLock` (recovering what a crash left).
    func readLocked(_ id: String, skipping: Set<String>) throws(ChatFlowError) -> (state: InstanceState, text: [UInt8])?

    /// The commit point: atomically and durably records `state` with the history entries the
    /// change closed (updating where the history ends in `state`). Inside the lock; `isNew` for an
    /// instance being started (its storage is created first).
    func commit(_ state: inout InstanceState, closing entries: [HistoryEntry], isNew: Bool) throws(ChatFlowError)

    /// History entries from position `start` on, the open one last.
    func history(of state: some HistoryPosition, from start: Int) throws(ChatFlowError) -> [HistoryEntry]

    /// Adds an instance to its feature's index (before its first commit, so a crash leaves an
    /// index entry without an instance, which readers skip, never the reverse).
    func addToFeature(_ feature: String, id: String) throws(ChatFlowError)

    /// Ids of a feature's instances, or of every instance when `feature` is nil; sorted.
    func instanceIDs(feature: String?) throws(ChatFlowError) -> [String]

    /// Every history entry of `state` as compact JSON text, in order (`status --json` passes a
    /// file store's stored lines through rather than rebuilding them).
    func historyText(of state: InstanceState) throws(ChatFlowError) -> [[UInt8]]

    /// `doctor`'s check of the stored instances; with `fix`, repairs what is safe, rewriting
    /// another writer's layout through `migrate`.
    func diagnose(fix: Bool, migrate: (String) throws(ChatFlowError) -> Bool) throws(ChatFlowError) -> [DoctorFinding]

    /// Writes an instance copied from another store (`chatflow migrate`), as it was.
    func importInstance(_ state: InstanceState, closing entries: [HistoryEntry]) throws(ChatFlowError)
}

/// What a store offers unless it does better: history text rebuilt from the entries, a doctor
/// that reads every instance and its history, and no import.
extension WorkflowStore {
    package func historyText(of state: InstanceState) throws(ChatFlowError) -> [[UInt8]] {
        try history(of: state, from: 0).map { Array($0.json.compactText.utf8) }
    }

    package func diagnose(fix: Bool, migrate: (String) throws(ChatFlowError) -> Bool) throws(ChatFlowError) -> [DoctorFinding] {
        var findings: [DoctorFinding] = []
        for id in try instanceIDs(feature: nil) {
            do {
                guard let state = try read(id) else { continue }
                _ = try history(of: state, from: 0)
            } catch {
                findings.append(DoctorFinding(
                    problem: error.description,
                    fix: "inspect its stored rows in \(description); ChatFlow never rewrites them", fixed: false))
            }
        }
        return findings
    }

    package func importInstance(_ state: InstanceState, closing entries: [HistoryEntry]) throws(ChatFlowError) {
        throw .store(operation: "import \(state.instanceID)", store: description, reason: "only a state directory takes an import this way")
    }
}

extension WorkflowStore {
    /// `modify` through the store's separate calls (the file store opens each file once instead).
    package func modify(
        _ id: String, _ change: (inout InstanceState) throws(ChatFlowError) -> [HistoryEntry],
        committed: (InstanceState) -> Void
    ) throws(ChatFlowError) -> InstanceState? {
        try withExistingInstanceLock(id) { () throws(ChatFlowError) -> InstanceState? in
            guard var state = try readLocked(id, skipping: [])?.state else { return nil }
            let closed = try change(&state)
            try commit(&state, closing: closed, isNew: false)
            committed(state)
            return state
        } ?? nil
    }

    package func withExistingInstanceLock<T>(_ id: String, _ body: () throws(ChatFlowError) -> T) throws(ChatFlowError) -> T? {
        guard mayLock(id) else { return nil }
        return try withInstanceLock(id, body)
    }
}

extension StateStore: WorkflowStore {
    package var description: String { layout.root }

    package func exists(_ id: String) -> Bool { FileSystem.exists(layout.stateFile(id)) }

    package func mayLock(_ id: String) -> Bool { exists(id) }

    package func withInstanceLock<T>(_ id: String, _ body: () throws(ChatFlowError) -> T) throws(ChatFlowError) -> T {
        try withExclusiveLock(layout.lockFile(id), body)
    }

    /// Opens the lock file without creating it first: every instance started here has one, so
    /// the `stat` of its state file (a path walk per trigger) is needed only when it is missing.
    package func withExistingInstanceLock<T>(_ id: String, _ body: () throws(ChatFlowError) -> T) throws(ChatFlowError) -> T? {
        if let lock = try? FileDescriptor(opening: layout.lockFile(id), flags: O_RDWR) {
            try lock.lockExclusive()
            return try body()
        }
        guard exists(id) else { return nil }
        return try withInstanceLock(id, body)
    }

    package func addToFeature(_ feature: String, id: String) throws(ChatFlowError) {
        try addToLink(feature: feature, id: id)
    }

    package func instanceIDs(feature: String?) throws(ChatFlowError) -> [String] {
        guard let feature else { return try instanceIDs() }
        return try readLink(feature: feature)
    }
}
