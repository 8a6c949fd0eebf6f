import ChatFlow
import ChatFlowTestSupport
import Foundation
import Testing

import Glibc

/// Stops and crashes between and during the hooks of one transition: each finished hook runs once.
@Suite("Exactly once per hook across stops and crashes (real watcher)", .serialized, .timeLimit(.minutes(2)))
struct ShutdownTests {
    /// `design` has two hooks: the first records and ends, the second records, saves its pid and sleeps.
    private func twoHooks(_ sandbox: Sandbox) {
        sandbox.hook("design.d/10-first", "echo first >> \(sandbox.directory)/record.log")
        sandbox.hook("design.d/20-second", "echo second >> \(sandbox.directory)/record.log\necho $$ > \(sandbox.directory)/second.pid\nexec sleep 30")
    }

    private func secondHookPid(_ sandbox: Sandbox) -> pid_t? {
        (try? String(contentsOfFile: sandbox.directory + "/second.pid", encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    private func alive(_ pid: pid_t?) -> Bool { pid.map { kill($0, 0) == 0 } ?? false }

    private func runs(_ sandbox: Sandbox, _ id: String) throws -> [JSONValue] {
        try JSONValue(parsing: run("chatflow", ["--root", sandbox.root, "runs", id, "--json"]).stdout).arrayValue ?? []
    }

    @Test("a graceful stop while the second hook runs: it is interrupted and runs again; the first does not")
    func gracefulStopBetweenHooks() async throws {
        let sandbox = Sandbox()
        twoHooks(sandbox)
        var watcher = try Watcher(sandbox, ["--shutdown-grace", "0.5"])
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        #expect(await eventually { sandbox.lines() == ["first", "second"] && secondHookPid(sandbox) != nil })
        let pid = secondHookPid(sandbox)
        #expect(await watcher.stop() == 0)
        #expect(!alive(pid), "the grace period ended the hook")
        #expect(watcher.log.contains("run again at the next start"))
        #expect(try runs(sandbox, id).contains { $0["hook"]?.stringValue == "design.d/20-second" && $0["interrupted"] == .bool(true) })

        unlink(sandbox.directory + "/second.pid")
        watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        #expect(await eventually { secondHookPid(sandbox) != nil })
        #expect(sandbox.lines() == ["first", "second", "second"], "the finished first hook did not run again")
        kill(secondHookPid(sandbox) ?? 0, SIGKILL)
        #expect(await watcher.stop() == 0)
    }

    @Test("SIGKILL of the watcher during the second hook: after restart only that hook runs again")
    func killDuringSecondHook() async throws {
        let sandbox = Sandbox()
        twoHooks(sandbox)
        var watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        _ = try sandbox.engine.start(schema: devSchema, featureID: "f")
        #expect(await eventually { secondHookPid(sandbox) != nil })
        let orphan = secondHookPid(sandbox)
        await watcher.kill9()
        unlink(sandbox.directory + "/second.pid")
        watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        #expect(await eventually { secondHookPid(sandbox) != nil })
        #expect(sandbox.lines() == ["first", "second", "second"])
        for pid in [orphan, secondHookPid(sandbox)] { kill(pid ?? 0, SIGKILL) }
        #expect(await watcher.stop() == 0)
    }

    @Test("SIGKILL of the watcher mid-hook, ten times: each restart ends the orphan before its transition runs again (never two at once), attempts 1 to 11 each with its own log, every run listed", .timeLimit(.minutes(2)))
    func repeatedKills() async throws {
        let sandbox = Sandbox()
        let directory = sandbox.directory
        sandbox.hook("design", """
            p=$(cat \(directory)/hook.pid 2>/dev/null)
            if [ -n "$p" ] && [ -d /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status; then echo "overlap with $p" >> \(directory)/record.log; fi
            echo $$ > \(directory)/hook.pid
            echo "attempt $CHATFLOW_ATTEMPT" >> \(directory)/record.log
            echo "output of attempt $CHATFLOW_ATTEMPT"
            exec sleep 60
            """)
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        for round in 1...10 {
            let watcher = try Watcher(sandbox)
            #expect(await watcher.ready())
            #expect(await eventually { sandbox.lines().count >= round })
            // The hook can write its line before the watcher has appended its start record.
            #expect(await eventually { ((try? runs(sandbox, id)) ?? []).count >= round })
            await watcher.kill9()
            // Between watchers the killed run is listed, its end unknown.
            let listed = try runs(sandbox, id)
            #expect(listed.count == round, "every run listed: \(listed)")
        }
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        #expect(await eventually { sandbox.lines().count >= 11 })
        #expect(sandbox.lines() == (1...11).map { "attempt \($0)" }, "no run began while another was alive")
        let listed = try runs(sandbox, id)
        #expect(listed.compactMap { $0["attempt"]?.intValue } == Array(1...11))
        #expect(listed.prefix(10).allSatisfy { $0["interrupted"] == .bool(true) }, "\(listed)")
        #expect(listed.last?["running"] == .bool(true))
        for attempt in [1, 5, 11] {
            let log = try run("chatflow", ["--root", sandbox.root, "logs", id, "--hook", "design"]).stdout
            if attempt == 11 { #expect(log.contains("output of attempt 11")) }
            let path = sandbox.engine.layout.runLogFile(id, transition: 0, hook: "design", attempt: attempt)
            #expect((try? String(contentsOfFile: path, encoding: .utf8))?.contains("output of attempt \(attempt)\n") == true, "\(path)")
        }
        kill(pid_t((try String(contentsOfFile: directory + "/hook.pid", encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, SIGKILL)
        #expect(await watcher.stop() == 0)
    }

    @Test("a second SIGINT during the grace period ends the hooks at once and exits; they are recorded as interrupted")
    func doubleInterrupt() async throws {
        let sandbox = Sandbox()
        sandbox.hook("design", "echo $$ > \(sandbox.directory)/second.pid\ntrap 'echo got TERM >> \(sandbox.directory)/record.log; exit 143' TERM\nsleep 60 & wait")
        let watcher = try Watcher(sandbox, ["--shutdown-grace", "60"])
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        #expect(await eventually { secondHookPid(sandbox) != nil })
        let hook = secondHookPid(sandbox)
        kill(watcher.process.processIdentifier, SIGINT)
        #expect(await eventually { watcher.log.contains("stopping") })
        #expect(alive(hook), "the first SIGINT lets the hook run")
        let second = Date()
        kill(watcher.process.processIdentifier, SIGINT)
        #expect(await eventually(timeout: 10) { !watcher.process.isRunning })
        #expect(Date().timeIntervalSince(second) < 5, "did not wait for the 60 s grace")
        #expect(watcher.process.terminationStatus == 0)
        #expect(sandbox.lines() == ["got TERM"])
        #expect(await eventually(timeout: 5) { !alive(hook) })
        let record = try #require(try runs(sandbox, id).first)
        #expect(record["interrupted"] == .bool(true))
        #expect(watcher.log.contains("second stop request"))
    }
}
