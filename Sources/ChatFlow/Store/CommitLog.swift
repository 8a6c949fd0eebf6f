import CChatFlowShims
import Glibc
import Synchronization

/// The store's commit log, `<root>/commit.log` (docs/FORMAT.md, "The commit log"): one file,
/// made whole once and never grown, that every commit of every instance writes its history lines
/// into, in place, durably. That write is the commit; the history append and the view are left
/// unsynced.
///
/// Why one file: a commit that syncs its own instance's history also writes that file's inode
/// block (its size and mtime changed), a device round trip more than SQLite's WAL, whose one file
/// keeps its size. Over 1,000 instances that was the whole gap to SQLite (docs/BENCHMARKS.md, "the
/// store's commit log"). Here every commit syncs the same file, which keeps its size and changes
/// its mtime at most once per clock tick.
///
/// What the unsynced appends cost: after a power cut a history may lack lines whose commit was
/// acknowledged. The first process of each boot that touches the store (`ensureRecovered`)
/// replays the log's records into the histories before anything reads them; the lock file
/// records the boot it was done in (`/proc/sys/kernel/random/boot_id`), so every later process
/// of that boot sees it with one read. Before the ring wraps over old records, `checkpoint`
/// makes every history durable (`syncfs`). A process that commits keeps the log and its lock
/// open; one that only reads keeps nothing open.
package final class CommitLog: Sendable {
    /// A new log's size (the header block, then the ring of records): about 1,000 commits of a
    /// typical state per lap, and a lap ends in one `syncfs`. A log's ring is whatever size its
    /// file has; `CHATFLOW_COMMIT_LOG_SIZE` sets a new one's (the power-loss check makes small ones).
    static let defaultSize = 1 << 20
    /// The first record's offset (the header is one sector at 0).
    static let dataStart = 4096
    /// Records start at multiples of a sector, so that a commit can be written with `O_DIRECT`.
    static let sector = 512

    let layout: Layout
    /// The log's and its lock's descriptors, opened on first use and kept; the mutex also
    /// excludes this process's own threads, which share the flock's open file description.
    let files = Mutex(Files())
    /// Set once this process has seen that the store needs no replay in this boot.
    private let recovered = Atomic<Bool>(false)

    struct Files {
        /// Opened `O_DIRECT | O_DSYNC` where the file system allows (else `O_DSYNC`): a commit is
        /// one `pwrite` that returns once it is durable, without the page cache's writeback
        /// (measured: 25 µs of CPU a commit against 32 µs for `pwrite` + `fdatasync`, and about
        /// a tenth less wall time, docs/BENCHMARKS.md).
        var log: Int32 = -1
        /// The log's size, read when it is opened: the end of its ring.
        var size = 0
        var lock: Int32 = -1
    }

    /// `layout.commitLogFile` and `layout.commitLockFile`, built once (every commit names them).
    let logPath: String
    let lockPath: String

    init(layout: Layout) {
        self.layout = layout
        logPath = layout.commitLogFile
        lockPath = layout.commitLockFile
    }

    deinit {
        files.withLock { files in
            if files.log >= 0 { close(files.log) }
            if files.lock >= 0 { close(files.lock) }
        }
    }

    // MARK: Recovery

    /// Makes sure no history lacks a commit the log holds: a no-op (one read of the lock file,
    /// once per process) unless this is the first use of the store since the machine booted, when
    /// it replays the log (the histories' last lines may have been lost with the page cache).
    /// Call before reading a state or history. After a replay, and before the head names this
    /// boot, `repairViews` gets every instance the replayed lap named: the only instances whose
    /// views (written without syncs since the lap began) a power cut can have torn.
    package func ensureRecovered(
        repairViews: (Set<String>) throws(ChatFlowError) -> Void = { _ in }
    ) throws(ChatFlowError) {
        if recovered.load(ordering: .acquiring) { return }
        // The mutex only keeps this process's threads from replaying twice.
        try files.withLock { (_) throws(ChatFlowError) in
            // No log: every commit so far synced its own history (or none was made).
            guard FileSystem.exists(logPath) else { return }
            // Descriptors of its own, closed on return (which also releases the flock): a
            // process that only reads keeps nothing of the store open for writing (a store on a
            // file system that is to be remounted read-only, a directory to be removed).
            let lock: FileDescriptor
            var writable = true
            do throws(ChatFlowError) {
                try FileSystem.createDirectory(layout.locksDirectory)
                lock = try FileDescriptor(opening: lockPath, flags: O_RDWR | O_CREAT)
            } catch {
                guard case .io(_, _, let code) = error, code == EACCES || code == EROFS else { throw error }
                lock = try FileDescriptor(opening: lockPath, flags: O_RDONLY)
                writable = false
            }
            if let head = CommitLog.readHead(lock.rawValue), head.boot == CommitLog.bootID { return }
            try lock.lockExclusive()
            if let head = CommitLog.readHead(lock.rawValue), head.boot == CommitLog.bootID { return }
            guard writable else {
                throw .store(
                    operation: "recover", store: layout.root,
                    reason: "the machine restarted since its last commit, and this process cannot write \(lockPath) to replay \(logPath): run `chatflow doctor` as the store's owner first")
            }
            let fd = CommitLog.openForCommits(logPath)
            guard fd >= 0 else { throw .io(operation: "open", path: logPath, errno: errno) }
            let log = FileDescriptor(adopting: fd, path: logPath)
            try replay(log: log.rawValue, size: try CommitLog.checkedSize(log), lock: lock.rawValue, repairViews: repairViews)
        }
        recovered.store(true, ordering: .releasing)
    }

    /// Replays every record of the current lap into its history where the history lacks it, and
    /// records this boot and the head in the lock file. With the log lock. The replayed lines are
    /// not synced: a power cut before the next checkpoint makes the next boot replay them again.
    private func replay(
        log: Int32, size: Int, lock: Int32, repairViews: (Set<String>) throws(ChatFlowError) -> Void = { _ in }
    ) throws(ChatFlowError) {
        let path = logPath
        // Read through the page cache: the log's own descriptor may be O_DIRECT.
        let reader = try FileDescriptor(opening: path, flags: O_RDONLY)
        let bytes = try reader.read(at: 0, count: size)
        guard let base = CommitLog.parseHeader(bytes) else {
            // Only a checkpoint rewrites the header, after its syncfs: nothing here needs a
            // replay. A fresh ring, so no record of an earlier lap is mistaken for this one's.
            try resetRing(log: log, size: size, lock: lock)
            return
        }
        var head = Head(boot: CommitLog.bootID, seq: base, offset: CommitLog.dataStart)
        var replayed = Set<String>()
        while let record = CommitLog.parseRecord(bytes, at: head.offset), record.seq == head.seq {
            try apply(record)
            replayed.insert(record.instanceID)
            head.seq += 1
            head.offset = record.end
        }
        try repairViews(replayed)
        try CommitLog.writeHead(lock, head, path: lockPath)
    }

    /// Writes one record's lines into its history unless they are there.
    private func apply(_ record: Record) throws(ChatFlowError) {
        let id = record.instanceID
        // Removed since (its state file and directory gone): not brought back.
        guard FileSystem.exists(layout.instanceDirectory(id)) || FileSystem.exists(layout.stateFile(id)) else { return }
        let root = RootDirectory(path: layout.root)
        try root.makeDirectories(layout.instanceDirectory(id))
        let file = try root.open(layout.historyFile(id), flags: O_RDWR | O_CREAT)
        if try file.read(at: record.offset, count: record.lines.count) == record.lines { return }
        try file.write(record.lines, at: record.offset)
    }

    // MARK: Appending

    /// Appends the commit of `lines`, written to `instance`'s history at `offset`, and syncs the
    /// log: the commit point. `false` when the lines are too large for the log (the caller then
    /// syncs the history itself, the format 2 commit).
    func append(instance: String, at offset: Int, lines: [UInt8]) throws(ChatFlowError) -> Bool {
        let longest = CommitLog.padded(CommitLog.recordLength(instance: instance, offset: offset, lines: lines))
        return try files.withLock { (files) throws(ChatFlowError) -> Bool in
            let lock = try openLock(&files)
            try lockExclusive(lock)
            defer { flock(lock, LOCK_UN) }
            let log = try openLog(&files, creating: lock)
            let size = files.size
            guard longest <= size - CommitLog.dataStart else { return false }
            var head: Head
            if let known = CommitLog.readHead(lock), known.boot == CommitLog.bootID, known.offset <= size {
                head = known
            } else {
                // The lock file lost its text (or the log was made without one): replay, which
                // finds the head (records already in their histories are left alone). This boot
                // was replayed before this process wrote (`ensureRecovered`), so no view is torn.
                try replay(log: log, size: size, lock: lock)
                guard let found = CommitLog.readHead(lock) else {
                    throw .corruptState(path: lockPath, reason: "unreadable right after it was written")
                }
                head = found
            }
            let record = CommitLog.record(seq: head.seq, instance: instance, offset: offset, lines: lines)
            let length = CommitLog.padded(record.count)
            if head.offset + length > size {
                try checkpoint(log: log, nextSeq: head.seq)
                head.offset = CommitLog.dataStart
            }
            // O_DSYNC: durable when it returns.
            try CommitLog.writeSectors(log, record, at: head.offset, path: logPath)
            head.seq += 1
            head.offset += length
            try CommitLog.writeHead(lock, head, path: lockPath)
            return true
        }
    }

    /// Ends a lap: every history (and every other file) made durable, so the records about to be
    /// overwritten are no longer needed; then the header names the next lap's first record.
    private func checkpoint(log: Int32, nextSeq: Int) throws(ChatFlowError) {
        try syncFileSystem(log)
        try CommitLog.writeSectors(log, CommitLog.header(base: nextSeq), at: 0, path: logPath)
    }

    private func syncFileSystem(_ log: Int32) throws(ChatFlowError) {
        _ = try retryingEINTR("syncfs", layout.root) { chatflow_syncfs(log) }
    }

    /// A ring of zeros and a header at sequence 1, after a header a power cut tore.
    private func resetRing(log: Int32, size: Int, lock: Int32) throws(ChatFlowError) {
        try CommitLog.writeSectors(log, CommitLog.emptyLog(size: size), at: 0, path: logPath)
        try CommitLog.writeHead(lock, Head(boot: CommitLog.bootID, seq: 1, offset: CommitLog.dataStart), path: lockPath)
    }
}
