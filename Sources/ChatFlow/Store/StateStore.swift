import CChatFlowShims
import Glibc

/// Reads and writes the files of one state directory, following the lock protocol of
/// docs/FORMAT.md: the file implementation of `WorkflowStore`. Internal: all access goes
/// through `WorkflowEngine` (and the watcher's read-only view), so no other code touches state files.
package struct StateStore: Sendable {
    /// Larger state files are refused as corrupt rather than read into memory.
    static let maximumStateBytes = 16 << 20
    static let maximumHistoryBytes = 1 << 30

    let layout: Layout
    /// The store's commit log: every commit's sync, and the replay after a power cut.
    let commitLog: CommitLog
    /// The views this process wrote, so that reading one back needs no decode.
    let memo = ViewMemo()
    /// The state directory held open: an instance's files are opened beneath it, no link followed.
    let root: RootDirectory

    init(layout: Layout) {
        self.layout = layout
        self.commitLog = CommitLog(layout: layout)
        self.root = RootDirectory(path: layout.root)
    }

    /// Creates `instances/`, `features/` and `.locks/` if missing.
    package func prepare() throws(ChatFlowError) {
        try FileSystem.createDirectory(layout.instancesDirectory)
        try FileSystem.createDirectory(layout.featuresDirectory)
        try FileSystem.createDirectory(layout.locksDirectory)
    }

    // MARK: Locking

    /// Runs `body` while holding the exclusive `flock` on `lockPath`. A fresh open per call, so
    /// threads of one process exclude each other too (flock belongs to the open file description).
    func withExclusiveLock<T>(_ lockPath: String, _ body: () throws(ChatFlowError) -> T) throws(ChatFlowError) -> T {
        let lock = try openLock(lockPath)
        try lock.lockExclusive()
        return try body()
    }

    /// A lock file, created (with `.locks/`) if missing.
    func openLock(_ lockPath: String) throws(ChatFlowError) -> FileDescriptor {
        do {
            return try FileDescriptor(opening: lockPath, flags: O_RDWR | O_CREAT)
        } catch {
            guard case .io(_, _, let code) = error, code == ENOENT else { throw error }
            try prepare()
            return try FileDescriptor(opening: lockPath, flags: O_RDWR | O_CREAT)
        }
    }
}

extension JSONWriter {
    mutating func append(newline: ()) { append(raw: 0x0A) }
}

/// Where an instance's history is: what reading it needs from a state or its summary.
package protocol HistoryPosition {
    var instanceID: String { get }
    var historyLength: Int { get }
    /// Bytes of `history.ndjson` committed (the file store's position; other stores ignore it).
    var historyBytes: Int { get }
    var currentEntry: HistoryEntry? { get }
    /// Closed entries another writer left in the state file, after those in the history file.
    var foreignEntries: [HistoryEntry] { get }
}

extension HistoryPosition {
    /// The number of closed entries (committed to `history.ndjson`, then `foreignEntries`).
    package var closedEntryCount: Int { historyLength - (currentEntry == nil ? 0 : 1) }
}

extension InstanceState: HistoryPosition {}
extension InstanceSummary: HistoryPosition {}
