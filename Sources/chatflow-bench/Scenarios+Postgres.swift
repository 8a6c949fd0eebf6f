import ChatFlow
import ChatFlowHarness
import ChatFlowPostgres
import Foundation
import PostgresNIO

import Glibc

extension Bench {
    // MARK: postgres: the PostgreSQL store beside the file store, in one run

    /// `--store postgres://…`: the server's role must be able to create databases; the scenario
    /// makes its own and drops it.
    func postgres(_ server: String) throws {
        let name = "chatflow_bench_\(getpid())"
        let admin = try PostgresStore(url: server)
        _ = try admin.rows("DROP DATABASE IF EXISTS \(unescaped: name)", "drop the bench database")
        _ = try admin.rows("CREATE DATABASE \(unescaped: name)", "create the bench database")
        defer { _ = try? admin.rows("DROP DATABASE IF EXISTS \(unescaped: name) WITH (FORCE)", "drop the bench database") }
        let base = server.split(separator: "?", maxSplits: 1)[0]
        let url = base[..<(base.lastIndex(of: "/") ?? base.endIndex)] + "/" + name
        let root = newRoot("postgres")
        let store = try PostgresStore(url: String(url))
        let database = WorkflowEngine(root: root, store: store)
        let files = WorkflowEngine(root: newRoot("postgres-files"))
        try database.prepare()

        // One process, one instance: the same loop on both stores.
        let count = quick ? 100 : 500
        var rates: [String: Double] = [:]
        for (label, engine) in [("files", files), ("postgres", database)] {
            let id = try engine.start(schema: schema(count + 1), featureID: "t")
            var samples = Samples()
            let start = Timestamps.monotonic()
            for _ in 0..<count {
                let t = Timestamps.monotonic()
                try engine.trigger(id)
                samples.add(seconds: Timestamps.monotonic() - t)
            }
            var figure = samples.figure("store.trigger_one_process.\(label)")
            figure.value = Double(count) / (Timestamps.monotonic() - start)
            figure.unit = "ms|/s"
            rates[label] = figure.value
            record(figure)
        }
        record(Figure(name: "store.trigger_one_process.postgres_to_files", unit: "x", value: rates["postgres"]! / rates["files"]!))

        // 8 processes on one instance.
        let perWriter = quick ? 25 : 100
        for (label, engine) in [("files", files), ("postgres", database)] {
            let shared = try engine.start(schema: schema(200), featureID: "contended")
            let storeOption = label == "postgres" ? ["--store", String(url)] : []
            let start = Timestamps.monotonic()
            let writers = try (0..<8).map { _ in
                try process("chatflow-bench", ["writer", "--root", engine.root, "--ids", shared, "--count", "\(perWriter)", "--round-phases", "200"] + storeOption)
            }
            writers.forEach { $0.waitUntilExit() }
            let elapsed = Timestamps.monotonic() - start
            let made = try engine.freshStatus(shared)!.historyLength - 1
            record(Figure(
                name: "store.trigger_8_processes.\(label)", unit: "/s", n: 8 * perWriter, value: Double(made) / elapsed,
                note: "lost updates: \(8 * perWriter - made)"))
        }

        // Commit → hook start through notifications: the hook stamps its start.
        let hooks = root + "/hooks"
        try FileManager.default.createDirectory(atPath: hooks, withIntermediateDirectories: true)
        let stamps = root + "/../stamps.log"
        let hook = hooks + "/@any"
        try "#!/bin/bash\necho \"$CHATFLOW_INSTANCE_ID $CHATFLOW_TRANSITION $EPOCHREALTIME\" >> \(stamps)\n".write(toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        chmod(hooks, 0o755)
        // The trigger scenarios' transitions are no one's to run: a watcher would work through
        // them (one instance's 1,300, in order) before and while it is measured.
        let settle = { () throws in
            _ = try store.rows("UPDATE chatflow_dispatch SET status = 'done', finished_at = now() WHERE status <> 'done'", "settle the dispatch table")
        }
        try settle()
        let watcher = try process("chatflow-watch", ["--root", root, "--store", String(url), "--poll", "1"])
        defer { watcher.terminate(); watcher.waitUntilExit() }
        let id = try database.start(schema: schema(1000), featureID: "latency")
        let ofInstance = { self.lines(stamps).filter { $0.hasPrefix(id + " ") } }
        guard waitUntil({ ofInstance().count >= 1 }) else { throw HarnessError.failed("the PostgreSQL watcher ran no hook") }
        var latency = Samples()
        let rounds = quick ? 30 : 100
        for round in 1...rounds {
            let called = Self.unixNow()
            try database.trigger(id)
            guard waitUntil({ ofInstance().count >= round + 1 }) else { throw HarnessError.failed("hook \(round) did not start") }
            if let stamp = ofInstance().last?.split(separator: " ").last.flatMap({ Double($0) }) { latency.add(seconds: stamp - called) }
        }
        record(latency.figure("store.commit_to_hook_start.postgres", note: "from the trigger's call; LISTEN/NOTIFY, hook is bash"))
        watcher.terminate()
        watcher.waitUntilExit()

        // Two watchers draining a backlog together (`true` hooks): transitions/s.
        try "#!/bin/sh\nexit 0\n".write(toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        let backlog = quick ? 200 : 1000
        try settle()
        for _ in 0..<(backlog / 2) {
            let id = try database.start(schema: schema(4), featureID: "drain")
            try database.trigger(id)
        }
        let open = { () throws -> Int64 in
            let rows = try store.rows("SELECT count(*) FROM chatflow_dispatch WHERE status <> 'done'", "count open transitions")
            return try store.decode(rows[0], Int64.self, "count open transitions")
        }
        // Timed by the server's clock, from before the watchers start to the last row finished:
        // the bench's own checks (every 50 ms, so they take no core from the watchers) add nothing.
        let serverNow = { (sql: PostgresQuery) throws -> Double in
            let rows = try store.rows(sql, "read the server's clock")
            return try store.decode(rows[0], Double.self, "read the server's clock")
        }
        let start = try serverNow("SELECT extract(epoch FROM clock_timestamp())::float8")
        let pair = try (0..<2).map { index in
            try process("chatflow-watch", ["--root", newRoot("postgres-watcher-\(index)"), "--hooks", hooks, "--store", String(url), "--poll", "0.2"])
        }
        defer { pair.forEach { $0.terminate(); $0.waitUntilExit() } }
        guard waitUntil(timeout: 300, every: 0.05, { ((try? open()) ?? 1) == 0 }) else { throw HarnessError.failed("the two watchers did not drain the backlog") }
        let end = try serverNow("SELECT extract(epoch FROM max(finished_at))::float8 FROM chatflow_dispatch")
        let drained = Double(backlog) / (end - start)
        record(Figure(name: "store.two_watchers_dispatch.postgres", unit: "/s", n: backlog, value: drained, note: "hooks are `exit 0`; includes the watchers' start"))
    }

    private func waitUntil(timeout: Double = 30, every interval: Double = 0.001, _ condition: () -> Bool) -> Bool {
        let deadline = Timestamps.monotonic() + timeout
        while Timestamps.monotonic() < deadline {
            if condition() { return true }
            usleep(UInt32(interval * 1e6))
        }
        return condition()
    }

    static func unixNow() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
