import ChatFlowTestSupport
import ChatFlow
import ChatFlowHarness
import Foundation
import Testing

import Glibc

@Suite("chatflow-watch (real binary, real inotify, real hooks)", .serialized, .timeLimit(.minutes(2)))
struct WatcherTests {
    /// Each instance's recorded transitions must be exactly 0..<count, in order.
    private func expectOnceInOrder(_ sandbox: Sandbox, _ expected: [String: Int], file: String = "record.log") {
        let grouped = transitionsByInstance(sandbox.lines(file))
        for (id, count) in expected {
            #expect(grouped[id]?.map(\.0) == Array(0..<count), "\(id): \(grouped[id] ?? [])")
        }
    }

    /// A watcher recording every transition (`@any`) once it has run the first two of one
    /// instance (start, then a trigger); returns it and the instance.
    private func recordingWatcherAfterOneTrigger(_ sandbox: Sandbox) async throws -> (Watcher, String) {
        sandbox.hook("@any", sandbox.recorder())
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        try sandbox.engine.trigger(id)
        #expect(await eventually { sandbox.lines().count == 2 })
        return (watcher, id)
    }

    @Test("runs each transition's hooks once, in order, including a burst written faster than it reads")
    func onceInOrder() async throws {
        let sandbox = Sandbox()
        sandbox.hook("@any", sandbox.recorder())
        sandbox.hook("testing", sandbox.recorder("testing.log"))
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        var expected: [String: Int] = [:]
        for _ in 0..<20 {
            let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
            for _ in 0..<4 { try sandbox.engine.trigger(id) }
            expected[id] = 5
        }
        #expect(await eventually { sandbox.lines().count >= 100 })
        try? await Task.sleep(for: .milliseconds(200))
        expectOnceInOrder(sandbox, expected)
        #expect(sandbox.lines().count == 100)
        let testing = sandbox.lines("testing.log")
        #expect(testing.count == 20 && testing.allSatisfy { $0.hasSuffix(" 2 testing") })
        let completions = sandbox.lines().filter { $0.hasSuffix(" 4 @completed") }
        #expect(completions.count == 20)
        #expect(await watcher.stop() == 0)
        let runs = try run("chatflow", ["--root", sandbox.root, "runs", "--json"])
        #expect(runs.stdout.components(separatedBy: "\"exit_code\": 0").count - 1 == 120)
    }

    @Test("catches up after a restart without running anything twice; --from-now skips the backlog")
    func restartCatchUp() async throws {
        let sandbox = Sandbox()
        var (watcher, a) = try await recordingWatcherAfterOneTrigger(sandbox)
        #expect(await watcher.stop() == 0)
        try sandbox.engine.trigger(a)  // while the watcher is down
        let b = try sandbox.engine.start(schema: devSchema, featureID: "f")
        watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        #expect(await eventually { sandbox.lines().count == 4 })
        try sandbox.engine.trigger(b)
        #expect(await eventually { sandbox.lines().count == 5 })
        #expect(await watcher.stop() == 0)
        expectOnceInOrder(sandbox, [a: 3, b: 2])

        try sandbox.engine.trigger(a)
        watcher = try Watcher(sandbox, ["--from-now"])
        #expect(await watcher.ready())
        try sandbox.engine.trigger(b)
        #expect(await eventually { sandbox.lines().count == 6 })
        #expect(await watcher.stop() == 0)
        #expect(sandbox.lines().last == "\(b) 2 testing", "the backlog transition of a was skipped")
    }

    @Test("--once processes the backlog and exits")
    func once() async throws {
        let sandbox = Sandbox()
        sandbox.hook("@any", sandbox.recorder())
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        try sandbox.engine.trigger(id)
        let result = try run("chatflow-watch", ["--root", sandbox.root, "--once"])
        #expect(result.status == 0)
        expectOnceInOrder(sandbox, [id: 2])
    }

    @Test("an inotify overflow or a recreated directory leads to a rescan that loses no transition")
    func rescan() async throws {
        let sandbox = Sandbox()
        sandbox.hook("@any", sandbox.recorder())
        let limitPath = "/proc/sys/fs/inotify/max_queued_events"
        let original = try? String(contentsOfFile: limitPath, encoding: .utf8)
        let lowered = (try? "8".write(toFile: limitPath, atomically: false, encoding: .utf8)) != nil
        defer { if lowered, let original { try? original.write(toFile: limitPath, atomically: false, encoding: .utf8) } }
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        if let original, lowered { try? original.write(toFile: limitPath, atomically: false, encoding: .utf8) }
        // Stop the watcher so events pile up in its (small) inotify queue.
        kill(watcher.process.processIdentifier, SIGSTOP)
        var expected: [String: Int] = [:]
        for _ in 0..<60 {
            let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
            try sandbox.engine.trigger(id)
            expected[id] = 2
        }
        kill(watcher.process.processIdentifier, SIGCONT)
        #expect(await eventually { sandbox.lines().count >= 120 })
        if lowered { #expect(watcher.log.contains("inotify queue overflowed")) }

        // Move the instances directory away and back: the watch is lost and re-established.
        let instances = sandbox.root + "/instances"
        rename(instances, sandbox.root + "/instances.moved")
        #expect(await eventually { watcher.log.contains("watched directory was removed or moved") })
        rename(sandbox.root + "/instances.moved", instances)
        #expect(await eventually { watcher.log.contains("watched directory was recreated") })
        let late = try sandbox.engine.start(schema: devSchema, featureID: "f")
        expected[late] = 1
        #expect(await eventually { sandbox.lines().count >= 121 })
        try? await Task.sleep(for: .milliseconds(200))
        expectOnceInOrder(sandbox, expected)
        #expect(await watcher.stop() == 0)
    }

    @Test("unsafe hooks are refused with a reason; malformed files are skipped and the watcher keeps going")
    func hostileInput() async throws {
        let sandbox = Sandbox()
        sandbox.hook("design", "touch \(sandbox.directory)/writable-ran", mode: 0o777)
        sandbox.hook("implement", "touch \(sandbox.directory)/noexec-ran", mode: 0o644)
        symlink("/bin/true", sandbox.hooks + "/testing")
        sandbox.hook("@any", sandbox.recorder())
        let instances = sandbox.root + "/instances"
        mkdir(instances, 0o755)
        try "{ not json".write(toFile: instances + "/wfi_00000000000a.json", atomically: false, encoding: .utf8)
        try Data([0x7B, 0xFF, 0xFE]).write(to: URL(fileURLWithPath: instances + "/wfi_00000000000b.json"))
        symlink("/etc/passwd", instances + "/wfi_00000000000c.json")
        mkfifo(instances + "/wfi_00000000000d.json", 0o644)
        try "{}".write(toFile: instances + "/notes.txt", atomically: false, encoding: .utf8)
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        try sandbox.engine.trigger(id)
        try sandbox.engine.trigger(id)
        #expect(await eventually { sandbox.lines().count == 3 })
        #expect(await eventually { watcher.log.contains("leads out of the hooks directory") })
        let log = watcher.log
        #expect(log.contains("group- or world-writable"))
        #expect(log.contains("is not executable"))
        #expect(log.contains("leads out of the hooks directory"))
        #expect(log.contains("wfi_00000000000a") && log.contains("wfi_00000000000c") && log.contains("wfi_00000000000d"))
        #expect(log.contains("notes.txt"))
        #expect(!FileManager.default.fileExists(atPath: sandbox.directory + "/writable-ran"))
        #expect(!FileManager.default.fileExists(atPath: sandbox.directory + "/noexec-ran"))
        #expect(await watcher.stop() == 0)
    }

    @Test("an idle watcher is woken by nothing: no timer, no polling, before or after running hooks; it maps no Foundation")
    func idleWakeUps() async throws {
        let sandbox = Sandbox()
        let (watcher, _) = try await recordingWatcherAfterOneTrigger(sandbox)
        func switches() -> Int { ThreadActivity(of: watcher.process.processIdentifier).contextSwitches }
        // The last run's bookkeeping (journal, ledger) first: quiet for 300 ms.
        var last = switches()
        #expect(await eventually {
            usleep(300_000)
            let now = switches()
            defer { last = now }
            return now == last
        })
        let before = switches()
        // The window is a measurement, not a wait for a condition: a once-a-second timer (the
        // libdispatch pool monitor this guards against) wakes at least twice in it.
        usleep(2_500_000)
        #expect(switches() == before, "an idle watcher's threads were woken")
        // The file watcher links no database driver (chatflow-watch-pg does): postgres-nio
        // brought Foundation with it, about 8 MB of the idle watcher's RSS.
        let maps = try String(contentsOfFile: "/proc/\(watcher.process.processIdentifier)/maps", encoding: .utf8)
        #expect(!maps.contains("/libFoundation.so"), "the file watcher loaded Foundation")
        #expect(await watcher.stop() == 0)
    }

    @Test("a second watcher on the same root is refused")
    func secondWatcher() async throws {
        let sandbox = Sandbox()
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        let second = try run("chatflow-watch", ["--root", sandbox.root])
        #expect(second.status == 1)
        #expect(second.stderr.contains("already watching") && second.stderr.contains("pid \(watcher.process.processIdentifier)"))
        #expect(await watcher.stop() == 0)
    }

    @Test("SIGTERM lets a running hook finish, records it and exits 0")
    func gracefulShutdown() async throws {
        let sandbox = Sandbox()
        sandbox.hook("design", "touch \(sandbox.directory)/started; sleep 1; echo done")
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        #expect(await eventually { FileManager.default.fileExists(atPath: sandbox.directory + "/started") })
        #expect(await watcher.stop() == 0)
        let runs = try RunJournal(layout: sandbox.engine.layout).records()
        #expect(runs.count == 1 && runs.first?.instanceID == id && runs.first?.outcome == .exited(code: 0))
    }

    @Test("a hook timeout is recorded and the next transition still runs")
    func timeout() async throws {
        let sandbox = Sandbox()
        sandbox.hook("design", "# chatflow-timeout: 0.5\nsleep 30")
        let (watcher, _) = try await recordingWatcherAfterOneTrigger(sandbox)
        let runs = try RunJournal(layout: sandbox.engine.layout).records()
        #expect(runs.contains { run in
            guard case .timedOut = run.outcome else { return false }
            return run.hook == "design" && run.endedAt - run.startedAt < 10
        })
        #expect(await watcher.stop() == 0)
    }

    @Test("after SIGKILL of the watcher, nothing is missed and only in-flight transitions repeat", .timeLimit(.minutes(2)))
    func crashRecovery() async throws {
        let sandbox = Sandbox()
        sandbox.hook("@any", "sleep 0.02; " + sandbox.recorder())
        var expected: [String: Int] = [:]
        var duplicates = 0
        for round in 0..<5 {
            let watcher = try Watcher(sandbox)
            #expect(await watcher.ready())
            for _ in 0..<4 {
                let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
                try sandbox.engine.trigger(id)
                expected[id] = 2
            }
            usleep(UInt32(20_000 + round * 15_000))
            await watcher.kill9()
        }
        let last = try Watcher(sandbox)
        #expect(await last.ready())
        let total = expected.values.reduce(0, +)
        #expect(await eventually(timeout: 30) { Set(sandbox.lines()).count == total })
        #expect(await last.stop() == 0)
        let grouped = transitionsByInstance(sandbox.lines())
        for (id, count) in expected {
            let positions = grouped[id]?.map(\.0) ?? []
            #expect(Set(positions) == Set(0..<count), "\(id) missing a transition: \(positions)")
            #expect(positions == positions.sorted(), "\(id) out of order: \(positions)")
            duplicates += positions.count - Set(positions).count
        }
        // Each kill can repeat at most the transitions in flight (≤ one per instance, ≤ --jobs running).
        #expect(duplicates <= 5 * 2 * 2)
    }

    @Test("a watcher started with SIGCHLD ignored still collects each hook's real exit status")
    func inheritedIgnoredSIGCHLD() async throws {
        let sandbox = Sandbox()
        sandbox.hook("design", "exit 3")
        let watcher = try Watcher(sandbox, ignoringSIGCHLD: true)
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        #expect(await eventually { (try? run("chatflow", ["--root", sandbox.root, "runs", id, "--json"]).stdout.contains("\"exit_code\": 3")) == true })
        #expect(await watcher.stop() == 0)
    }
}
