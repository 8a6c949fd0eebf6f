import ChatFlow
import ChatFlowTestSupport
import Foundation
import Synchronization
import Testing

import Glibc

/// Hooks as a person watches them: output live in the log and on `logs --follow`, running hooks
/// listed, one console line per finished hook.
@Suite("Hooks in real life: live output and visible runs (real watcher)", .serialized, .timeLimit(.minutes(2)))
struct LiveHookTests {
    @Test("while a hook runs: its log exists and grows, runs and status list it, logs --follow prints each line as written and ends with it")
    func followRunningHook() async throws {
        let sandbox = Sandbox()
        // It runs until the test says stop, so "live" does not depend on how fast a busy machine is.
        let stop = sandbox.directory + "/stop"
        sandbox.hook("design", "i=0; while [ ! -f \(stop) ] && [ $i -lt 150 ]; do i=$((i+1)); echo \"line $i\"; sleep 0.2; done")
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        let log = sandbox.engine.layout.runLogFile(id, transition: 0, hook: "design")
        #expect(await eventually { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("line 1") })
        // Follow it: lines arrive one by one, before the hook has ended.
        let follower = Process()
        follower.executableURL = binaries.appendingPathComponent("chatflow")
        follower.arguments = ["--root", sandbox.root, "logs", id, "--follow"]
        let pipe = Pipe()
        follower.standardOutput = pipe
        let seen = Mutex<[(String, Date)]>([])
        let reader = pipe.fileHandleForReading
        let done = Mutex(false)
        Thread.detachNewThread {
            var pending = Data()
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    seen.withLock { $0.append((line, Date())) }
                }
            }
            done.withLock { $0 = true }
        }
        try follower.run()
        let runs = try run("chatflow", ["--root", sandbox.root, "runs", id])
        #expect(runs.stdout.contains("running (pid "), "\(runs.stdout)")
        let json = try JSONValue(parsing: run("chatflow", ["--root", sandbox.root, "runs", id, "--json"]).stdout)
        let running = try #require(json.arrayValue?.first { $0["running"] == .bool(true) })
        #expect(running["pid"]?.intValue != nil && running["elapsed"]?.doubleValue != nil && running["hook"]?.stringValue == "design")
        #expect(try run("chatflow", ["--root", sandbox.root, "status", id]).stdout.contains("hook      design running"))
        let status = try JSONValue(parsing: run("chatflow", ["--root", sandbox.root, "status", id, "--json"]).stdout)
        #expect(status["running_hooks"]?.arrayValue?.count == 1)

        #expect(await eventually { seen.withLock { $0.contains { $0.0 == "line 3" } } }, "lines arrive while the hook runs")
        _ = FileManager.default.createFile(atPath: stop, contents: nil)
        #expect(await eventually(timeout: 10) { done.withLock { $0 } })
        follower.waitUntilExit()
        let lines = seen.withLock { $0 }
        #expect(follower.terminationStatus == 0)
        let printed = lines.map(\.0).filter { $0.hasPrefix("line ") }
        #expect(printed.count >= 3 && printed == (1...printed.count).map { "line \($0)" })
        #expect(lines.last?.0.hasPrefix("== exit 0 after") == true, "\(lines.map(\.0))")
        #expect(await watcher.stop() == 0)
    }

    @Test("one console line per finished hook: outcome, duration, the last line of output, and what to do")
    func consoleLine() async throws {
        let sandbox = Sandbox()
        sandbox.hook("design", "echo compiling; echo '3 tests failed'; exit 3")
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        #expect(await eventually { watcher.log.contains("hook design for \(id) #0: exit 3 after") })
        let line = try #require(watcher.log.split(separator: "\n").first { $0.contains("hook design for \(id) #0") })
        #expect(line.contains(" warning "))
        #expect(line.contains("output.last=\"3 tests failed\""))
        #expect(line.contains("chatflow logs \(id) --transition 0 --hook design"))
        let logs = try run("chatflow", ["--root", sandbox.root, "logs", id])
        #expect(logs.stdout.contains("3 tests failed") && logs.stdout.contains("== exit 3 after"))
        #expect(try run("chatflow", ["--root", sandbox.root, "logs", id, "--hook", "nosuch"]).status == 3)
        #expect(await watcher.stop() == 0)
    }

    @Test("logs ID shows the transition's own hook, not the @any audit hook that ran after it; --hook @any still shows that one")
    func logsSkipAudit() async throws {
        let sandbox = Sandbox()
        sandbox.hook("design", "echo 'the design hook'")
        // Started after the design hook's run is recorded: the audit is the newest run.
        sandbox.hook("@any", "sleep 0.2; echo audited")
        let watcher = try Watcher(sandbox, ["--jobs", "1"])
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        #expect(await eventually { (try? run("chatflow", ["--root", sandbox.root, "runs", id]).stdout.components(separatedBy: "exit 0").count) == 3 })
        let logs = try run("chatflow", ["--root", sandbox.root, "logs", id])
        #expect(logs.stdout.contains("the design hook") && !logs.stdout.contains("audited"), "\(logs.stdout)")
        #expect(try run("chatflow", ["--root", sandbox.root, "logs", id, "--hook", "@any"]).stdout.contains("audited"))
        #expect(await watcher.stop() == 0)
    }

    @Test("the size cap keeps the tail of a flooding hook's live log and says what was dropped")
    func cappedLiveLog() async throws {
        let sandbox = Sandbox()
        sandbox.hook("design", "yes x | head -c 5000000; echo THE-END")
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        #expect(await eventually { (try? run("chatflow", ["--root", sandbox.root, "runs", id]).stdout.contains("exit 0")) == true })
        let log = try String(contentsOfFile: sandbox.engine.layout.runLogFile(id, transition: 0, hook: "design"), encoding: .utf8)
        #expect(log.utf8.count < (2 << 20) + 4096, "capped: \(log.utf8.count) bytes")
        #expect(log.contains("[chatflow: ") && log.contains("bytes of this run's output dropped"))
        #expect(log.contains("THE-END\n== exit 0 after"))
        #expect(log.hasPrefix("== design for transition 0 (design), attempt 1 =="))
        #expect(await watcher.stop() == 0)
    }
}
