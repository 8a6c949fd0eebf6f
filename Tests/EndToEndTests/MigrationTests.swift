import ChatFlow
import ChatFlowPostgres
import ChatFlowTestSupport
import Foundation
import Testing

import Glibc

/// `chatflow migrate` between a watched file store and a real PostgreSQL server, both ways.
@Suite("chatflow migrate", .serialized, .enabled(if: TestDatabase.server != nil, "needs $CHATFLOW_TEST_POSTGRES (scripts/test.sh starts a server)"))
struct MigrationTests {
    private let writer = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("interop/writer.py").path

    /// Everything a reader sees of an instance, without the file store's byte position.
    private func snapshot(_ engine: WorkflowEngine, _ id: String) throws -> (state: JSONValue, history: [HistoryEntry]) {
        let state = try #require(try engine.freshStatus(id))
        guard case .object(var members) = state.json else { return (.null, []) }
        members["history_bytes"] = nil
        return (.object(members), try engine.history(id))
    }

    private func report(_ result: CommandResult) throws -> [String: JSONValue] {
        try #require(try JSONValue(parsing: Array(result.stdout.utf8)).objectValue, "\(result.stdout) \(result.stderr)")
    }

    @Test("files → PostgreSQL → files: states, histories and the hooks' progress carried; each watcher runs only what the last had not", .timeLimit(.minutes(3)))
    func roundTrip() async throws {
        let database = try TestDatabase()
        let files = Sandbox()
        files.hook("@any", files.recorder())
        var ids: [String] = []
        for _ in 0..<5 { ids.append(try files.engine.start(schema: devSchema, featureID: "f")) }
        // The file watcher runs transitions 0–2 of each instance, then stops.
        let watching = try Watcher(files, ["--hooks", files.hooks])
        #expect(await watching.ready())
        for _ in 0..<2 { for id in ids { try files.engine.trigger(id) } }
        #expect(await eventually { files.lines().count >= 15 })
        // Migrating while it runs is refused by name, and nothing is copied.
        let refused = try run("chatflow", ["migrate", "--from", files.root, "--to", database.url])
        #expect(refused.status == 1 && refused.stderr.contains("chatflow-watch"), "\(refused.stderr)")
        #expect(try database.sql("SELECT to_regclass('chatflow_instances') IS NULL") == "t\n", "not even the schema was applied")
        #expect(await watching.stop() == 0)
        // Transition 3 of each is left unrun; one instance moves on through the original v1.0
        // layout (its entries inline in the state file), so another writer's file travels too.
        for id in ids { try files.engine.trigger(id) }
        #expect(try runToEnd("/usr/bin/env", ["python3", writer, files.root, ids[0], "v1list", "1"]).status == 0)
        files.engine.invalidateAll()

        let forward = try report(run("chatflow", ["migrate", "--from", files.root, "--to", database.url, "--json"]))
        #expect(forward["instances"]?.intValue == 5)
        #expect(forward["pending_transitions"]?.intValue == 6, "transition 3 of each, and 4 of the one moved by Python")
        let database1 = try WorkflowEngine.postgres(url: database.url, root: Sandbox().root)
        for id in ids {
            let (state, history) = try snapshot(files.engine, id)
            let (copied, copiedHistory) = try snapshot(database1, id)
            #expect(copied == state, "\(id)")
            #expect(copiedHistory == history, "\(id)")
        }
        // Into a store that has them: refused (conflict), nothing changed.
        let again = try run("chatflow", ["migrate", "--from", files.root, "--to", database.url])
        #expect(again.status == 4 && again.stderr.contains("already exists"), "\(again.stderr)")
        #expect(try database.sql("SELECT count(*) FROM chatflow_instances") == "5\n")

        // The database's watcher runs exactly the transitions the file watcher had not.
        let shared = Sandbox()
        shared.hook("@any", shared.recorder())
        let pgWatcher = try Watcher(shared, ["--store", database.url, "--hooks", shared.hooks, "--poll", "0.2"])
        #expect(await pgWatcher.ready())
        #expect(await eventually { shared.lines().count >= 6 })
        // A new transition after them is a condition to await: once it ran, nothing else is queued.
        try database1.trigger(ids[1])
        #expect(await eventually { shared.lines().count >= 7 })
        #expect(try database.sql("SELECT count(*) FROM chatflow_dispatch WHERE status <> 'done'") == "0\n")
        let ran = transitionsByInstance(shared.lines())
        #expect(ran[ids[0]]?.map(\.0) == [3, 4])
        #expect(ran[ids[1]]?.map(\.0) == [3, 4])
        for id in ids[2...] { #expect(ran[id]?.map(\.0) == [3], "\(id)") }
        #expect(await pgWatcher.stop() == 0)

        // Back to files: the file watcher there has nothing left to run.
        let back = Sandbox()
        back.hook("@any", back.recorder())
        let backward = try report(run("chatflow", ["migrate", "--from", database.url, "--to", back.root, "--json"]))
        #expect(backward["instances"]?.intValue == 5)
        #expect(backward["pending_transitions"]?.intValue == 0)
        for id in ids {
            let (state, history) = try snapshot(database1, id)
            let (copied, copiedHistory) = try snapshot(back.engine, id)
            #expect(copied == state, "\(id)")
            #expect(copiedHistory == history, "\(id)")
        }
        #expect(try back.engine.featureStatus("f").totalInstances == 5, "the feature index was written")
        let report = try run("chatflow", ["--root", back.root, "doctor"])
        #expect(report.status == 0, "\(report.stdout)\(report.stderr)")
        let backWatcher = try Watcher(back, ["--hooks", back.hooks])
        #expect(await backWatcher.ready())
        try back.engine.trigger(ids[2])
        #expect(await eventually { back.lines().count >= 1 })
        #expect(back.lines() == ["\(ids[2]) 4 @completed"], "only the new transition ran")
        #expect(await backWatcher.stop() == 0)
    }

    @Test("bad arguments: two directories, or an unreachable server, are refused before anything is written")
    func refusals() throws {
        let a = Sandbox(), b = Sandbox()
        let both = try run("chatflow", ["migrate", "--from", a.root, "--to", b.root])
        #expect(both.status == 2 && both.stderr.contains("postgres://"), "\(both.stderr)")
        _ = try a.engine.start(schema: devSchema, featureID: "f")
        let unreachable = try run("chatflow", ["migrate", "--from", a.root, "--to", "postgres://nobody:secret@127.0.0.1:1/none"])
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr.contains("127.0.0.1:1") && !unreachable.stderr.contains("secret"), "\(unreachable.stderr)")
    }
}
