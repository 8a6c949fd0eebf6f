import CChatFlowShims
import Glibc

/// Changing an instance: one change as the only writer, and the commit (lines, then the commit log's record, then the view).
extension StateStore {
    /// `WorkflowStore.modify` with each file opened once: the history's descriptor tells whether
    /// the view is current (its size) and then takes the commit's lines, where the separate calls
    /// would `stat` the history, open it again and build every path twice.
    package func modify(
        _ id: String, _ change: (inout InstanceState) throws(ChatFlowError) -> [HistoryEntry],
        committed: (InstanceState) -> Void
    ) throws(ChatFlowError) -> InstanceState? {
        let files = InstanceFiles(layout, id)
        // Every instance started here has a lock file, so the `stat` of its state file (a path
        // walk per trigger) is needed only when it is missing (another writer's instance).
        let lock: FileDescriptor
        if let opened = try? FileDescriptor(opening: files.lock, flags: O_RDWR) {
            lock = opened
        } else {
            guard exists(id) else { return nil }
            lock = try openLock(files.lock)
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
        // Behind its history, torn, or its history missing or not writable here: read it
        // recovering what its history holds, then commit as any change does.
        guard var state = try readLocked(id, skipping: [])?.state else { return nil }
        let closed = try change(&state)
        try commit(&state, closing: closed, isNew: false)
        committed(state)
        return state
    }

    /// The seam's commit: `start` for a new instance, the view alone for a change that closed no
    /// entry (a claim), else the commit below into the history, opened here.
    ///
    /// Commits entries closed by a change: appends them to `history.ndjson` at the committed
    /// length (first cutting off any tail a crashed writer left), the last line carrying the new
    /// state, without a sync, then appends the same lines to the store's commit log and syncs it:
    /// the commit point (a power cut that takes the history's lines leaves them in the log, and
    /// they are replayed before anyone reads). Then replaces the state file as a view, without
    /// syncs (after a power cut it is recovered from the line). Updates `historyBytes`. Call
    /// with the instance lock held.
    package func commit(_ state: inout InstanceState, closing entries: [HistoryEntry], isNew: Bool) throws(ChatFlowError) {
        if isNew { return try start(state) }
        if entries.isEmpty { return try write(state) }
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
    func commit(
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
    static func commitLines(_ state: InstanceState, closing entries: [HistoryEntry]) -> [UInt8] {
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
}
