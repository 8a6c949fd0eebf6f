import CChatFlowShims
import Glibc

/// Reading an instance: the view, checked against its history and recovered when behind or torn.
extension StateStore {
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
    func withRecoveryLock<T>(
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

    func historySize(_ id: String) throws(ChatFlowError) -> Int {
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
    func readCommitted(
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

    /// The state file's bytes as a state: a failure when they are not JSON (what a power cut
    /// leaves of a view replaced without syncs: empty, zeros, a torn prefix, which the history
    /// can recover); thrown when they are JSON but not a valid state of `id` (corrupt, refused).
    func decodeView(
        _ bytes: [UInt8], _ id: String, path: String, skipping: Set<String>
    ) throws(ChatFlowError) -> Result<InstanceState, ChatFlowError> {
        if skipping.isEmpty, let known = memo.state(id, text: bytes) { return .success(known) }
        return try decodeText(bytes, id, path: path, skipping: skipping, staleCheckIsTorn: true)
    }

    /// `decodeView` without the memo: the text checked and decoded. A view that fails its check
    /// is a failure (torn) when `staleCheckIsTorn` (a read without the lock, which can overlap a
    /// rewrite, or a replay after a power cut); else it is decoded like any other writer's view.
    func decodeText(
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
    func startState(_ id: String) throws(ChatFlowError) -> InstanceState? {
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

    func readStateBytes(_ path: String) throws(ChatFlowError) -> [UInt8]? {
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

    static let schemaMember: Set<String> = ["workflow_schema"]
}
