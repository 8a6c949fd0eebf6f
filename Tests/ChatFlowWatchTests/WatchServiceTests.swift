import ChatFlow
import Foundation
import Logging
import Synchronization
import Testing
@testable import ChatFlowWatch

#if canImport(Glibc)
import Glibc
#endif

@Suite("Watch service embedded in an async program")
struct WatchServiceTests {
    @Test("run() in a task: ready, runs a transition's hook, ends on shutdown", .timeLimit(.minutes(1)))
    func embedded() async throws {
        let base = NSTemporaryDirectory() + "embedded-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let root = base + "/.chatflow"
        let engine = WorkflowEngine(root: root)
        try engine.prepare()
        mkdir(root + "/hooks", 0o755)
        let hook = root + "/hooks/@any"
        _ = FileManager.default.createFile(
            atPath: hook, contents: Data("#!/bin/sh\necho \"$CHATFLOW_TRANSITION $CHATFLOW_EVENT\" >> \(base)/record\n".utf8))
        chmod(hook, 0o755)
        chmod(root + "/hooks", 0o755)

        let service = WatchService(configuration: WatchConfiguration(root: root, jobs: 2), logger: Logger(label: "test"))
        let shutdown = ShutdownSignal()
        let ready = Mutex(false)
        let running = Task { try await service.run(shutdown: shutdown) { _ in ready.withLock { $0 = true } } }
        #expect(await eventually(timeout: 10) { ready.withLock { $0 } })

        let id = try engine.start(schema: WorkflowSchema(name: "two", phaseNames: ["a", "b"]), featureID: "f")
        try engine.trigger(id)
        func recorded() -> [String] {
            ((try? String(contentsOfFile: base + "/record", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        #expect(await eventually(timeout: 10) { recorded().count == 2 })
        #expect(recorded() == ["0 a", "1 b"])

        shutdown.request()
        try await running.value
        #expect(try RunJournal(layout: engine.layout).records().count == 2)
    }
}
