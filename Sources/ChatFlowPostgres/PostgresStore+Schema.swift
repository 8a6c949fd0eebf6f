import ChatFlow
import ChatFlowWatch
import Logging
import PostgresNIO
import Synchronization

/// The store's tables, created and migrated by number.
extension PostgresStore {
    /// Applies the migrations this version knows and the database lacks (one query when none).
    package func prepare() throws(ChatFlowError) {
        if prepared.load(ordering: .relaxed) { return }
        let applied = try appliedVersion()
        if applied > PostgresSchema.latestVersion { throw newerSchema(applied) }
        if applied < PostgresSchema.latestVersion { try migrate() }
        prepared.store(true, ordering: .relaxed)
    }

    /// The newest migration applied (0 for an empty database).
    package func appliedVersion() throws(ChatFlowError) -> Int {
        let found = try rows("SELECT to_regclass('chatflow_schema_migrations') IS NOT NULL", "look for the schema")
        let exists: Bool = try decode(found[0], Bool.self, "look for the schema")
        guard exists else { return 0 }
        let version = try rows("SELECT coalesce(max(version), 0)::bigint FROM chatflow_schema_migrations", "read the schema version")
        let number: Int64 = try decode(version[0], Int64.self, "read the schema version")
        return Int(number)
    }

    func migrate() throws(ChatFlowError) {
        try connector.withConnection { (connection) throws(ChatFlowError) in
            try transaction(on: connection, "migrate the schema") { () throws(ChatFlowError) in
                _ = try connector.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLock))", on: connection, "lock the schema")
                _ = try connector.query(
                    """
                    CREATE TABLE IF NOT EXISTS chatflow_schema_migrations (
                        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                    """, on: connection, "create the migrations table")
                let rows = try connector.query("SELECT coalesce(max(version), 0)::bigint FROM chatflow_schema_migrations", on: connection, "read the schema version")
                let number: Int64 = try decode(rows[0], Int64.self, "read the schema version")
                let applied = Int(number)
                if applied > PostgresSchema.latestVersion { throw newerSchema(applied) }
                for migration in PostgresSchema.migrations where migration.version > applied {
                    for statement in migration.statements {
                        _ = try connector.query(PostgresQuery(unsafeSQL: statement), on: connection, "apply migration \(migration.version)")
                    }
                    _ = try connector.query(
                        "INSERT INTO chatflow_schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                        on: connection, "record migration \(migration.version)")
                }
            }
        }
    }

    func newerSchema(_ applied: Int) -> ChatFlowError {
        .store(
            operation: "open the schema", store: description,
            reason: "the database is at schema version \(applied), newer than this chatflow's \(PostgresSchema.latestVersion); upgrade chatflow")
    }

    /// BEGIN, `body`, COMMIT; ROLLBACK when `body` throws. BEGIN is not waited for: its failure
    /// surfaces on the next statement.
    func transaction<T>(on connection: PostgresConnection, _ operation: String, _ body: () throws(ChatFlowError) -> T) throws(ChatFlowError) -> T {
        _ = connection.query("BEGIN", logger: PostgresStore.silent)
        let result: T
        do {
            result = try body()
        } catch {
            _ = try? connector.query("ROLLBACK", on: connection, operation)
            throw error
        }
        _ = try connector.query("COMMIT", on: connection, operation)
        return result
    }

    static let silent = Logger(label: "chatflow.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
}
