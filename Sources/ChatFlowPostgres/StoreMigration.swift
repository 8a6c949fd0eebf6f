import ChatFlow
import ChatFlowWatch
import PostgresNIO

/// `chatflow migrate`: copies every instance, with its history and how far its hooks have run
/// (the file watcher's ledger, the database's dispatch rows), from a file store to a PostgreSQL
/// store or back (docs/SCALE-OUT.md). The source is read whole first, under each instance's lock
/// (files) or in one snapshot (database); nothing is written when any instance is unreadable or
/// already exists at the destination.
package enum StoreMigration {
    /// What a migration copied.
    package struct Report: Sendable {
        package var source: String
        package var destination: String
        package var instances = 0
        package var entries = 0
        /// Transitions whose hooks have not run yet: the destination's watcher runs them.
        package var pending = 0

        package var json: JSONValue {
            .object([
                "from": .string(source), "to": .string(destination), "instances": JSONValue(instances),
                "history_entries": JSONValue(entries), "pending_transitions": JSONValue(pending),
            ])
        }
    }

    /// An instance on its way: its state, its closed entries (none left inline), and
    /// the first transition whose hooks have not all run (`nil`: never watched, so all of them).
    struct Moving {
        var state: InstanceState
        var entries: [HistoryEntry]
        var next: Int?

        var transitions: [Transition] {
            var whole = entries
            if let open = state.currentEntry { whole.append(open) }
            return TransitionDetector.transitions(of: InstanceSummary(state), from: 0) { start in
                Array(whole.dropFirst(start))
            }.transitions
        }

        func pending(_ transitions: [Transition]) -> Int {
            transitions.filter { $0.position >= (next ?? 0) }.count
        }
    }

    /// Copies `source` to `destination`: one is a state directory, the other a `postgres://` URL.
    package static func migrate(from source: String, to destination: String) throws(ChatFlowError) -> Report {
        switch (StoreSelection.isPostgres(source), StoreSelection.isPostgres(destination)) {
        case (false, true):
            let store = try PostgresStore(url: destination)
            let root = try StateDirectory.find(explicit: source)
            var report = Report(source: root, destination: store.description)
            let instances = try withWatcherStopped(Layout(root: root)) { () throws(ChatFlowError) in try readFiles(root) }
            try store.importInstances(instances, into: &report)
            return report
        case (true, false):
            let store = try PostgresStore(url: source)
            let root = StateDirectory.forCreating(explicit: destination)
            var report = Report(source: store.description, destination: root)
            let instances = try store.exportInstances()
            try withWatcherStopped(Layout(root: root)) { () throws(ChatFlowError) in
                try writeFiles(instances, root: root, into: &report)
            }
            return report
        default:
            throw .invalidJSON(
                what: "migrate --from/--to",
                reason: "give a state directory on one side and a postgres:// URL on the other")
        }
    }

    /// Holds the directory's watcher lock meanwhile, so its ledger is not moving: a running
    /// `chatflow-watch` is refused by name.
    private static func withWatcherStopped<T>(_ layout: Layout, _ body: () throws(ChatFlowError) -> T) throws(ChatFlowError) -> T {
        try FileSystem.createDirectory(layout.locksDirectory)
        let (lock, holder) = try LockFile.tryAcquire(layout.watchLockFile)
        guard let lock else {
            throw .store(
                operation: "migrate", store: layout.root,
                reason: "chatflow-watch (pid \(holder.isEmpty ? "?" : holder)) is running on it; stop it first, so that its progress is copied whole")
        }
        defer { withExtendedLifetime(lock) {} }
        return try body()
    }

    private static func readFiles(_ root: String) throws(ChatFlowError) -> [Moving] {
        let positions = try Ledger.positions(in: Layout(root: root))
        return try WorkflowEngine(root: root).storedInstances().map { stored in
            Moving(state: stored.state, entries: stored.entries, next: positions[stored.state.instanceID])
        }
    }

    private static func writeFiles(_ instances: [Moving], root: String, into report: inout Report) throws(ChatFlowError) {
        let layout = Layout(root: root)
        let engine = WorkflowEngine(root: root)
        try engine.prepare()
        if let taken = instances.first(where: { engine.hasInstance($0.state.instanceID) }) {
            throw .alreadyExists(instanceID: taken.state.instanceID, store: root)
        }
        // The ledger first: a position for an instance not yet copied is never read, and an
        // instance copied before its position would have its hooks run again.
        let ledger = try Ledger(layout: layout)
        for moving in instances {
            try ledger.reset(moving.state.instanceID, to: moving.next ?? 0)
        }
        for moving in instances {
            try engine.importInstance(WorkflowEngine.StoredInstance(state: moving.state, entries: moving.entries))
            report.instances += 1
            report.entries += moving.entries.count
            report.pending += moving.pending(moving.transitions)
        }
    }
}

extension PostgresStore {
    /// Every instance, its history and its first transition not done, in one snapshot.
    func exportInstances() throws(ChatFlowError) -> [StoreMigration.Moving] {
        try prepare()
        return try connector.withConnection { (connection) throws(ChatFlowError) -> [StoreMigration.Moving] in
            _ = try connector.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", on: connection, "read a snapshot")
            defer { _ = try? connector.query("COMMIT", on: connection, "read a snapshot") }
            let held = try connector.query(
                "SELECT count(*)::bigint FROM chatflow_dispatch WHERE status = 'running' AND lease_until > now()", on: connection,
                "look for running watchers")
            let running: Int64 = try decode(held[0], Int64.self, "look for running watchers")
            if running > 0 {
                throw .store(
                    operation: "migrate", store: description,
                    reason: "watchers are running \(running) transitions' hooks; stop every chatflow-watch on this store first")
            }
            var entries: [String: [HistoryEntry]] = [:]
            for row in try connector.query("SELECT instance_id, entry FROM chatflow_history ORDER BY instance_id, position", on: connection, "read histories") {
                let (id, text) = try decode(row, (String, String).self, "read histories")
                do {
                    entries[id, default: []].append(try HistoryEntry(json: try JSONValue(parsing: Array(text.utf8))))
                } catch {
                    throw .corruptState(path: "\(description) history of \(id)", reason: "entry \(entries[id]?.count ?? 0): \(error)")
                }
            }
            var next: [String: Int] = [:]
            for row in try connector.query(
                """
                SELECT instance_id, coalesce(min(position) FILTER (WHERE status <> 'done'), -1)::bigint FROM chatflow_dispatch
                GROUP BY instance_id
                """, on: connection, "read the dispatch state")
            {
                let (id, open) = try decode(row, (String, Int64).self, "read the dispatch state")
                next[id] = Int(open)
            }
            var instances: [StoreMigration.Moving] = []
            for row in try connector.query("SELECT id, state FROM chatflow_instances ORDER BY id COLLATE \"C\"", on: connection, "read instances") {
                let (id, text) = try decode(row, (String, String).self, "read instances")
                var state = try decodeState(text, id: id, skipping: []).state
                let stored = entries[id] ?? []
                guard stored.count == state.closedEntryCount - state.foreignEntries.count else {
                    throw .corruptState(
                        path: "\(description) history of \(id)",
                        reason: "holds \(stored.count) entries, the state records \(state.closedEntryCount - state.foreignEntries.count)")
                }
                let kept = stored + state.foreignEntries
                state.foreignEntries = []
                state.foreignLayout = nil
                // Every transition done: the watcher's position is past the last one.
                let position = next[id].map { $0 < 0 ? TransitionDetector.end(of: InstanceSummary(state)) : $0 }
                instances.append(StoreMigration.Moving(state: state, entries: kept, next: position))
            }
            return instances
        }
    }

    /// Inserts the instances, their histories and their dispatch rows (done before `next`,
    /// pending from it, so this store's watchers run what the source's had not) in one
    /// transaction, notifying each id on commit.
    func importInstances(_ instances: [StoreMigration.Moving], into report: inout StoreMigration.Report) throws(ChatFlowError) {
        try prepare()
        let ids = instances.map(\.state.instanceID)
        try connector.withConnection { (connection) throws(ChatFlowError) in
            try transaction(on: connection, "migrate into \(description)") { () throws(ChatFlowError) in
                let taken = try connector.query(
                    "SELECT id FROM chatflow_instances WHERE id = ANY(\(ids)) ORDER BY id COLLATE \"C\" LIMIT 1", on: connection,
                    "look for existing instances")
                if let row = taken.first {
                    throw .alreadyExists(instanceID: try decode(row, String.self, "look for existing instances"), store: description)
                }
                for moving in instances {
                    let state = moving.state
                    let id = state.instanceID
                    let text = String(decoding: StateStore.viewBytes(state), as: UTF8.self)
                    let positions = moving.entries.indices.map { Int64($0) }
                    let entryTexts = moving.entries.map { $0.json.compactText }
                    let transitions = moving.transitions
                    let statuses = transitions.map { $0.position < (moving.next ?? 0) ? "done" : "pending" }
                    _ = try connector.query(
                        """
                        WITH i AS (
                            INSERT INTO chatflow_instances
                                (id, feature_id, workflow_name, current_phase, status, version, change_seq, state, created_at, updated_at)
                            VALUES (\(id), \(state.featureID), \(state.workflowName), \(state.currentPhase), \(state.status.rawValue), 1,
                                nextval('chatflow_change_seq'), \(text), \(state.createdAt), \(state.updatedAt))
                            RETURNING change_seq),
                        h AS (
                            INSERT INTO chatflow_history (instance_id, position, entry)
                            SELECT \(id), p, e FROM unnest(\(positions)::bigint[], \(entryTexts)::text[]) AS x(p, e)),
                        d AS (
                            INSERT INTO chatflow_dispatch (instance_id, position, event, change_seq, transition, state_text, status, owner, finished_at, succeeded)
                            SELECT \(id), p, e, i.change_seq, t, \(text), s,
                                CASE WHEN s = 'done' THEN 'migrate' END, CASE WHEN s = 'done' THEN now() END, CASE WHEN s = 'done' THEN true END
                            FROM i, unnest(\(transitions.map { Int64($0.position) })::bigint[], \(transitions.map(\.event))::text[],
                                \(transitions.map { PostgresTransitions.text($0) })::text[], \(statuses)::text[]) AS x(p, e, t, s))
                        SELECT pg_notify(\(PostgresSchema.channel), \(id)) FROM i
                        """, on: connection, "copy \(id)")
                    report.instances += 1
                    report.entries += moving.entries.count
                    report.pending += moving.pending(transitions)
                }
            }
        }
    }
}
