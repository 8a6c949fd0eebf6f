@testable import ChatFlow
import ChatFlowTestSupport
import Synchronization
import Testing
@testable import ChatFlowWatch

import Glibc

@Suite("Change source seam")
struct ChangeSourceTests {
    @Test("the file source reports each committed instance by id and never its temp or lock files", .timeLimit(.minutes(1)))
    func fileSource() async throws {
        let directory = TemporaryDirectory()
        let engine = WorkflowEngine(root: directory.root)
        try engine.prepare()
        let source = FileChangeSource(layout: engine.layout)
        let seen = Mutex<[InstanceChange]>([])
        let token = try await source.subscribe { change in seen.withLock { $0.append(change) } }
        defer { Task { await source.unsubscribe(token) } }
        // Armed on return: a write right after is reported.
        let id = try engine.start(schema: WorkflowSchema(name: "w", phaseNames: ["a", "b"]), featureID: "f")
        try engine.trigger(id)
        let stray = open(engine.layout.instancesDirectory + "/notes.txt", O_WRONLY | O_CREAT, 0o644)
        close(stray)
        #expect(await eventually(timeout: 10) { seen.withLock { $0.filter { $0 == .instance(id: id) }.count >= 2 } })
        #expect(seen.withLock { $0 }.allSatisfy { $0 == .instance(id: id) }, "\(seen.withLock { $0 })")
    }

    @Test("a run whose exit status was lost is recorded as lost, never as a success, and reads back the same")
    func lostStatus() throws {
        let record = RunRecord(
            instanceID: "wfi_000000000001", transition: 2, phase: "testing", event: "testing", hook: "testing",
            startedAt: 1, endedAt: 2, outcome: .statusLost(reason: "waitpid: No child processes"), logPath: "/x.log",
            droppedOutputBytes: 0)
        #expect(!record.outcome.succeeded)
        #expect(record.json["status_lost"] == .bool(true))
        #expect(record.json["exit_code"] == .null)
        #expect(try RunRecord(json: record.json) == record)
    }
}
