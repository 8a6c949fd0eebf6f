import ChatFlow
import ChatFlowPostgres
import ChatFlowTestSupport
import ChatFlowWatch
import Foundation
import Synchronization
import Testing

import Glibc

/// The PostgreSQL store through the real binaries and a real server: `chatflow --store` (which
/// execs chatflow-pg), and watchers in separate processes sharing the dispatch table.
@Suite("PostgreSQL across processes", .serialized, .enabled(if: TestDatabase.server != nil, "needs $CHATFLOW_TEST_POSTGRES (scripts/test.sh starts a server)"))
struct PostgresTests {
    /// A watcher on the database with a short lease, hooks from `hooks`.
    private func watcher(_ sandbox: Sandbox, _ database: TestDatabase, hooks: String, lease: Double = 2, extra: [String] = []) throws -> Watcher {
        try Watcher(sandbox, ["--store", database.url, "--hooks", hooks, "--lease", "\(lease)", "--poll", "0.2", "--jobs", "4"] + extra)
    }

    @Test("8 processes × 100 `chatflow --store … trigger` on one instance lose no update", .timeLimit(.minutes(3)))
    func contention() async throws {
        let database = try TestDatabase()
        let sandbox = Sandbox()
        try run("chatflow", ["--store", database.url, "--root", sandbox.root, "init"])
        let (id, allSucceeded) = try contendedTriggers(sandbox, store: database.url)
        #expect(allSucceeded)
        let engine = try WorkflowEngine.postgres(url: database.url, root: sandbox.root)
        let state = try #require(try engine.freshStatus(id))
        #expect(state.historyLength == 801)
        #expect(try engine.history(id).map(\.phase) == (0...800).map { "p\($0)" })
        let status = try run("chatflow", ["--store", database.url, "status", id, "--json"])
        #expect(status.status == 0 && status.stdout.contains("\"p800\""))
        // `wait` and `claim --wait` on a database store see other hosts' commits through LISTEN
        // (`wait` never polls, so without a notification it would time out).
        let waiter = Process()
        waiter.executableURL = binaries.appendingPathComponent("chatflow")
        waiter.arguments = ["--store", database.url, "--root", sandbox.root, "wait", id, "--phase", "p801", "--timeout", "30"]
        let output = Pipe()
        waiter.standardOutput = output
        try waiter.run()
        try engine.trigger(id)   // before or after the waiter's first read: either way it sees p801
        waiter.waitUntilExit()
        #expect(waiter.terminationStatus == 0)
        #expect(String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("p801"))
        // Its recheck is every 5 s: a 3 s timeout is met only through the notification.
        let claimer = Process()
        claimer.executableURL = binaries.appendingPathComponent("chatflow")
        claimer.arguments = ["--store", database.url, "--root", sandbox.root, "claim", "--phase", "late", "--as", "agent", "--wait", "--timeout", "3"]
        let granted = Pipe()
        claimer.standardOutput = granted
        try claimer.run()
        // Once it listens (its first look may or may not see the start: either order is correct).
        #expect(await eventually {
            (try? database.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'")) == "1\n"
        })
        let late = try engine.start(schema: WorkflowSchema(name: "w", phaseNames: ["late"]), featureID: "f")
        claimer.waitUntilExit()
        #expect(claimer.terminationStatus == 0)
        #expect(String(decoding: granted.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).hasPrefix(late))
    }

    @Test("two watchers (two processes) run every hook of 1,000 transitions exactly once between them, in order per instance", .timeLimit(.minutes(3)))
    func twoWatchers() async throws {
        let database = try TestDatabase()
        let a = Sandbox(), b = Sandbox()
        a.hook("@any", a.recorder())
        let engine = try WorkflowEngine.postgres(url: database.url, root: a.root)
        try engine.prepare()
        let first = try watcher(a, database, hooks: a.hooks)
        let second = try watcher(b, database, hooks: a.hooks)
        #expect(await first.ready())
        #expect(await second.ready())
        // 200 instances × (start + 4 triggers, the last completing) = 1,000 transitions.
        var ids: [String] = []
        for _ in 0..<200 { ids.append(try engine.start(schema: devSchema, featureID: "f")) }
        for _ in 0..<4 { for id in ids { try engine.trigger(id) } }
        #expect(await eventually(timeout: 90) { a.lines().count >= 1000 })
        try await Task.sleep(for: .milliseconds(500))   // a duplicate would land meanwhile
        let lines = a.lines()
        #expect(lines.count == 1000)
        #expect(Set(lines).count == 1000)
        for (id, seen) in transitionsByInstance(lines) {
            #expect(seen.map(\.0) == [0, 1, 2, 3, 4], "\(id)")
        }
        let byOwner = try database.sql("SELECT count(DISTINCT owner) FROM chatflow_dispatch WHERE status = 'done'")
        #expect(byOwner == "2\n", "both watchers took work")
        #expect(await first.stop() == 0)
        #expect(await second.stop() == 0)
    }

    @Test("SIGKILL of one watcher mid-hook: the other takes its transitions over once their leases end; nothing is left without its hooks, duplicates only of what it held", .timeLimit(.minutes(3)))
    func watcherKilled() async throws {
        let database = try TestDatabase()
        let a = Sandbox(), b = Sandbox()
        // Each hook records its start, then works a while: the kill lands inside hooks.
        a.hook("@any", "echo \"$CHATFLOW_INSTANCE_ID $CHATFLOW_TRANSITION $CHATFLOW_EVENT\" >> \(a.directory)/record.log; sleep 0.3")
        let engine = try WorkflowEngine.postgres(url: database.url, root: a.root)
        try engine.prepare()
        let victim = try watcher(a, database, hooks: a.hooks)
        #expect(await victim.ready())
        var ids: [String] = []
        for _ in 0..<20 { ids.append(try engine.start(schema: devSchema, featureID: "f")) }
        for _ in 0..<2 { for id in ids { try engine.trigger(id) } }
        #expect(await eventually { a.lines().count >= 8 })
        let held = try database.sql("SELECT count(*) FROM chatflow_dispatch WHERE status = 'running'")
        await victim.kill9()
        let heldAtKill = Int(held.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        let survivor = try watcher(b, database, hooks: a.hooks)
        #expect(await survivor.ready())
        #expect(await eventually(timeout: 60) { (try? database.sql("SELECT count(*) FROM chatflow_dispatch WHERE status <> 'done'")) == "0\n" })
        let lines = a.lines()
        let unique = Set(lines)
        #expect(unique.count == 60, "every transition's hook ran")
        // Only what the victim held when it died can run twice (docs/SCALE-OUT.md: the window
        // is the lease); it held at most --jobs (4), and at least one (the kill was mid-hook).
        #expect(lines.count - unique.count <= 4)
        #expect(heldAtKill <= 4)
        #expect(try database.sql("SELECT count(*) FROM chatflow_dispatch WHERE attempt > 1") != "0\n", "the survivor took over a lease")
        #expect(survivor.log.contains("took over"))
        #expect(await survivor.stop() == 0)
    }

    @Test("a database restart mid-run: the watcher reconnects, catches up, and loses nothing", .timeLimit(.minutes(3)),
          .enabled(if: ProcessInfo.processInfo.environment["CHATFLOW_TEST_POSTGRES_RESTART"] != nil, "needs $CHATFLOW_TEST_POSTGRES_RESTART"))
    func databaseRestart() async throws {
        let database = try TestDatabase()
        let a = Sandbox()
        a.hook("@any", a.recorder())
        let engine = try WorkflowEngine.postgres(url: database.url, root: a.root)
        try engine.prepare()
        let watching = try watcher(a, database, hooks: a.hooks)
        #expect(await watching.ready())
        var ids: [String] = []
        for _ in 0..<20 { ids.append(try engine.start(schema: devSchema, featureID: "f")) }
        #expect(await eventually { a.lines().count >= 20 })
        // system(3), not Process: the restarted server is a grandchild that Foundation's
        // process monitor waited on (the test hung in waitUntilExit).
        let restart = system(ProcessInfo.processInfo.environment["CHATFLOW_TEST_POSTGRES_RESTART"]! + " </dev/null >/dev/null 2>&1")
        #expect(restart == 0)
        // The engine's pooled connections died with the server: the first call may fail, then it reconnects.
        for id in ids {
            do { try engine.trigger(id) } catch { try engine.trigger(id) }
        }
        #expect(await eventually(timeout: 60) { a.lines().count >= 40 })
        let lines = a.lines()
        #expect(Set(lines).count == 40)
        #expect(lines.count == 40)
        #expect(watching.log.contains("LISTEN ended") || watching.log.contains("cannot LISTEN") || watching.log.contains("could not"))
        #expect(await watching.stop() == 0)
    }

    @Test("LISTEN as a change source: armed when subscribe returns, each commit of another engine reported, live invalidation, .rescanAll after a server restart, an unreachable server refused",
          .timeLimit(.minutes(2)))
    func changeSource() async throws {
        let database = try TestDatabase()
        let sandbox = Sandbox()
        let writer = try WorkflowEngine.postgres(url: database.url, root: sandbox.root)
        try writer.prepare()
        let reader = WorkflowEngine(root: sandbox.root, store: try PostgresStore(url: database.url), cacheTTL: 3600)
        let source = try PostgresChangeSource(url: database.url)
        let seen = Mutex<[InstanceChange]>([])
        let token = try await source.subscribe { change in seen.withLock { $0.append(change) } }
        // Armed on return: a commit right after it is reported.
        let id = try writer.start(schema: devSchema, featureID: "f")
        #expect(await eventually { seen.withLock { $0.contains(.instance(id: id)) } })
        // A reader with an hour's cache sees another engine's trigger once invalidation is on.
        #expect(try reader.status(id)?.currentPhase == "design")
        let invalidation = try await LiveInvalidation.enable(for: reader, changes: source)
        try writer.trigger(id)
        #expect(await eventually { (try? reader.status(id)?.currentPhase) == "implement" })
        await LiveInvalidation.disable(invalidation, changes: source)
        if let restart = ProcessInfo.processInfo.environment["CHATFLOW_TEST_POSTGRES_RESTART"] {
            #expect(system(restart + " </dev/null >/dev/null 2>&1") == 0)
            #expect(await eventually(timeout: 30) { seen.withLock { $0.contains { if case .rescanAll = $0 { true } else { false } } } })
            let after = seen.withLock { $0.count }
            do { try writer.trigger(id) } catch { try writer.trigger(id) }
            #expect(await eventually { seen.withLock { $0.dropFirst(after).contains(.instance(id: id)) } }, "listening again after the reconnect")
        }
        await source.unsubscribe(token)
        let unreachable = try PostgresChangeSource(url: "postgres://nobody@127.0.0.1:1/none")
        await #expect(throws: WatchError.self) { _ = try await unreachable.subscribe { _ in } }
    }

    /// Runs one of the test script's cluster commands (`CHATFLOW_TEST_POSTGRES_STOP`, …).
    private func cluster(_ variable: String) -> Bool {
        guard let command = ProcessInfo.processInfo.environment[variable] else { return false }
        return system(command + " >/dev/null 2>&1") == 0
    }

    private func status(_ database: TestDatabase, _ id: String) throws -> String {
        try database.sql("SELECT status FROM chatflow_dispatch WHERE instance_id = '\(id)' AND position = 1").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("--shutdown-grace holds: a hook past it is ended and its transition handed back (pending, not done); a second SIGTERM ends hooks at once", .timeLimit(.minutes(2)))
    func shutdownGrace() async throws {
        let database = try TestDatabase()
        let a = Sandbox()
        a.hook("b", "echo $$ >> \(a.directory)/pids; exec sleep 60")
        let engine = try WorkflowEngine.postgres(url: database.url, root: a.root)
        try engine.prepare()
        let id = try engine.start(schema: WorkflowSchema(name: "w", phaseNames: ["a", "b", "c"]), featureID: "f")
        try engine.trigger(id)
        var watcher = try self.watcher(a, database, hooks: a.hooks, extra: ["--shutdown-grace", "0.5"])
        #expect(await watcher.ready())
        #expect(await eventually { a.lines("pids").count == 1 })
        let started = Date()
        #expect(await watcher.stop() == 0)
        #expect(Date().timeIntervalSince(started) < 15, "the grace was kept, not the hook's 60 s")
        #expect(try status(database, id) == "pending", "handed back, not done")

        // A second SIGTERM during a long grace ends the hook at once.
        watcher = try self.watcher(a, database, hooks: a.hooks, extra: ["--shutdown-grace", "300"])
        #expect(await watcher.ready())
        #expect(await eventually { a.lines("pids").count == 2 })
        kill(watcher.process.processIdentifier, SIGTERM)
        #expect(await eventually { watcher.log.contains("letting running hooks finish") })
        kill(watcher.process.processIdentifier, SIGTERM)
        #expect(await eventually(timeout: 15) { !watcher.process.isRunning })
        #expect(watcher.log.contains("second stop request"))
        #expect(try status(database, id) == "pending")
    }

    @Test("the store down while a hook ends: the watcher keeps the lease and records the run once the store is back; the hook ran once; dead watchers are forgotten", .timeLimit(.minutes(2)),
          .enabled(if: ProcessInfo.processInfo.environment["CHATFLOW_TEST_POSTGRES_STOP"] != nil, "needs $CHATFLOW_TEST_POSTGRES_STOP"))
    func outageAtFinish() async throws {
        let database = try TestDatabase()
        let a = Sandbox()
        a.hook("b", "echo ran >> \(a.directory)/runs; while [ ! -f \(a.directory)/go ]; do sleep 0.05; done")
        let engine = try WorkflowEngine.postgres(url: database.url, root: a.root)
        try engine.prepare()
        let id = try engine.start(schema: WorkflowSchema(name: "w", phaseNames: ["a", "b", "c"]), featureID: "f")
        try engine.trigger(id)
        // A dead watcher's row, from before.
        _ = try database.sql("INSERT INTO chatflow_watchers (owner, host, pid, seen_at) VALUES ('gone:1:x', 'gone', 1, now() - interval '1 hour')")
        let watcher = try self.watcher(a, database, hooks: a.hooks, lease: 3)
        #expect(await watcher.ready())
        #expect(await eventually { a.lines("runs").count == 1 })
        #expect(try database.sql("SELECT count(*) FROM chatflow_watchers WHERE owner = 'gone:1:x'") == "0\n", "a dead watcher is forgotten")
        #expect(cluster("CHATFLOW_TEST_POSTGRES_STOP"))
        _ = FileManager.default.createFile(atPath: a.directory + "/go", contents: nil)
        #expect(await eventually { watcher.log.contains("could not record") })
        // Down past the lease: a watcher that let go of it would take the transition again.
        try await Task.sleep(for: .seconds(4))
        #expect(cluster("CHATFLOW_TEST_POSTGRES_START"))
        #expect(await eventually(timeout: 30) { (try? self.status(database, id)) == "done" })
        #expect(a.lines("runs").count == 1, "the hook ran once")
        #expect(try database.sql("SELECT attempt FROM chatflow_dispatch WHERE instance_id = '\(id)' AND position = 1") == "1\n")
        #expect(await watcher.stop() == 0)
    }

    @Test("SIGKILL of the watcher running a hook, ten times, two watchers and one server restart: each restarted watcher ends its orphan and hands its dead predecessor's lease back, so no transition runs twice at once and none waits for a lease; every run listed", .timeLimit(.minutes(3)))
    func repeatedKills() async throws {
        let database = try TestDatabase()
        let sandboxes = [Sandbox(), Sandbox()]
        let shared = sandboxes[0].directory
        let hooks = sandboxes[0].hooks
        sandboxes[0].hook("b", """
            p=$(cat \(shared)/hook.pid 2>/dev/null)
            if [ -n "$p" ] && [ -d /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status; then echo "overlap with $p" >> \(shared)/record.log; fi
            echo $$ > \(shared)/hook.pid
            echo "run $CHATFLOW_ROOT $CHATFLOW_ATTEMPT" >> \(shared)/record.log
            exec sleep 60
            """)
        let engine = try WorkflowEngine.postgres(url: database.url, root: sandboxes[0].root)
        try engine.prepare()
        let id = try engine.start(schema: WorkflowSchema(name: "w", phaseNames: ["a", "b", "c"]), featureID: "f")
        // A lease longer than the test: a takeover that waited for it would time the test out.
        var watchers = try sandboxes.map { try watcher($0, database, hooks: hooks, lease: 120) }
        for watcher in watchers { #expect(await watcher.ready()) }
        try engine.trigger(id)
        for round in 1...10 {
            #expect(await eventually(timeout: 30) { sandboxes[0].lines().count >= round })
            let owner = try database.sql("SELECT owner FROM chatflow_dispatch WHERE instance_id = '\(id)' AND status = 'running'")
            let pid = Int32(owner.split(separator: ":").dropFirst().first ?? "") ?? 0
            guard let index = watchers.firstIndex(where: { $0.process.processIdentifier == pid }) else {
                Issue.record("round \(round): no watcher holds the transition (\(owner))")
                break
            }
            await watchers[index].kill9()
            if round == 5 { #expect(cluster("CHATFLOW_TEST_POSTGRES_RESTART") || ProcessInfo.processInfo.environment["CHATFLOW_TEST_POSTGRES_RESTART"] == nil) }
            watchers[index] = try watcher(sandboxes[index], database, hooks: hooks, lease: 120)
            #expect(await watchers[index].ready())
        }
        #expect(await eventually(timeout: 30) { sandboxes[0].lines().count >= 11 })
        let lines = sandboxes[0].lines()
        #expect(!lines.contains { $0.hasPrefix("overlap") }, "no run began while another was alive: \(lines)")
        #expect(lines.count == 11, "\(lines)")
        var interrupted = 0
        for sandbox in sandboxes {
            let listed = try JSONValue(parsing: run("chatflow", ["--store", database.url, "--root", sandbox.root, "runs", id, "--json"]).stdout).arrayValue ?? []
            interrupted += listed.filter { $0["interrupted"] == .bool(true) }.count
        }
        #expect(interrupted == 10, "every killed run is listed as interrupted")
        kill(pid_t((try String(contentsOfFile: shared + "/hook.pid", encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, SIGKILL)
        for watcher in watchers { _ = await watcher.stop() }
    }

    @Test("a hook longer than the lease is not taken over while it runs: its watcher renews the lease, and a second watcher waits", .timeLimit(.minutes(2)))
    func longHookKeepsItsLease() async throws {
        let database = try TestDatabase()
        let a = Sandbox(), b = Sandbox()
        a.hook("b", "echo \"$CHATFLOW_ROOT\" >> \(a.directory)/runs; sleep 5")
        let engine = try WorkflowEngine.postgres(url: database.url, root: a.root)
        try engine.prepare()
        let id = try engine.start(schema: WorkflowSchema(name: "w", phaseNames: ["a", "b", "c"]), featureID: "f")
        let first = try watcher(a, database, hooks: a.hooks, lease: 1.5)
        #expect(await first.ready())
        try engine.trigger(id)
        #expect(await eventually { a.lines("runs").count == 1 })
        let second = try watcher(b, database, hooks: a.hooks, lease: 1.5)
        #expect(await second.ready())
        #expect(await eventually(timeout: 30) { (try? self.status(database, id)) == "done" })
        #expect(a.lines("runs").count == 1, "run once, by the first watcher: \(a.lines("runs"))")
        #expect(try database.sql("SELECT attempt FROM chatflow_dispatch WHERE instance_id = '\(id)' AND position = 1") == "1\n")
        #expect(await first.stop() == 0)
        #expect(await second.stop() == 0)
    }
}
