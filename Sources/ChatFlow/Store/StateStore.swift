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
        let lock: FileDescriptor
        do {
            lock = try FileDescriptor(opening: lockPath, flags: O_RDWR | O_CREAT)
        } catch {
            guard case .io(_, _, let code) = error, code == ENOENT else { throw error }
            try prepare()
            lock = try FileDescriptor(opening: lockPath, flags: O_RDWR | O_CREAT)
        }
        try lock.lockExclusive()
        return try body()
    }

    // MARK: Instance state

    /// Reads one state fresh from disk; `nil` if the instance does not exist. No lock is needed
    /// when the state file is current (it is only ever replaced by rename); see `readWithText`.
    package func read(_ id: String) throws(ChatFlowError) -> InstanceState? {
        try readWithText(id)?.state
    }

    /// The state and the exact bytes it was parsed from. Members named in `skipping` are
    /// checked but not built (they read as empty values of their kind).
    ///
    /// The state file is a view of the history's last commit (docs/FORMAT.md). When it is behind
    /// `history.ndjson` or unreadable, a writer is between its commit and its view, or one was
    /// cut off there: this waits for the instance's lock and recovers from the history. With
    /// `waitingForWriter` false (the watcher, which hears of the writer's view when it lands), a
    /// readable view behind a writer that holds the lock now is returned as it is.
    package func readWithText(
        _ id: String, skipping: Set<String> = [], waitingForWriter: Bool = true
    ) throws(ChatFlowError) -> (state: InstanceState, text: [UInt8])? {
        try ensureRecovered()
        let path = layout.stateFile(id)
        guard let bytes = try readStateBytes(path) else { return nil }
        let view = try? decodeView(bytes, id, path: path, skipping: skipping).get()
        if let view, try historySize(id) <= view.historyBytes { return (view, bytes) }
        let recovered = try withRecoveryLock(id, waiting: waitingForWriter || view == nil) { () throws(ChatFlowError) in
            try readLocked(id, skipping: skipping)
        }
        guard let recovered else { return (view!, bytes) }
        return recovered
    }

    /// Runs `body` holding the instance's lock, for a reader that must recover (read-only access
    /// is enough for flock); `nil` without running it when not `waiting` and a writer holds it.
    private func withRecoveryLock<T>(
        _ id: String, waiting: Bool, _ body: () throws(ChatFlowError) -> T
    ) throws(ChatFlowError) -> T? {
        let path = layout.lockFile(id)
        let lock: FileDescriptor
        do {
            lock = try FileDescriptor(opening: path, flags: O_RDWR | O_CREAT)
        } catch {
            lock = try FileDescriptor(opening: path, flags: O_RDONLY)
        }
        if waiting {
            try lock.lockExclusive()
        } else if try !lock.tryLockExclusive() {
            return nil
        }
        return try body()
    }

    private func historySize(_ id: String) throws(ChatFlowError) -> Int {
        var info = stat()
        let path = layout.historyFile(id)
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return 0 }
            throw .io(operation: "stat", path: path, errno: errno)
        }
        return Int(info.st_size)
    }

    /// The committed state, read with the instance's lock held: the state file when it is
    /// current, else recovered from the history's last commit line (made durable first, so no
    /// one sees a state a power cut could still take back) and the state file rewritten from it.
    /// An uncommitted tail past the commit is cut off, as the next writer would.
    package func readLocked(_ id: String, skipping: Set<String> = []) throws(ChatFlowError) -> (state: InstanceState, text: [UInt8])? {
        try ensureRecovered()
        return try readCommitted(id, skipping: skipping, afterPowerCut: false)
    }

    /// `readLocked` once the log is replayed (or while replaying: `afterPowerCut`). A view that
    /// fails its check is torn only `afterPowerCut`: under the lock in a replayed boot nothing can
    /// tear a view (a writer's rewrite is finished, and the replay made every view a power cut
    /// could have torn whole again), so such a view is another writer's, complete and readable,
    /// that kept a stale `view_crc32` (Python's `json.dump` keeps the key order it read, `sed -i`
    /// keeps the first line): it is taken as it is, and given a check of its own.
    private func readCommitted(
        _ id: String, skipping: Set<String>, afterPowerCut: Bool
    ) throws(ChatFlowError) -> (state: InstanceState, text: [UInt8])? {
        let path = layout.stateFile(id)
        guard let bytes = try readStateBytes(path) else { return nil }
        let view = try decodeText(bytes, id, path: path, skipping: skipping, staleCheckIsTorn: afterPowerCut)
        // The common case (every write): current. Only a lagging or torn view opens the history.
        if case .success(let state) = view, try historySize(id) <= state.historyBytes {
            if StateStore.viewCheck(bytes) == false {
                // The writer's text kept as it is, with a check of its own, so that lock-free
                // readers need not come here for it each time.
                let body = [UInt8(ascii: "{")] + bytes[StateStore.viewCheckLength...]
                if let restamped = try? StateStore.replaceView(path, temp: layout.stateTempFile(id), view: body) {
                    return (state, restamped)
                }
            }
            return (state, bytes)
        }
        let historyPath = layout.historyFile(id)
        let history: FileDescriptor
        var writable = true
        do {
            history = try root.open(historyPath, flags: O_RDWR)
        } catch {
            guard case .io(_, _, let code) = error else { throw error }
            if code == ENOENT { return (try view.get(), bytes) }
            guard code == EACCES || code == EROFS else { throw error }
            history = try root.open(historyPath, flags: O_RDONLY)
            writable = false
        }
        let size = try history.size()
        let committed = (try? view.get())?.historyBytes ?? 0
        if size < committed {
            throw .corruptState(path: historyPath, reason: "shorter (\(size) bytes) than the committed history_bytes \(committed)")
        }
        try history.syncData()
        guard size - committed <= StateStore.maximumHistoryBytes else {
            throw .corruptState(path: historyPath, reason: "more than \(StateStore.maximumHistoryBytes) bytes")
        }
        let tail = try history.read(at: committed, count: size - committed)
        if let (members, end) = try StateStore.lastCommit(in: tail, from: committed, path: historyPath) {
            var stored = members
            stored["history_bytes"] = JSONValue(end)
            if stored["workflow_schema"] == nil {
                // Immutable: the view has it, or the instance's start file when the view is torn.
                let known: InstanceState? = if case .success(let readable) = view { readable } else { try startState(id) }
                guard let schema = known?.schema.json else {
                    throw .corruptState(path: path, reason: "not JSON, and \(layout.startFile(id)) is missing: the schema of the commit in \(historyPath) is unknown")
                }
                stored["workflow_schema"] = schema
            }
            var writer = JSONWriter(pretty: true, capacity: 2048)
            writer.write(.object(stored))
            writer.append(newline: ())
            let state = try StateStore.decodeState(writer.bytes, path: historyPath, skipping: skipping)
            guard state.instanceID == id else {
                throw .corruptState(path: historyPath, reason: "its commit names instance_id '\(state.instanceID)'")
            }
            if writable {
                // A repair, not the commit: where it fails (a full disk) the state still stands,
                // recovered again by the next reader.
                if size > end { try? history.truncate(to: end) }
                _ = try? StateStore.replaceView(path, temp: layout.stateTempFile(id), view: writer.bytes)
            }
            return (state, writer.bytes)
        }
        // No commit past the state file: it stands, and what follows it is an uncommitted tail.
        // (A state file that is not JSON with no commit to recover it from was not torn by a
        // power cut, since only views of a commit are written without syncs: it is corrupt.)
        let state = try view.get()
        if writable { try? history.truncate(to: state.historyBytes) }
        return (state, bytes)
    }

    /// Makes sure the commit log needs no replay in this boot (`CommitLog.ensureRecovered`),
    /// and after a replay, that no view a power cut tore is left: the replayed instances' views
    /// that fail their check are recovered from their histories before any process reads them.
    func ensureRecovered() throws(ChatFlowError) {
        try commitLog.ensureRecovered { (ids) throws(ChatFlowError) in
            for id in ids.sorted() where FileSystem.exists(layout.stateFile(id)) {
                // Without waiting: a writer that holds an instance's lock may be waiting for the
                // log's (the lock order), and a writer that holds it will write a view of its own.
                guard let lock = try? FileDescriptor(opening: layout.lockFile(id), flags: O_RDWR | O_CREAT),
                      (try? lock.tryLockExclusive()) == true
                else { continue }
                // One instance that cannot be read is that instance's error, not every reader's.
                _ = try? readCommitted(id, skipping: [], afterPowerCut: true)
            }
        }
    }

    /// `WorkflowStore.modify` with each file opened once: the history's descriptor tells whether
    /// the view is current (its size) and then takes the commit's lines, where the separate calls
    /// would `stat` the history, open it again and build every path twice.
    package func modify(
        _ id: String, _ change: (inout InstanceState) throws(ChatFlowError) -> [HistoryEntry],
        committed: (InstanceState) -> Void
    ) throws(ChatFlowError) -> InstanceState? {
        let files = InstanceFiles(layout, id)
        // Every instance started here has a lock file; without one, `modifyInGeneral` checks that
        // the instance exists before it creates one.
        guard let lock = try? FileDescriptor(opening: files.lock, flags: O_RDWR) else {
            return try modifyInGeneral(id, change, committed: committed)
        }
        // Before the instance's lock: a replay repairs views under their instances' locks.
        try ensureRecovered()
        try lock.lockExclusive()
        guard let bytes = try readStateBytes(files.state) else { return nil }
        // A view this process wrote is taken as it was written (`ViewMemo`), start.json known.
        let known = memo.recall(id, text: bytes)
        let hasStart = known?.hasStart ?? false
        let view = if let known { Result<InstanceState, ChatFlowError>.success(known.state) } else {
            try decodeText(bytes, id, path: files.state, skipping: [], staleCheckIsTorn: true)
        }
        if case .success(var state) = view {
            let fd = (try? root.open(files.history, flags: O_WRONLY).release()) ?? -1
            if fd >= 0 {
                let history = FileDescriptor(adopting: fd, path: files.history)
                let size = try history.size()
                if size <= state.historyBytes {
                    let closed = try change(&state)
                    if closed.isEmpty {
                        try write(state, hasStart: hasStart)
                    } else {
                        try commit(
                            &state, closing: closed, to: history, size: size, files: files, created: false,
                            hasStart: hasStart)
                    }
                    committed(state)
                    return state
                }
            }
        }
        // Behind its history, torn, or its history missing or not writable here: the general way.
        guard var state = try readLocked(id, skipping: [])?.state else { return nil }
        let closed = try change(&state)
        try commit(&state, closing: closed, isNew: false)
        committed(state)
        return state
    }

    /// The state file's bytes as a state: a failure when they are not JSON (what a power cut
    /// leaves of a view replaced without syncs: empty, zeros, a torn prefix, which the history
    /// can recover); thrown when they are JSON but not a valid state of `id` (corrupt, refused).
    private func decodeView(
        _ bytes: [UInt8], _ id: String, path: String, skipping: Set<String>
    ) throws(ChatFlowError) -> Result<InstanceState, ChatFlowError> {
        if skipping.isEmpty, let known = memo.state(id, text: bytes) { return .success(known) }
        return try decodeText(bytes, id, path: path, skipping: skipping, staleCheckIsTorn: true)
    }

    /// `decodeView` without the memo: the text checked and decoded. A view that fails its check
    /// is a failure (torn) when `staleCheckIsTorn` (a read without the lock, which can overlap a
    /// rewrite, or a replay after a power cut); else it is decoded like any other writer's view.
    private func decodeText(
        _ bytes: [UInt8], _ id: String, path: String, skipping: Set<String>, staleCheckIsTorn: Bool
    ) throws(ChatFlowError) -> Result<InstanceState, ChatFlowError> {
        if staleCheckIsTorn, StateStore.viewCheck(bytes) == false {
            return .failure(.corruptState(path: path, reason: "torn: its view_crc32 does not match its text"))
        }
        let state: InstanceState
        do {
            state = try StateStore.decodeState(bytes, path: path, skipping: skipping)
        } catch {
            guard StateStore.isTorn(bytes) else { throw error }
            return .failure(error)
        }
        guard state.instanceID == id else {
            throw .corruptState(path: path, reason: "instance_id '\(state.instanceID)' does not match the file name")
        }
        return .success(state)
    }

    /// The instance as started (`start.json`), or `nil` when it has none (started by a format 1
    /// writer; its first commit here writes one).
    private func startState(_ id: String) throws(ChatFlowError) -> InstanceState? {
        let path = layout.startFile(id)
        guard let bytes = try readStateBytes(path) else { return nil }
        return try StateStore.decodeState(bytes, path: path)
    }

    /// The state of the last commit line in `tail` (history bytes from offset `start`: whole
    /// lines, each a history entry; the first that is not ends the search) and where it ends.
    ///
    /// A whole line past a parser limit is refused (thrown), not taken for the end: no crash
    /// leaves one, and cutting it off as an uncommitted tail could drop a commit.
    static func lastCommit(
        in tail: [UInt8], from start: Int, path: String
    ) throws(ChatFlowError) -> (members: [String: JSONValue], end: Int)? {
        var found: (members: [String: JSONValue], end: Int)?
        var lineStart = 0
        for offset in tail.indices where tail[offset] == 0x0A {
            defer { lineStart = offset + 1 }
            let line: JSONValue
            do {
                line = try JSONValue(parsing: Array(tail[lineStart..<offset]))
            } catch {
                if error.exceedsLimit {
                    throw .corruptState(
                        path: path,
                        reason: "the line at byte \(start + lineStart) is past the reader's limits (\(error)); nothing was cut off")
                }
                break
            }
            guard (try? HistoryEntry(json: line)) != nil else { break }
            if case .object(let state)? = line.objectValue?[StateStore.commitMember] {
                found = (state, start + offset + 1)
            }
        }
        return found
    }

    /// Whether state file bytes are not JSON at all: what an interrupted view leaves.
    static func isTorn(_ bytes: [UInt8]) -> Bool {
        (try? JSONValue(parsing: bytes)) == nil
    }

    /// The member of a history line that makes it a commit: the new state.
    static let commitMember = "state"
    static let commitMembers: Set<String> = [commitMember]

    private func readStateBytes(_ path: String) throws(ChatFlowError) -> [UInt8]? {
        do {
            let file = try root.open(path, flags: O_RDONLY | O_NONBLOCK)
            return try file.readAll(limit: StateStore.maximumStateBytes)
        } catch {
            guard case .io(_, _, let code) = error else { throw error }
            if code == ENOENT { return nil }
            if code == ELOOP { throw .corruptState(path: path, reason: "is a symbolic link") }
            throw error
        }
    }

    /// Parses state bytes, reporting the path on failure.
    package static func decodeState(_ bytes: [UInt8], path: String, skipping: Set<String> = []) throws(ChatFlowError) -> InstanceState {
        if let state = bytes.withUnsafeBytes({ InstanceState(standardText: $0, skipping: skipping) }) { return state }
        return try decodeStateInGeneral(bytes, path: path, skipping: skipping)
    }

    /// `decodeState` through the document's JSON: any layout, and the error that names what is wrong.
    static func decodeStateInGeneral(_ bytes: [UInt8], path: String, skipping: Set<String> = []) throws(ChatFlowError) -> InstanceState {
        let json: JSONValue
        var ranges: [String: Range<Int>] = [:]
        do {
            // An object's schema is checked as text and decoded from the cache when seen before.
            if bytes.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) == UInt8(ascii: "{") {
                json = .object(try bytes.withUnsafeBytes {
                    try JSONParser.parseMembers($0, skipping: skipping.union(StateStore.schemaMember), ranges: &ranges)
                })
            } else {
                json = try JSONValue(parsing: bytes)
            }
        } catch {
            throw .corruptState(path: path, reason: "not valid JSON: \(error)")
        }
        do {
            var schema: WorkflowSchema?
            if let range = ranges["workflow_schema"], json.objectValue?["workflow_schema"]?.isNull == false {
                schema = try SchemaCache.schema(text: bytes[range])
            }
            return try InstanceState(json: json, schema: schema)
        } catch {
            throw .corruptState(path: path, reason: error.reason)
        }
    }

    private static let schemaMember: Set<String> = ["workflow_schema"]

    /// Replaces the state file atomically and durably (for a change with no history line: a
    /// start, a claim). Call with the instance lock held.
    ///
    /// A durable write goes to a fresh inode, not into the spare: a reader still holding the spare
    /// from two views ago would otherwise see this state before its sync made it committed.
    func write(_ state: InstanceState, hasStart: Bool = false) throws(ChatFlowError) {
        let temp = layout.stateTempFile(state.instanceID)
        if unlink(temp) != 0 && errno != ENOENT { throw .io(operation: "unlink", path: temp, errno: errno) }
        let bytes = StateStore.viewBytes(state)
        try StateStore.checkStorable(bytes, state.instanceID)
        try StateStore.replace(layout.stateFile(state.instanceID), temp: temp, bytes: bytes, directory: layout.instancesDirectory)
        memo.remember(state, text: bytes, hasStart: hasStart)
    }

    /// Writes the view of a committed state (its commit line is durable): into the spare
    /// `.wfi_<id>.json.tmp` in place, checked (`view_crc32`), then swapped with the state file by
    /// `renameat2(RENAME_EXCHANGE)`, so the spare keeps the previous view's inode. No inode is
    /// created or freed per commit: on ext4 without a journal (this project's machine) each new
    /// inode costs a scan past every recently deleted one and each freed block a synchronous
    /// discard, 1.2 ms a trigger over 1,000 instances (docs/BENCHMARKS.md). Where the file
    /// system cannot exchange, or there is no state file yet, it is a plain rename.
    ///
    /// `durable` for the view of a commit that has no record in the commit log (lines too large
    /// for it): the replay after a power cut repairs only the views its records name, so this
    /// one is synced before the swap and cannot be torn.
    @discardableResult
    static func replaceView(_ path: String, temp: String, view: [UInt8], durable: Bool = false) throws(ChatFlowError) -> [UInt8] {
        let bytes = checkedView(view)
        do {
            let file = try FileDescriptor(opening: temp, flags: O_WRONLY | O_CREAT | O_NOFOLLOW)
            let size = try file.size()
            // A new spare's blocks allocated up front: ext4 would otherwise allocate them inside
            // the exchange and start their writeback there, in the critical section.
            if size == 0 { _ = chatflow_allocate(file.rawValue, Int64(bytes.count)) }
            try file.write(bytes, at: 0)
            if size > bytes.count { try file.truncate(to: bytes.count) }
            if durable { try file.syncData() }
        }
        if chatflow_exchange(temp, path) == 0 { return bytes }
        let code = errno
        guard code == ENOENT || code == EINVAL || code == ENOSYS || code == EOPNOTSUPP else {
            throw .io(operation: "exchange \(temp) with", path: path, errno: code)
        }
        if rename(temp, path) != 0 { throw .io(operation: "rename \(temp) to", path: path, errno: errno) }
        return bytes
    }

    /// Refuses, before anything is written, a state whose view a reader would refuse as too large.
    static func checkStorable(_ view: [UInt8], _ id: String) throws(ChatFlowError) {
        guard view.count + viewCheckLength > maximumStateBytes else { return }
        throw .invalidJSON(
            what: "change of \(id)",
            reason: "its state would be \(view.count) bytes, and a state file holds at most \(maximumStateBytes >> 20) MiB; nothing was changed (keep large data as an artifact)")
    }

    /// The bytes before a checked view's members: `{"view_crc32": "` + 8 hex digits + `",`.
    private static let viewCheckHead = Array(#"{"view_crc32": ""#.utf8)
    static let viewCheckLength = viewCheckHead.count + 10

    /// A view with its check: the members of `view` (a JSON object's text) after a first member
    /// `view_crc32`, the CRC-32 of every byte after it. An in-place rewrite can leave a mix of
    /// two views (a power cut, or a reader overlapping the write); the check tells it from both.
    static func checkedView(_ view: [UInt8]) -> [UInt8] {
        let body = view.dropFirst()   // "{"
        var bytes = viewCheckHead
        bytes.reserveCapacity(viewCheckLength + body.count)
        let crc = CRC32.checksum(body)
        let digits = Array("0123456789abcdef".utf8)
        for shift in stride(from: 28, through: 0, by: -4) { bytes.append(digits[Int((crc >> UInt32(shift)) & 0xF)]) }
        bytes.append(contentsOf: Array(#"","#.utf8))
        bytes.append(contentsOf: body)
        return bytes
    }

    /// Whether a state file's check matches; `nil` when it has none (a view written to a fresh
    /// file and renamed: another writer's, or a durable write).
    static func viewCheck(_ bytes: [UInt8]) -> Bool? {
        guard bytes.count > viewCheckLength, bytes.starts(with: viewCheckHead),
              bytes[viewCheckLength - 2] == UInt8(ascii: "\""), bytes[viewCheckLength - 1] == UInt8(ascii: ",")
        else { return nil }
        var stored: UInt32 = 0
        for byte in bytes[viewCheckHead.count..<(viewCheckLength - 2)] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            default: return false
            }
            stored = stored << 4 | UInt32(digit)
        }
        return CRC32.checksum(bytes[viewCheckLength...]) == stored
    }

    /// The state file's text.
    package static func viewBytes(_ state: InstanceState) -> [UInt8] {
        viewBytes(state, historyBytes: state.historyBytes)
    }

    private static func viewBytes(_ state: InstanceState, historyBytes: Int) -> [UInt8] {
        var writer = JSONWriter(pretty: true, capacity: 1024)
        state.write(to: &writer, historyBytes: historyBytes)
        return view(members: writer.bytes, schema: state.schema)
    }

    /// The state file's text from its members' pretty text: `workflow_schema` sorts last of its
    /// keys, so the schema's cached text is spliced in before the closing brace.
    private static func view(members: [UInt8], schema: WorkflowSchema) -> [UInt8] {
        let schema = SchemaCache.prettyText(schema)
        var bytes = members
        bytes.reserveCapacity(members.count + schema.count + 32)
        bytes.removeLast(2)   // "\n}"
        bytes.append(contentsOf: viewSchemaHead)
        bytes.append(contentsOf: schema)
        bytes.append(contentsOf: viewTail)
        return bytes
    }

    private static let viewSchemaHead = Array(",\n  \"workflow_schema\": ".utf8)
    private static let viewTail = Array("\n}\n".utf8)

    /// temp file, rename over: the file is old or new, never torn. With `directory`, durable when
    /// this returns (fdatasync before the rename, fsync of the directory after); without, a view
    /// whose content is durable elsewhere (a power cut may leave it old, empty or torn).
    static func replace(_ path: String, temp: String, bytes: [UInt8], directory: String?) throws(ChatFlowError) {
        do {
            let file = try FileDescriptor(opening: temp, flags: O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW)
            // Blocks allocated up front: ext4 otherwise allocates a renamed-over file's delayed
            // blocks inside `rename` (auto_da_alloc) and starts their writeback there, in the
            // instance's critical section. Unwritten extents read as zeros after a power cut,
            // which a reader recovers like any torn view.
            _ = chatflow_allocate(file.rawValue, Int64(bytes.count))
            try file.write(bytes, at: 0)
            if directory != nil { try file.syncData() }
        }
        if rename(temp, path) != 0 {
            throw .io(operation: "rename \(temp) to", path: path, errno: errno)
        }
        if let directory { try FileSystem.syncDirectory(directory) }
    }

    /// Creates the instance's directory and `tasks/` for a new instance.
    func createInstanceDirectories(_ id: String) throws(ChatFlowError) {
        try root.makeDirectories(layout.tasksDirectory(id))
    }

    /// A new instance's directory, `tasks/`, empty `history.ndjson` and `start.json`, durable (one
    /// directory sync at start instead of one at its first trigger), then its state file,
    /// durably: until `instances/` is synced the new directory may vanish in a power cut, and
    /// `start.json` with it, so the state file cannot lean on it yet (scripts/crash-check.py
    /// found that).
    func start(_ state: InstanceState) throws(ChatFlowError) {
        let id = state.instanceID
        try createInstanceDirectories(id)
        let history = try root.open(layout.historyFile(id), flags: O_WRONLY | O_CREAT)
        // Its first blocks allocated now (the size stays 0): the first commit then allocates
        // nothing, and its fdatasync writes no block bitmap or group descriptor.
        _ = chatflow_allocate_beyond_end(history.rawValue, Int64(StateStore.historyPreallocation))
        try writeStartFile(state)
        try FileSystem.syncDirectory(layout.instanceDirectory(id))
        try write(state, hasStart: true)
        try makeSpare(state)
    }

    /// Bytes allocated for a new instance's history (about 16 commit lines).
    static let historyPreallocation = 16 * 1024

    /// The view's spare for a new instance, so that no commit of it creates an inode (see
    /// `replaceView`): as long as this first view, its blocks allocated, and no data (zeros until
    /// the first commit writes its view there). No sync: it is never state, and a spare a power
    /// cut takes is simply made again by the next commit.
    private func makeSpare(_ state: InstanceState) throws(ChatFlowError) {
        // The checked view's length: its check replaces the opening brace (no CRC needed for that).
        let length = StateStore.viewBytes(state).count - 1 + StateStore.viewCheckLength
        let file = try FileDescriptor(opening: layout.stateTempFile(state.instanceID), flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW)
        if chatflow_allocate(file.rawValue, Int64(length)) != 0 { try file.truncate(to: length) }
    }

    /// Writes and syncs `start.json` (its directory entry is the caller's to sync). Written once,
    /// before any view of the instance needs it, so a plain write suffices.
    private func writeStartFile(_ state: InstanceState) throws(ChatFlowError) {
        let file = try root.open(layout.startFile(state.instanceID), flags: O_WRONLY | O_CREAT | O_TRUNC)
        try file.write(StateStore.viewBytes(state), at: 0)
        try file.syncData()
    }

    // MARK: History

    /// Commits entries closed by a change: appends them to `history.ndjson` at the committed
    /// length (first cutting off any tail a crashed writer left), the last line carrying the new
    /// state, without a sync, then appends the same lines to the store's commit log and syncs it:
    /// the commit point (a power cut that takes the history's lines leaves them in the log, and
    /// they are replayed before anyone reads). Then replaces the state file as a view, without
    /// syncs (after a power cut it is recovered from the line). Updates `historyBytes`. Call
    /// with the instance lock held.
    func commit(_ state: inout InstanceState, closing entries: [HistoryEntry]) throws(ChatFlowError) {
        let files = InstanceFiles(layout, state.instanceID)
        // `start` creates the file (and syncs its directory), so a first trigger need not; one
        // made by another writer, or before that, is created here and its directory synced.
        let file: FileDescriptor
        var created = false
        do {
            file = try root.open(files.history, flags: O_WRONLY)
        } catch {
            guard case .io(_, _, let code) = error, code == ENOENT else { throw error }
            try createInstanceDirectories(state.instanceID)
            file = try root.open(files.history, flags: O_WRONLY | O_CREAT)
            created = true
        }
        try commit(&state, closing: entries, to: file, size: try file.size(), files: files, created: created, hasStart: false)
    }

    /// `commit` into the history open as `file`, `size` bytes long; `hasStart` when this process
    /// knows that `start.json` exists.
    private func commit(
        _ state: inout InstanceState, closing entries: [HistoryEntry], to file: borrowing FileDescriptor, size: Int,
        files: InstanceFiles, created: Bool, hasStart: Bool
    ) throws(ChatFlowError) {
        let before = state
        let (lines, view) = StateStore.commitTexts(state, closing: entries)
        try StateStore.checkStorable(view, state.instanceID)
        if size < state.historyBytes {
            throw .corruptState(
                path: files.history, reason: "shorter (\(size) bytes) than the committed history_bytes \(state.historyBytes)")
        }
        if size > state.historyBytes { try file.truncate(to: state.historyBytes) }
        // An instance a format 1 writer started has no start file: this state (durable, as that
        // writer left it, and with the same schema) serves, written before the first commit line.
        let startMissing = !hasStart && !FileSystem.exists(files.start)
        if startMissing { try writeStartFile(before) }
        try file.write(lines, at: state.historyBytes)
        if created || startMissing { try FileSystem.syncDirectory(files.directory) }
        var unlogged = false
        do {
            // Lines too large for the log commit as format 2 did: by syncing the history itself.
            if try !commitLog.append(instance: state.instanceID, at: state.historyBytes, lines: lines) {
                try file.syncData()
                unlogged = true
            }
        } catch {
            // Not committed (no space for the log, an I/O error): the line must not be read as
            // a commit, which a reader finding it past the view would do.
            try? file.truncate(to: state.historyBytes)
            throw error
        }
        state.historyBytes += lines.count
        // Committed: an error from here on would report a change that stands as failed, and a
        // client that retries would make it twice. The view is a cache of the commit line; where
        // it cannot be written (a full disk cannot grow the spare) readers recover it from the line.
        if let written = try? StateStore.replaceView(files.state, temp: files.temp, view: view, durable: unlogged) {
            memo.remember(state, text: written, hasStart: true)
        }
    }

    /// The history lines of a commit: one per entry, the last carrying the new state (without
    /// `history_bytes`, which is where the line ends, and the schema, which `start.json` has).
    private static func commitLines(_ state: InstanceState, closing entries: [HistoryEntry]) -> [UInt8] {
        commitTexts(state, closing: entries).lines
    }

    /// A commit's history lines and its view (`viewBytes` of the state once `historyBytes` has
    /// grown by the lines).
    static func commitTexts(_ state: InstanceState, closing entries: [HistoryEntry]) -> (lines: [UInt8], view: [UInt8]) {
        var lines = JSONWriter(pretty: false, capacity: 2048)
        for (index, entry) in entries.enumerated() {
            entry.write(to: &lines, committing: index == entries.count - 1 ? state : nil)
            lines.append(raw: 0x0A)
        }
        let bytes = lines.bytes
        return (bytes, viewBytes(state, historyBytes: state.historyBytes + bytes.count))
    }


    // MARK: Moving between stores

    /// Writes an instance copied from another store (`chatflow migrate`) with its closed entries
    /// (those another store keeps apart from the state: not `foreignEntries`, not the open one):
    /// `history.ndjson` as one commit, `start.json` (the state as imported: it has the schema a
    /// recovery needs), then the state file, each durable. The state file comes last, so until it
    /// exists there is no instance, and an import cut off is simply run again.
    /// Throws `alreadyExists` when this store has the instance.
    package func importInstance(_ imported: InstanceState, closing entries: [HistoryEntry]) throws(ChatFlowError) {
        var state = imported
        let id = state.instanceID
        try withExclusiveLock(layout.lockFile(id)) { () throws(ChatFlowError) in
            if exists(id) { throw .alreadyExists(instanceID: id, store: layout.root) }
            try createInstanceDirectories(id)
            let lines = entries.isEmpty ? [] : StateStore.commitLines(state, closing: entries)
            state.historyBytes = lines.count
            let history = try root.open(layout.historyFile(id), flags: O_WRONLY | O_CREAT | O_TRUNC)
            try history.write(lines, at: 0)
            try history.syncData()
            try writeStartFile(state)
            try FileSystem.syncDirectory(layout.instanceDirectory(id))
            try write(state)
            try addToLink(feature: state.featureID, id: id)
        }
    }

    /// The closed history entries from index `start` on, read from the committed part of
    /// `history.ndjson`; lines before `start` are skipped without parsing.
    func closedHistory(of state: some HistoryPosition, from start: Int = 0) throws(ChatFlowError) -> [HistoryEntry] {
        try closedHistory(of: state, from: start, keepingLines: false).entries
    }

    /// The same, with each entry's stored line (compact JSON, checked) when `keepingLines`.
    func closedHistory(
        of state: some HistoryPosition, from start: Int, keepingLines: Bool
    ) throws(ChatFlowError) -> (entries: [HistoryEntry], lines: [ArraySlice<UInt8>]) {
        // Another writer's entries in the state file follow those committed to the file.
        let count = state.closedEntryCount - state.foreignEntries.count
        let foreign = Array(state.foreignEntries.dropFirst(max(0, start - count)))
        guard start < count else { return (foreign, []) }
        try ensureRecovered()
        let path = layout.historyFile(state.instanceID)
        let bytes: [UInt8]
        do {
            let file = try root.open(path, flags: O_RDONLY | O_NONBLOCK)
            bytes = try file.readAll(limit: StateStore.maximumHistoryBytes)
        } catch {
            if case .io(_, _, let code) = error, code == ENOENT {
                if count == 0 { return (foreign, []) }
                throw .corruptState(path: path, reason: "missing, but the state records \(count) closed entries")
            }
            throw error
        }
        guard bytes.count >= state.historyBytes else {
            throw .corruptState(path: path, reason: "shorter than the committed history_bytes \(state.historyBytes)")
        }
        var entries: [HistoryEntry] = []
        var lines: [ArraySlice<UInt8>] = []
        entries.reserveCapacity(count - start)
        var lineNumber = 0
        var lineStart = 0
        for offset in 0..<state.historyBytes where bytes[offset] == 0x0A {
            defer { lineNumber += 1; lineStart = offset + 1 }
            guard lineNumber >= start else { continue }
            do {
                let line = bytes[lineStart..<offset]
                // A commit line's state is not part of the entry: checked, not built.
                var members = try line.withUnsafeBytes { try JSONParser.parseMembers($0, skipping: StateStore.commitMembers) }
                entries.append(try HistoryEntry(json: .object(members)))
                if keepingLines {
                    if members[StateStore.commitMember] == nil {
                        lines.append(line)
                    } else {
                        members = try JSONValue(parsing: Array(line)).objectValue ?? [:]
                        members[StateStore.commitMember] = nil
                        var writer = JSONWriter(pretty: false, capacity: line.count)
                        writer.write(.object(members))
                        lines.append(writer.bytes[...])
                    }
                }
            } catch let error as JSONParseError {
                throw .corruptState(path: path, reason: "line \(lineNumber + 1): not valid JSON: \(error)")
            } catch let error as StateDecodingError {
                throw .corruptState(path: path, reason: "line \(lineNumber + 1): \(error.reason)")
            } catch {
                throw .corruptState(path: path, reason: "line \(lineNumber + 1): \(error)")
            }
        }
        guard lineNumber == count else {
            throw .corruptState(path: path, reason: "holds \(lineNumber) committed entries, the state records \(count)")
        }
        return (entries + foreign, lines)
    }

    /// Each entry of the whole history as compact JSON, in order: the committed lines of
    /// `history.ndjson` as stored (each checked as `history` checks it), then the rest written.
    package func historyText(of state: InstanceState) throws(ChatFlowError) -> [[UInt8]] {
        let (entries, lines) = try closedHistory(of: state, from: 0, keepingLines: true)
        var result = lines.map(Array.init)
        var rest = Array(entries.dropFirst(lines.count))
        if let open = state.currentEntry { rest.append(open) }
        for entry in rest {
            var writer = JSONWriter(pretty: false, capacity: 256)
            // Shown to readers: the open entry's claim without its token.
            writer.write(entry.report)
            result.append(writer.bytes)
        }
        return result
    }

    /// The whole history: closed entries then the open one.
    package func history(of state: some HistoryPosition, from start: Int = 0) throws(ChatFlowError) -> [HistoryEntry] {
        var entries = try closedHistory(of: state, from: start)
        if let open = state.currentEntry, start <= state.closedEntryCount { entries.append(open) }
        return entries
    }

    // MARK: Feature links

    /// Adds `id` to the feature's `.link` (sorted, comma-separated), replaced atomically under
    /// `.locks/features.lock`.
    func addToLink(feature: String, id: String) throws(ChatFlowError) {
        try withExclusiveLock(layout.featuresLockFile) { () throws(ChatFlowError) in
            var ids = try readLink(feature: feature)
            guard !ids.contains(id) else { return }
            ids.append(id)
            try writeLink(feature: feature, ids: ids)
        }
    }

    /// Rewrites a feature's link; call with the features lock held.
    func writeLink(feature: String, ids: [String]) throws(ChatFlowError) {
        let text = ids.sorted().joined(separator: ",")
        try StateStore.replace(
            layout.linkFile(feature), temp: layout.linkTempFile(feature), bytes: Array(text.utf8),
            directory: layout.featuresDirectory)
    }

    /// The ids in a feature's link (empty when there is none); malformed entries are skipped.
    func readLink(feature: String) throws(ChatFlowError) -> [String] {
        let path = layout.linkFile(feature)
        let bytes: [UInt8]
        do {
            let file = try FileDescriptor(opening: path, flags: O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
            bytes = try file.readAll(limit: StateStore.maximumStateBytes)
        } catch {
            if case .io(_, _, let code) = error, code == ENOENT { return [] }
            throw error
        }
        return String(decoding: bytes, as: UTF8.self)
            .split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == " " })
            .map(String.init)
            .filter(Identifiers.isInstanceID)
    }

    /// Ids of all state files in `instances/`, by name alone.
    func instanceIDs() throws(ChatFlowError) -> [String] {
        guard FileSystem.isDirectory(layout.instancesDirectory) else { return [] }
        return try FileSystem.list(layout.instancesDirectory).compactMap(Layout.instanceID(fromStateFileName:)).sorted()
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
