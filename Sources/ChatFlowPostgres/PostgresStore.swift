import ChatFlow
import ChatFlowWatch
import Logging
import PostgresNIO
import Synchronization

/// Instances, histories and the feature index in PostgreSQL, with the file store's semantics
/// and optimistic concurrency: a change reads the row and its `version`, and commits in one
/// statement (its own transaction) that updates the row where the version is still the one
/// read (compare-and-set) and, only then, inserts the history entries it closed, records the
/// transitions it made for the watchers, and sends `pg_notify` with the instance id. When
/// another writer committed in between, the statement changes nothing and the change runs again
/// on the new state (its guards, a claim token or an expected transition, checked again), this
/// time inside `BEGIN … SELECT … FOR UPDATE … COMMIT`, which cannot lose. Two round trips per
/// uncontended trigger instead of four; the commit is the durable point (the server's
/// `synchronous_commit`).
package final class PostgresStore: WorkflowStore {
    package let connector: PostgresConnector
    let prepared = Atomic<Bool>(false)

    /// The change `withInstanceLock` runs on this thread, for the calls made inside it.
    final class Transaction: Sendable {
        let store: ObjectIdentifier
        let connection: PostgresConnection
        /// What `readLocked` saw: the row's version and where its transitions ended.
        let read = Mutex<(version: Int64, end: Int)?>(nil)
        /// Set when the commit found the row at another version: the change is run again.
        let lostRace = Atomic<Bool>(false)
        /// The second run, inside `BEGIN … COMMIT` with the row read `FOR UPDATE`: it cannot lose
        /// again, and under contention it waits in the server's lock queue instead of retrying.
        let locking: Bool
        init(store: ObjectIdentifier, connection: PostgresConnection, locking: Bool) {
            self.store = store
            self.connection = connection
            self.locking = locking
        }
    }
    @TaskLocal static var transaction: Transaction?

    package init(url: String) throws(ChatFlowError) {
        connector = PostgresConnector(location: try PostgresLocation(url: url))
    }

    package var description: String { connector.location.description }

    var current: Transaction? {
        guard let transaction = PostgresStore.transaction, transaction.store == ObjectIdentifier(self) else { return nil }
        return transaction
    }

    /// Runs one statement, inside the current transaction when there is one.
    package func rows(_ query: PostgresQuery, _ operation: String) throws(ChatFlowError) -> [PostgresRow] {
        if let current { return try connector.query(query, on: current.connection, operation) }
        return try connector.withConnection { (connection) throws(ChatFlowError) in try connector.query(query, on: connection, operation) }
    }

    package func decode<each T: PostgresDecodable>(_ row: PostgresRow, _ types: (repeat each T).Type, _ operation: String) throws(ChatFlowError) -> (repeat each T) {
        do {
            return try row.decode(types)
        } catch {
            throw connector.storeError(operation, error)
        }
    }

    // MARK: WorkflowStore

    package func exists(_ id: String) -> Bool {
        (try? rows("SELECT 1 FROM chatflow_instances WHERE id = \(id)", "look up \(id)").isEmpty == false) ?? false
    }

    /// Runs `body` on one connection; when its commit lost the compare-and-set to another
    /// writer (nothing was written), runs it again holding the row lock, so `body` acts only
    /// through `commit`.
    package func withInstanceLock<T>(_ id: String, _ body: () throws(ChatFlowError) -> T) throws(ChatFlowError) -> T {
        if current != nil { return try body() }
        return try connector.withConnection { (connection) throws(ChatFlowError) -> T in
            func attempt(locking: Bool) throws(ChatFlowError) -> (T?, lost: Bool) {
                let held = Transaction(store: ObjectIdentifier(self), connection: connection, locking: locking)
                do {
                    return (try PostgresStore.$transaction.withValue(held) { try body() }, false)
                } catch let error as ChatFlowError {
                    if held.lostRace.load(ordering: .relaxed) { return (nil, true) }
                    throw error
                } catch {
                    throw connector.storeError("change \(id)", error)
                }
            }
            let (result, lost) = try attempt(locking: false)
            if let result, !lost { return result }
            return try transaction(on: connection, "change \(id)") { () throws(ChatFlowError) -> T in
                let (result, lost) = try attempt(locking: true)
                guard let result, !lost else {
                    throw .store(operation: "change \(id)", store: description, reason: "its row changed under the row lock (a writer that does not take it?)")
                }
                return result
            }
        }
    }

    /// Any id may be changed: there is no lock file to create for an unknown one.
    package func mayLock(_ id: String) -> Bool { true }

    package func read(_ id: String) throws(ChatFlowError) -> InstanceState? {
        try readWithText(id, skipping: [], waitingForWriter: true)?.state
    }

    package func readWithText(
        _ id: String, skipping: Set<String>, waitingForWriter: Bool
    ) throws(ChatFlowError) -> (state: InstanceState, text: [UInt8])? {
        // A reader never waits for a writer: MVCC shows the last committed row.
        let found = try rows("SELECT state FROM chatflow_instances WHERE id = \(id)", "read \(id)")
        guard let row = found.first else { return nil }
        return try decodeState(try decode(row, String.self, "read \(id)"), id: id, skipping: skipping)
    }

    package func readLocked(_ id: String, skipping: Set<String>) throws(ChatFlowError) -> (state: InstanceState, text: [UInt8])? {
        let found = try rows(
            current?.locking == true
                ? "SELECT state, version FROM chatflow_instances WHERE id = \(id) FOR UPDATE"
                : "SELECT state, version FROM chatflow_instances WHERE id = \(id)",
            "read \(id)")
        guard let row = found.first else { return nil }
        let (text, version) = try decode(row, (String, Int64).self, "read \(id)")
        let read = try decodeState(text, id: id, skipping: skipping)
        current?.read.withLock { $0 = (version, TransitionDetector.end(of: InstanceSummary(read.state))) }
        return read
    }

    func decodeState(_ text: String, id: String, skipping: Set<String>) throws(ChatFlowError) -> (state: InstanceState, text: [UInt8]) {
        let bytes = Array(text.utf8)
        let state = try StateStore.decodeState(bytes, path: "\(description) instance \(id)", skipping: skipping)
        guard state.instanceID == id else {
            throw .corruptState(path: "\(description) instance \(id)", reason: "its state names instance \(state.instanceID)")
        }
        return (state, bytes)
    }

    package func commit(_ state: inout InstanceState, closing entries: [HistoryEntry], isNew: Bool) throws(ChatFlowError) {
        let id = state.instanceID
        let text = String(decoding: StateStore.viewBytes(state), as: UTF8.self)
        let firstPosition = Int64(state.closedEntryCount - entries.count)
        let positions = entries.indices.map { firstPosition + Int64($0) }
        let entryTexts = entries.map { $0.json.compactText }
        let before = current?.read.withLock { $0 }
        let (transitions, _) = TransitionDetector.transitions(of: InstanceSummary(state), from: isNew ? 0 : before?.end ?? 0) { start in
            try? self.history(of: state, from: start)
        }
        let transitionPositions = transitions.map { Int64($0.position) }
        let events = transitions.map(\.event)
        let transitionTexts = transitions.map { PostgresTransitions.text($0) }
        let phase = state.currentPhase, status = state.status.rawValue
        let found: [PostgresRow]
        if isNew {
            found = try rows(
                """
                WITH i AS (
                    INSERT INTO chatflow_instances
                        (id, feature_id, workflow_name, current_phase, status, version, change_seq, state, created_at, updated_at)
                    VALUES (\(id), \(state.featureID), \(state.workflowName), \(phase), \(status), 1,
                        nextval('chatflow_change_seq'), \(text), \(state.createdAt), \(state.updatedAt))
                    RETURNING change_seq),
                d AS (
                    INSERT INTO chatflow_dispatch (instance_id, position, event, change_seq, transition, state_text)
                    SELECT \(id), p, e, i.change_seq, t, \(text) FROM i, unnest(\(transitionPositions)::bigint[], \(events)::text[], \(transitionTexts)::text[]) AS x(p, e, t))
                SELECT change_seq, pg_notify(\(PostgresSchema.channel), \(id)) FROM i
                """, "start \(id)")
        } else {
            guard let before else {
                throw .store(operation: "commit \(id)", store: description, reason: "the instance was not read under its lock (a bug)")
            }
            // The history and dispatch rows are written FROM u: nothing when the version moved on.
            found = try rows(
                """
                WITH u AS (
                    UPDATE chatflow_instances SET state = \(text), current_phase = \(phase), status = \(status),
                        updated_at = \(state.updatedAt), version = version + 1, change_seq = nextval('chatflow_change_seq')
                    WHERE id = \(id) AND version = \(before.version)
                    RETURNING change_seq),
                h AS (
                    INSERT INTO chatflow_history (instance_id, position, entry)
                    SELECT \(id), p, e FROM u, unnest(\(positions)::bigint[], \(entryTexts)::text[]) AS x(p, e)),
                d AS (
                    INSERT INTO chatflow_dispatch (instance_id, position, event, change_seq, transition, state_text)
                    SELECT \(id), p, e, u.change_seq, t, \(text) FROM u, unnest(\(transitionPositions)::bigint[], \(events)::text[], \(transitionTexts)::text[]) AS x(p, e, t))
                SELECT change_seq, pg_notify(\(PostgresSchema.channel), \(id)) FROM u
                """, "commit \(id)")
        }
        guard !found.isEmpty else {
            // Another writer committed since the read: nothing was written; `withInstanceLock`
            // runs the change again on the new state.
            current?.lostRace.store(true, ordering: .relaxed)
            throw .transitionMismatch(instanceID: id, expected: state.lastTransition, actual: -1)
        }
        current?.read.withLock { $0 = ((before?.version ?? 0) + 1, TransitionDetector.end(of: InstanceSummary(state))) }
    }

    package func history(of state: some HistoryPosition, from start: Int) throws(ChatFlowError) -> [HistoryEntry] {
        let count = state.closedEntryCount - state.foreignEntries.count
        var entries: [HistoryEntry] = []
        if start < count {
            let id = state.instanceID
            let found = try rows(
                """
                SELECT entry FROM chatflow_history WHERE instance_id = \(id) AND position >= \(Int64(start)) AND position < \(Int64(count))
                ORDER BY position
                """, "read the history of \(id)")
            guard found.count == count - start else {
                throw .corruptState(path: "\(description) history of \(id)", reason: "holds \(found.count) entries from \(start), the state records \(count - start)")
            }
            for row in found {
                let text = try decode(row, String.self, "read the history of \(id)")
                do {
                    entries.append(try HistoryEntry(json: try JSONValue(parsing: Array(text.utf8))))
                } catch {
                    throw .corruptState(path: "\(description) history of \(id)", reason: "entry \(start + entries.count): \(error)")
                }
            }
        }
        entries += state.foreignEntries.dropFirst(max(0, start - count))
        if let open = state.currentEntry, start <= state.closedEntryCount { entries.append(open) }
        return entries
    }

    /// Nothing to do: the feature index is a query over `chatflow_instances` (indexed).
    package func addToFeature(_ feature: String, id: String) throws(ChatFlowError) {}

    package func instanceIDs(feature: String?) throws(ChatFlowError) -> [String] {
        let found: [PostgresRow]
        if let feature {
            found = try rows("SELECT id FROM chatflow_instances WHERE feature_id = \(feature) ORDER BY id COLLATE \"C\"", "list feature \(feature)")
        } else {
            found = try rows("SELECT id FROM chatflow_instances ORDER BY id COLLATE \"C\"", "list instances")
        }
        var ids: [String] = []
        ids.reserveCapacity(found.count)
        for row in found { ids.append(try decode(row, String.self, "list instances")) }
        return ids
    }
}

extension WorkflowEngine {
    /// An engine whose instances live in the PostgreSQL database at `url`
    /// (`postgres://user[:password]@host[:port]/database`); `root` keeps this host's hooks,
    /// hook runs and artifacts.
    public static func postgres(url: String, root: String = WorkflowEngine.defaultRoot()) throws(ChatFlowError) -> WorkflowEngine {
        WorkflowEngine(root: root, store: try PostgresStore(url: url))
    }
}
