import ChatFlow
import Foundation
import Logging
import Synchronization
import Testing
@testable import ChatFlowWatch
import ChatFlowTestSupport

import Glibc

@Suite("Watch service embedded in an async program")
struct WatchServiceTests {
    @Test("run() in a task: ready, runs a transition's hook, ends on shutdown", .timeLimit(.minutes(1)))
    func embedded() async throws {
        let directory = TemporaryDirectory()
        let base = directory.path
        let root = directory.root
        let engine = WorkflowEngine(root: root)
        try engine.prepare()
        mkdir(root + "/hooks", 0o755)
        let hook = root + "/hooks/@any"
        _ = FileManager.default.createFile(
            atPath: hook, contents: Data("#!/bin/sh\necho \"$CHATFLOW_TRANSITION $CHATFLOW_EVENT\" >> \(base)/record\n".utf8))
        chmod(hook, 0o755)
        chmod(root + "/hooks", 0o755)

        let service = WatchService(engine: engine, configuration: WatchConfiguration(jobs: 2), logger: Logger(label: "test"))
        let shutdown = ShutdownSignal()
        let ready = Mutex(false)
        let running = Task { try await service.run(shutdown: shutdown) { _ in ready.withLock { $0 = true } } }
        #expect(await eventually(timeout: 10) { ready.withLock { $0 } })

        let id = try engine.start(schema: WorkflowSchema(name: "two", phaseNames: ["a", "b"]), featureID: "f")
        try engine.trigger(id)
        func recorded() -> [String] { directory.lines("record") }
        #expect(await eventually(timeout: 10) { recorded().count == 2 })
        #expect(recorded() == ["0 a", "1 b"])

        shutdown.request()
        try await running.value
        #expect(try RunJournal(layout: engine.layout).records().count == 2)
    }

    @Test("a watch that cannot start names the limit that was hit: the instance limit when no inotify instance could be had, the watch limit otherwise")
    func watchLimitAdvice() {
        let instances = WatchError.watchFailed(path: "/x", reason: FileEventSource.initialisationFailure + ": Too many open files")
        #expect(instances.description.contains("max_user_instances") && !instances.description.contains("max_user_watches"))
        let watches = WatchError.watchFailed(path: "/x", reason: "No space left on device")
        #expect(watches.description.contains("max_user_watches") && !watches.description.contains("max_user_instances"))
    }
}
