import ChatFlowTestSupport
import ChatFlow
import ChatFlowWatch
import Foundation
import Testing

import Glibc

@Suite("Engine across processes", .serialized)
struct EngineProcessTests {
    @Test("8 processes × 100 `chatflow trigger` on one instance lose no update", .timeLimit(.minutes(3)))
    func cliContention() async throws {
        let sandbox = Sandbox()
        let (id, allSucceeded) = try contendedTriggers(sandbox)
        #expect(allSucceeded)
        let state = try #require(try sandbox.engine.freshStatus(id))
        #expect(state.historyLength == 801)
        #expect(state.currentPhase == "p800")
        let history = try sandbox.engine.history(id)
        #expect(history.count == 801)
        #expect(history.map(\.phase) == (0...800).map { "p\($0)" })
    }

    @Test("writers killed with SIGKILL at random moments leave only committed states", .timeLimit(.minutes(3)))
    func writerCrashes() async throws {
        let sandbox = Sandbox()
        let engine = sandbox.engine
        let ids = try (0..<3).map { _ in try engine.start(schema: devSchema, featureID: "crash") }
        var generator = SystemRandomNumberGenerator()
        var kills = 0
        for round in 0..<220 {
            let id = ids[round % ids.count]
            let before = try #require(try engine.freshStatus(id)).historyLength
            let process = Process()
            process.executableURL = binaries.appendingPathComponent("chatflow-bench")
            process.arguments = ["writer", "--root", sandbox.root, "--ids", id, "--cycle", "--report"]
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            usleep(UInt32.random(in: 2_000...25_000, using: &generator))
            kill(process.processIdentifier, SIGKILL)
            let acknowledged = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                .split(separator: "\n").count
            process.waitUntilExit()
            kills += process.terminationReason == .uncaughtSignal ? 1 : 0
            // Every file parses and is a committed state: the acknowledged triggers, plus at most
            // the one in flight when the kill landed.
            let state = try #require(try engine.freshStatus(id))
            let history = try engine.history(id)
            #expect(history.count == state.historyLength)
            let made = state.historyLength - before
            #expect(made >= acknowledged && made <= acknowledged + 1, "round \(round): \(made) vs \(acknowledged)")
        }
        #expect(kills >= 200)
        let names = try FileManager.default.contentsOfDirectory(atPath: sandbox.root + "/instances")
        #expect(try engine.instanceIDs().sorted() == ids.sorted(), "stray temp files are never taken for state: \(names)")
        #expect(try engine.featureStatus("crash").totalInstances == 3)
    }

    @Test("invalid input to every command: clean error, documented exit code, nothing written")
    func hostileArguments() throws {
        let sandbox = Sandbox()
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        let before = try String(contentsOfFile: sandbox.engine.layout.stateFile(id), encoding: .utf8)
        let cases: [([String], Int32)] = [
            (["status", "../../etc/passwd"], 2), (["status", "wfi_000000000000"], 3), (["trigger", id, "--data", "{bad"], 2),
            (["trigger", id, "--to", "../x"], 2), (["trigger", id, "--to", "deploy"], 2), (["trigger", id, "--meta", "[1]"], 2),
            (["start", "--feature", "../f", "--phases", "a"], 2), (["start", "--feature", "f", "--phases", "a,,b"], 2),
            (["start", "--feature", "f"], 2), (["feature", "a/b"], 2), (["history", "wfi_zzzzzzzzzzzz"], 2),
            (["list", "--status", "weird"], 2), (["fail", "wfi_000000000001"], 3), (["trigger", id, "--expect-transition", "7"], 4),
            (["nonsense"], 2),
        ]
        for (arguments, expected) in cases {
            let result = try run("chatflow", ["--root", sandbox.root] + arguments)
            #expect(result.status == expected, "\(arguments): \(result.stderr)")
            #expect(result.stdout.isEmpty, "\(arguments)")
            #expect(result.stderr.hasPrefix("chatflow: error: "), "\(arguments): \(result.stderr)")
        }
        #expect(try String(contentsOfFile: sandbox.engine.layout.stateFile(id), encoding: .utf8) == before)
    }

    @Test("live invalidation shows another process's write at once, not after the 30 s TTL", .timeLimit(.minutes(1)))
    func liveInvalidation() async throws {
        let sandbox = Sandbox()
        let reader = WorkflowEngine(root: sandbox.root)
        let id = try reader.start(schema: devSchema, featureID: "f")
        #expect(try reader.status(id)?.currentPhase == "design")
        let token = try await LiveInvalidation.enable(for: reader)
        defer { Task { await LiveInvalidation.disable(token) } }
        try run("chatflow", ["--root", sandbox.root, "trigger", id])
        let seen = try await eventually(timeout: 5) { try reader.status(id)?.currentPhase == "implement" }
        #expect(seen)
    }
}
