import ChatFlow
import ChatFlowTestSupport
import ChatFlowWatch
import Foundation
import Synchronization
import Testing

import Glibc

/// `chatflow wait` and `WorkflowEngine.wait`: woken by another process's commit, never polling.
@Suite("Waiting for work (real processes, real inotify)", .timeLimit(.minutes(1)))
struct WaitTests {
    /// Starts `chatflow wait …` and returns the process and its stdout pipe.
    private func startWait(_ sandbox: Sandbox, _ arguments: [String]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = binaries.appendingPathComponent("chatflow")
        process.arguments = ["--root", sandbox.root, "wait"] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        return (process, out)
    }

    @Test("wait ID --phase returns when another process triggers into the phase, with the state")
    func waitForPhase() async throws {
        let sandbox = Sandbox()
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        let (waiter, out) = try startWait(sandbox, [id, "--phase", "testing", "--json", "--timeout", "20"])
        #expect(await eventually { hasInotifyWatch(waiter.processIdentifier) }, "armed")
        #expect(waiter.isRunning, "it waits while the condition does not hold")
        _ = try run("chatflow", ["--root", sandbox.root, "trigger", id])
        _ = try run("chatflow", ["--root", sandbox.root, "trigger", id])
        waiter.waitUntilExit()
        #expect(waiter.terminationStatus == 0)
        let state = try JSONValue(parsing: Array(out.fileHandleForReading.readDataToEndOfFile()))
        #expect(state["current_phase"]?.stringValue == "testing")
    }

    @Test("already true: returns at once; --after-transition; --status; timeout exits 5; unknown id exits 3; usage exits 2")
    func exitCodes() throws {
        let sandbox = Sandbox()
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        try sandbox.engine.trigger(id)
        #expect(try run("chatflow", ["--root", sandbox.root, "wait", id, "--phase", "implement"]).status == 0)
        #expect(try run("chatflow", ["--root", sandbox.root, "wait", id, "--after-transition", "0"]).status == 0)
        #expect(try run("chatflow", ["--root", sandbox.root, "wait", id, "--status", "running"]).status == 0)
        let start = Date()
        #expect(try run("chatflow", ["--root", sandbox.root, "wait", id, "--phase", "review", "--timeout", "0.3"]).status == 5)
        #expect(Date().timeIntervalSince(start) >= 0.3)
        #expect(try run("chatflow", ["--root", sandbox.root, "wait", "wfi_000000000000", "--phase", "review"]).status == 3)
        #expect(try run("chatflow", ["--root", sandbox.root, "wait", id, "--phase", "a", "--status", "running"]).status == 2)
        #expect(try run("chatflow", ["--root", sandbox.root, "wait", "--status", "running"]).status == 2)
    }

    @Test("wait --feature F --phase P prints the id of an instance that enters P, from another process")
    func waitForAnyInstance() async throws {
        let sandbox = Sandbox()
        let other = try sandbox.engine.start(schema: devSchema, featureID: "other")
        try sandbox.engine.trigger(other)
        let mine = try sandbox.engine.start(schema: devSchema, featureID: "mine")
        let (waiter, out) = try startWait(sandbox, ["--feature", "mine", "--phase", "implement", "--timeout", "20"])
        #expect(await eventually { hasInotifyWatch(waiter.processIdentifier) }, "armed")
        #expect(waiter.isRunning, "the other feature's instance in implement does not count")
        _ = try run("chatflow", ["--root", sandbox.root, "trigger", mine])
        waiter.waitUntilExit()
        #expect(waiter.terminationStatus == 0)
        #expect(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) == mine + "\n")
    }

    @Test("the library's wait returns the state when another process commits it, and times out otherwise")
    func libraryWait() async throws {
        let sandbox = Sandbox()
        let engine = sandbox.engine
        let id = try engine.start(schema: devSchema, featureID: "f")
        let writer = Task.detached {
            try await Task.sleep(for: .milliseconds(100))
            _ = try run("chatflow", ["--root", sandbox.root, "trigger", id, "--to", "review"])
        }
        let state = try await engine.wait(for: id, until: .phase("review"), timeout: .seconds(20))
        #expect(state.currentPhase == "review")
        try await writer.value
        await #expect(throws: ChatFlowError.timedOut(seconds: 0.2, what: "\(id) in phase 'design'")) { try await engine.wait(for: id, until: .phase("design"), timeout: .milliseconds(200)) }
        await #expect(throws: ChatFlowError.self) { try await engine.wait(for: "wfi_000000000000", until: .phase("design")) }
    }

    @Test("what cannot happen is refused at once: a phase the workflow lacks (exit 2, naming its phases), an instance that finished without the condition or finishes while waited for (exit 1, finished, with its state); without an id, a phase no workflow has yet is waited for with a warning")
    func impossibleWaits() async throws {
        let sandbox = Sandbox()
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        // Typos: no timeout is given, so a wait would never end.
        let typo = try run("chatflow", ["--root", sandbox.root, "wait", id, "--phase", "reveiw", "--json"])
        #expect(typo.status == 2 && typo.stderr.contains("invalid_input") && typo.stderr.contains("known phases: design"), "\(typo.stderr)")
        // Without an id a new workflow may still bring the phase: waited for, with a warning.
        let anyTypo = try run("chatflow", ["--root", sandbox.root, "wait", "--phase", "reveiw", "--timeout", "0.2"])
        #expect(anyTypo.status == 5 && anyTypo.stderr.contains("no instance has phase 'reveiw'") && anyTypo.stderr.contains("known phases: design"), "\(anyTypo.stderr)")
        let claimTypo = try run("chatflow", ["--root", sandbox.root, "claim", "--phase", "reveiw", "--as", "me", "--wait", "--timeout", "0.2"])
        #expect(claimTypo.status == 5 && claimTypo.stderr.contains("no instance has phase 'reveiw'"), "\(claimTypo.stderr)")
        let claimNow = try run("chatflow", ["--root", sandbox.root, "claim", "--phase", "reveiw", "--as", "me"])
        #expect(claimNow.status == 3 && claimNow.stderr.contains("known phases: design"), "\(claimNow.stderr)")
        // Fails while waited for: the waiter ends with the failed state.
        let (waiter, out) = try startWait(sandbox, [id, "--phase", "review", "--json"])
        _ = try run("chatflow", ["--root", sandbox.root, "fail", id, "--reason", "tests broke"])
        waiter.waitUntilExit()
        #expect(waiter.terminationStatus == 1)
        let state = try JSONValue(parsing: Array(out.fileHandleForReading.readDataToEndOfFile()))
        #expect(state["status"]?.stringValue == "failed")
        // Already finished: completed before the phase, or not the status asked for.
        let done = try sandbox.engine.start(schema: WorkflowSchema(name: "w", phaseNames: ["a", "b"]), featureID: "f")
        try sandbox.engine.trigger(done)
        try sandbox.engine.trigger(done)
        #expect(try sandbox.engine.status(done)?.status == .completed)
        let finished = try run("chatflow", ["--root", sandbox.root, "wait", done, "--phase", "a", "--json"])
        #expect(finished.status == 1 && finished.stderr.contains("\"finished\"") && finished.stdout.contains("completed"), "\(finished.stderr)")
        #expect(try run("chatflow", ["--root", sandbox.root, "wait", done, "--status", "failed"]).status == 1)
        #expect(try run("chatflow", ["--root", sandbox.root, "wait", done, "--status", "completed"]).status == 0)
        // The library says the same.
        do {
            _ = try await sandbox.engine.wait(for: id, until: .phase("review"))
            Issue.record("a wait on a failed instance returned")
        } catch let error as ChatFlowError {
            #expect(error.code == "finished")
        }
        #expect(try sandbox.engine.unknownPhaseWarning("reveiw", feature: nil)?.contains("known phases") == true)
        #expect(try sandbox.engine.unknownPhaseWarning("review", feature: nil) == nil)
    }
}
