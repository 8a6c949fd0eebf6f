import ArgumentParser
import CSQLite
import ChatFlow
import ChatFlowHarness
import Foundation

import Glibc

/// What a user would pick instead of ChatFlow's store: SQLite in WAL mode with
/// `synchronous=FULL`, doing the same durable read-modify-write of a JSON state per trigger,
/// one transaction each (`BEGIN IMMEDIATE`: read, modify, write the state, append the history
/// entry, `COMMIT`).
final class SQLitePeer {
    private var db: OpaquePointer?
    private var select: OpaquePointer?
    private var update: OpaquePointer?
    private var append: OpaquePointer?
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(path: String) throws {
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK else {
            throw HarnessError.failed("sqlite open \(path)")
        }
        sqlite3_busy_timeout(db, 60_000)
        try exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
        try exec("CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, state TEXT NOT NULL); CREATE TABLE IF NOT EXISTS history (id TEXT NOT NULL, position INTEGER NOT NULL, entry TEXT NOT NULL, PRIMARY KEY (id, position));")
        select = try prepare("SELECT state FROM instances WHERE id = ?1")
        update = try prepare("UPDATE instances SET state = ?2 WHERE id = ?1")
        append = try prepare("INSERT INTO history (id, position, entry) VALUES (?1, ?2, ?3)")
    }

    deinit {
        for statement in [select, update, append] { sqlite3_finalize(statement) }
        sqlite3_close(db)
    }

    func exec(_ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { throw HarnessError.failed("sqlite: \(String(cString: sqlite3_errmsg(db)))") }
    }

    private func prepare(_ sql: String) throws -> OpaquePointer? {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else { throw HarnessError.failed("sqlite prepare: \(sql)") }
        return statement
    }

    func insert(id: String, state: String) throws {
        try exec("INSERT OR REPLACE INTO instances (id, state) VALUES ('\(id)', '\(state.replacingOccurrences(of: "'", with: "''"))')")
    }

    /// One trigger: the same work as ChatFlow's (parse the state, close its open entry, open the
    /// next, merge the data, write both back), durable on return.
    func trigger(_ id: String, data: [String: JSONValue]) throws {
        try exec("BEGIN IMMEDIATE")
        do {
            sqlite3_bind_text(select, 1, id, -1, Self.transient)
            guard sqlite3_step(select) == SQLITE_ROW, let text = sqlite3_column_text(select, 0) else { throw HarnessError.failed("no row \(id)") }
            var state = try JSONValue(parsing: String(cString: text)).objectValue ?? [:]
            sqlite3_reset(select)
            let now = Timestamps.unix()
            let position = state["history_length"]?.intValue ?? 1
            var closed = state["current_entry"]?.objectValue ?? [:]
            closed["ended_at"] = .number(JSONNumber(now))
            closed["status"] = "completed"
            closed["trigger_data_snapshot"] = .object(data)
            var variables = state["variables"]?.objectValue ?? [:]
            for (key, value) in data { variables[key] = value }
            state["variables"] = .object(variables)
            state["current_entry"] = ["phase": .string("p\(position)"), "started_at": .number(JSONNumber(now)), "status": "running", "ended_at": nil]
            state["history_length"] = .number(JSONNumber(position + 1))
            state["updated_at"] = .number(JSONNumber(now))
            sqlite3_bind_text(append, 1, id, -1, Self.transient)
            sqlite3_bind_int64(append, 2, sqlite3_int64(position - 1))
            sqlite3_bind_text(append, 3, JSONValue.object(closed).compactText, -1, Self.transient)
            guard sqlite3_step(append) == SQLITE_DONE else { throw HarnessError.failed("sqlite insert: \(String(cString: sqlite3_errmsg(db)))") }
            sqlite3_reset(append)
            sqlite3_bind_text(update, 1, id, -1, Self.transient)
            sqlite3_bind_text(update, 2, JSONValue.object(state).prettyText, -1, Self.transient)
            guard sqlite3_step(update) == SQLITE_DONE else { throw HarnessError.failed("sqlite update: \(String(cString: sqlite3_errmsg(db)))") }
            sqlite3_reset(update)
            try exec("COMMIT")
        } catch {
            try? exec("ROLLBACK")
            throw error
        }
    }
}

/// A process that triggers one SQLite row `--count` times (the 8-process peer).
struct SQLiteWriter: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sqlite-writer", abstract: "Trigger a SQLite row in a loop (a benchmark helper).")
    @Option(help: "The database file.") var database: String
    @Option(help: "The row id.") var id: String
    @Option(help: "Triggers to make.") var count: Int

    func run() throws {
        let peer = try SQLitePeer(path: database)
        for sequence in 0..<count { try peer.trigger(id, data: ["seq": .number(JSONNumber(sequence)), "pid": .number(JSONNumber(Int(getpid())))]) }
    }
}
