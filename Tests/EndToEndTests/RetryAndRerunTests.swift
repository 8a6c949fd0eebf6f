import ChatFlow
import ChatFlowTestSupport
import Foundation
import Testing

import Glibc

/// Retries (a hook's policy) and reruns (`chatflow rerun`) with a real watcher and real hooks.
@Suite("Retries and reruns (real watcher)", .serialized, .timeLimit(.minutes(2)))
struct RetryAndRerunTests {
    private func runs(_ sandbox: Sandbox, _ id: String) throws -> [JSONValue] {
        try JSONValue(parsing: run("chatflow", ["--root", sandbox.root, "runs", id, "--json"]).stdout).arrayValue ?? []
    }

    @Test("a hook failing twice then succeeding with 2 retries: 3 attempts recorded, each with its own log, backoff observed")
    func retriesUntilSuccess() async throws {
        let sandbox = Sandbox()
        let counter = sandbox.directory + "/count"
        sandbox.hook("design", """
            # chatflow-retries: 2
            # chatflow-retry-delay: 0.4
            n=$(( $(cat \(counter) 2>/dev/null || echo 0) + 1 )); echo $n > \(counter)
            echo "attempt $CHATFLOW_ATTEMPT"
            [ $n -ge 3 ]
            """)
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        #expect(await eventually { (try? runs(sandbox, id).count) == 3 })
        let records = try runs(sandbox, id)
        #expect(records.map { $0["attempt"]?.intValue } == [1, 2, 3])
        #expect(records.map { $0["exit_code"]?.intValue } == [1, 1, 0])
        let starts = records.compactMap { $0["started_at"]?.doubleValue }
        let ends = records.compactMap { $0["ended_at"]?.doubleValue }
        // Equal jitter: the first wait is 0.2–0.4 s, the second (doubled) 0.4–0.8 s.
        #expect(starts[1] - ends[0] >= 0.19 && starts[2] - ends[1] >= 0.39, "\(starts) \(ends)")
        for (attempt, record) in records.enumerated() {
            let log = try String(contentsOfFile: record["log_path"]?.stringValue ?? "", encoding: .utf8)
            #expect(log.contains("attempt \(attempt + 1)"))
        }
        #expect(watcher.log.contains("retry 1 of 2") && watcher.log.contains("retry 2 of 2"))
        #expect(await watcher.stop() == 0)
    }

    @Test("a never-retried exit code is not retried, and @hook-failed hooks hear of the failure")
    func neverRetriedExitCode() async throws {
        let sandbox = Sandbox()
        sandbox.hook("design", "# chatflow-retries: 3\n# chatflow-no-retry-exit: 64\nexit 64")
        sandbox.hook("@hook-failed", "echo \"$CHATFLOW_FAILED_HOOK $CHATFLOW_FAILED_OUTCOME $CHATFLOW_FAILED_ATTEMPTS\" >> \(sandbox.directory)/record.log")
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        #expect(await eventually { sandbox.lines().count == 1 })
        #expect(sandbox.lines() == ["design exit 64 1"])
        #expect(try runs(sandbox, id).filter { $0["hook"]?.stringValue == "design" }.count == 1)
        #expect(await watcher.stop() == 0)
    }

    @Test("rerun: a refused hook runs once fixed; a failed one runs again as attempt 2 with its own log; without a watcher the next one takes it; a hook the transition lacks is refused")
    func reruns() async throws {
        let sandbox = Sandbox()
        sandbox.hook("design", "echo refused-then-fixed", mode: 0o775)
        sandbox.hook("implement", "echo \"implement $CHATFLOW_ATTEMPT\"; [ \"$CHATFLOW_ATTEMPT\" -ge 2 ]")
        var watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        #expect(await eventually { (try? runs(sandbox, id).first?["refused"]) == .bool(true) })
        chmod(sandbox.hooks + "/design", 0o755)
        let asked = try run("chatflow", ["--root", sandbox.root, "rerun", id, "--transition", "0"])
        #expect(asked.status == 0 && asked.stdout.contains("the watcher runs it"), "\(asked.stdout) \(asked.stderr)")
        #expect(await eventually { (try? runs(sandbox, id).contains { $0["hook"]?.stringValue == "design" && $0["exit_code"]?.intValue == 0 }) == true })

        try sandbox.engine.trigger(id)
        #expect(await eventually { (try? runs(sandbox, id).contains { $0["hook"]?.stringValue == "implement" && $0["exit_code"]?.intValue == 1 }) == true })
        #expect(await watcher.stop() == 0)
        // No watcher running: the request waits for the next one.
        let waiting = try run("chatflow", ["--root", sandbox.root, "rerun", id, "--hook", "implement"])
        #expect(waiting.stdout.contains("the next chatflow-watch runs it"))
        watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        #expect(await eventually { (try? runs(sandbox, id).contains { $0["hook"]?.stringValue == "implement" && $0["attempt"]?.intValue == 2 }) == true })
        let second = try #require(try runs(sandbox, id).first { $0["hook"]?.stringValue == "implement" && $0["attempt"]?.intValue == 2 })
        #expect(second["exit_code"]?.intValue == 0)
        #expect(second["log_path"]?.stringValue?.hasSuffix("1-implement.2.log") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox.root + "/.watch/reruns").filter { $0.hasSuffix(".json") }.isEmpty)
        #expect(try run("chatflow", ["--root", sandbox.root, "rerun", id, "--transition", "9"]).status == 2)
        // A hook the transition does not have is refused here, naming the ones it has (the
        // watcher would only say so on its console).
        let absent = try run("chatflow", ["--root", sandbox.root, "rerun", id, "--hook", "design"])
        #expect(absent.status == 2 && absent.stderr.contains("no such hook") && absent.stderr.contains("its hooks: implement"), "\(absent.stderr)")
        #expect(try run("chatflow", ["--root", sandbox.root, "rerun", id, "--transition", "0", "--hook", "design"]).status == 0)
        #expect(await watcher.stop() == 0)
    }
}
