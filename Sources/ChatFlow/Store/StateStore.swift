import Glibc

/// Reads and writes the files of one state directory, following the lock protocol of
/// docs/FORMAT.md: the file implementation of `WorkflowStore`. Internal: all access goes
/// through `WorkflowEngine` (and the watcher's read-only view), so no other code touches state files.
struct StateStore: Sendable {
    /// Larger state files are refused as corrupt rather than read into memory.
    static let maximumStateBytes = 16 << 20
    static let maximumHistoryBytes = 1 << 30

    let layout: Layout

    init(layout: Layout) { self.layout = layout }

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

    /// Reads one state fresh from disk; `nil` if the instance does not exist. No lock is needed:
    /// state files are only ever replaced by rename.
    package func read(_ id: String) throws(ChatFlowError) -> InstanceState? {
        try readWithText(id)?.state
    }

    /// The state and the exact bytes it was parsed from. Members named in `skipping` are
    /// checked but not built (they read as empty values of their kind).
    package func readWithText(_ id: String, skipping: Set<String> = []) throws(ChatFlowError) -> (state: InstanceState, text: [UInt8])? {
        let path = layout.stateFile(id)
        guard let bytes = try readStateBytes(path) else { return nil }
        let state = try StateStore.decodeState(bytes, path: path, skipping: skipping)
        guard state.instanceID == id else {
            throw .corruptState(path: path, reason: "instance_id '\(state.instanceID)' does not match the file name")
        }
        return (state, bytes)
    }

    private func readStateBytes(_ path: String) throws(ChatFlowError) -> [UInt8]? {
        do {
            let file = try FileDescriptor(opening: path, flags: O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
            return try file.readAll(limit: StateStore.maximumStateBytes)
        } catch {
            guard case .io(_, _, let code) = error else { throw error }
            if code == ENOENT { return nil }
            if code == ELOOP { throw .corruptState(path: path, reason: "is a symbolic link") }
            throw error
        }
    }

    /// Parses state bytes, reporting the path on failure.
    static func decodeState(_ bytes: [UInt8], path: String, skipping: Set<String> = []) throws(ChatFlowError) -> InstanceState {
        let json: JSONValue
        do {
            json = skipping.isEmpty
                ? try JSONValue(parsing: bytes)
                : .object(try bytes.withUnsafeBytes { try JSONParser.parseMembers($0, skipping: skipping) })
        } catch {
            throw .corruptState(path: path, reason: "not valid JSON: \(error)")
        }
        do {
            return try InstanceState(json: json)
        } catch {
            throw .corruptState(path: path, reason: error.reason)
        }
    }

    /// Atomically replaces the state file. Call with the instance lock held.
    func write(_ state: InstanceState) throws(ChatFlowError) {
        var writer = JSONWriter(pretty: true, capacity: 2048)
        writer.write(state.json)
        writer.append(newline: ())
        try StateStore.replace(
            layout.stateFile(state.instanceID), temp: layout.stateTempFile(state.instanceID),
            bytes: writer.bytes, directory: layout.instancesDirectory)
    }

    /// temp file, fdatasync, rename over, fsync the directory: the file is old or new, never torn,
    /// and once this returns the new one survives a power cut.
    static func replace(_ path: String, temp: String, bytes: [UInt8], directory: String) throws(ChatFlowError) {
        do {
            let file = try FileDescriptor(opening: temp, flags: O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW)
            try file.write(bytes, at: 0)
            try file.syncData()
        }
        if rename(temp, path) != 0 {
            throw .io(operation: "rename \(temp) to", path: path, errno: errno)
        }
        try FileSystem.syncDirectory(directory)
    }

    /// Creates the instance's directory and `tasks/` for a new instance.
    func createInstanceDirectories(_ id: String) throws(ChatFlowError) {
        try FileSystem.createDirectory(layout.tasksDirectory(id))
    }

    /// A new instance's directory, `tasks/` and empty `history.ndjson`, durable (one directory
    /// sync at start instead of one at its first trigger).
    func createInstanceFiles(_ id: String) throws(ChatFlowError) {
        try createInstanceDirectories(id)
        _ = try FileDescriptor(opening: layout.historyFile(id), flags: O_WRONLY | O_CREAT | O_NOFOLLOW)
        try FileSystem.syncDirectory(layout.instanceDirectory(id))
    }

    // MARK: History

    /// Appends a closed entry to `history.ndjson` at the committed length, first cutting off any
    /// tail a crashed writer left, and makes it durable. Updates `historyBytes`; the caller then
    /// writes the state, which is the commit point. Call with the instance lock held.
    package func appendHistory(_ entry: HistoryEntry, to state: inout InstanceState) throws(ChatFlowError) {
        let path = layout.historyFile(state.instanceID)
        var line = JSONWriter(pretty: false, capacity: 512)
        line.write(entry.json)
        line.append(newline: ())
        // `start` creates the file (and syncs its directory), so a first trigger need not; one
        // made by another writer, or before that, is created here and its directory synced.
        let file: FileDescriptor
        var created = false
        do {
            file = try FileDescriptor(opening: path, flags: O_WRONLY | O_NOFOLLOW)
        } catch {
            guard case .io(_, _, let code) = error, code == ENOENT else { throw error }
            try createInstanceDirectories(state.instanceID)
            file = try FileDescriptor(opening: path, flags: O_WRONLY | O_CREAT | O_NOFOLLOW)
            created = true
        }
        let size = try file.size()
        if size < state.historyBytes {
            throw .corruptState(
                path: path, reason: "shorter (\(size) bytes) than the committed history_bytes \(state.historyBytes)")
        }
        if size > state.historyBytes { try file.truncate(to: state.historyBytes) }
        try file.write(line.bytes, at: state.historyBytes)
        try file.syncData()
        if created { try FileSystem.syncDirectory(layout.instanceDirectory(state.instanceID)) }
        state.historyBytes += line.bytes.count
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
        let path = layout.historyFile(state.instanceID)
        let bytes: [UInt8]
        do {
            let file = try FileDescriptor(opening: path, flags: O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
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
                let json = try JSONValue(parsing: Array(bytes[lineStart..<offset]))
                entries.append(try HistoryEntry(json: json))
                if keepingLines { lines.append(bytes[lineStart..<offset]) }
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
            writer.write(entry.json)
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
    var closedEntryCount: Int { historyLength - (currentEntry == nil ? 0 : 1) }
}

extension InstanceState: HistoryPosition {}
extension InstanceSummary: HistoryPosition {}
