import CChatFlowShims
import Glibc

/// The history file, read back; instances moved in from another store.
extension StateStore {
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
}
