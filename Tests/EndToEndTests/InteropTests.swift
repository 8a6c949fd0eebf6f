import ChatFlow
import ChatFlowTestSupport
import Foundation
import Testing

import Glibc

/// A Python writer (Tests/interop/writer.py) on the same instance as Swift writers, with the
/// watcher running: in this format, in the original v1.0 layout, and moving only current_phase.
@Suite("Other writers (Python) mixed with Swift writers", .serialized, .timeLimit(.minutes(2)))
struct InteropTests {
    private let writer = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("interop/writer.py").path
    private let schema = WorkflowSchema(name: "long", phaseNames: (0..<80).map { "p\($0)" })

    private func python(_ sandbox: Sandbox, _ id: String, _ mode: String, _ count: Int) throws -> Int32 {
        try runToEnd("/usr/bin/env", ["python3", writer, sandbox.root, id, mode, "\(count)"]).status
    }

    /// Runs `steps` (each advances the instance one phase), then checks that no update was lost,
    /// the history names every phase in order, and the watcher ran `@any` once per transition.
    private func check(_ sandbox: Sandbox, _ watcher: Watcher, _ id: String, transitions: Int) async throws {
        #expect(await eventually { sandbox.lines().count >= transitions + 1 })
        let state = try #require(try sandbox.engine.freshStatus(id))
        #expect(state.historyLength == transitions + 1, "no update lost")
        #expect(state.currentPhase == "p\(transitions)")
        #expect(try sandbox.engine.history(id).map(\.phase) == (0...transitions).map { "p\($0)" })
        let positions = transitionsByInstance(sandbox.lines())[id]?.map(\.0)
        #expect(positions == Array(0...transitions), "every transition's hook ran once: \(positions ?? [])")
        #expect(await watcher.stop() == 0)
    }

    @Test("this format and the v1.0 history list, concurrently with Swift triggers: no lost update, every hook once")
    func concurrent() async throws {
        for mode in ["format", "v1list"] {
            let sandbox = Sandbox()
            sandbox.hook("@any", sandbox.recorder())
            let watcher = try Watcher(sandbox)
            #expect(await watcher.ready())
            let id = try sandbox.engine.start(schema: schema, featureID: "f")
            async let fromPython = python(sandbox, id, mode, 30)
            for _ in 0..<30 { try sandbox.engine.trigger(id) }
            #expect(try await fromPython == 0, "\(mode)")
            try await check(sandbox, watcher, id, transitions: 60)
            if mode == "v1list" {
                let doctor = try run("chatflow", ["--root", sandbox.root, "doctor"])
                #expect(!doctor.stdout.contains("another writer's layout"), "migrated by the engine: \(doctor.stdout)")
            }
        }
    }

    @Test("a writer that only moves current_phase, alternating with Swift: the engine migrates it; doctor --fix too")
    func phaseOnly() async throws {
        let sandbox = Sandbox()
        sandbox.hook("@any", sandbox.recorder())
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: schema, featureID: "f")
        for step in 0..<10 {
            #expect(try python(sandbox, id, "phase", 1) == 0)
            // The watcher sees the move (and migrates the file) before the next writer comes.
            #expect(await eventually { sandbox.lines().count >= 2 * step + 2 })
            try sandbox.engine.trigger(id)
        }
        try await check(sandbox, watcher, id, transitions: 20)
        #expect(watcher.log.contains("another writer's layout"))

        // Without a watcher, doctor reports the file and --fix migrates it, keeping every entry.
        #expect(try python(sandbox, id, "v1list", 3) == 0)
        let report = try run("chatflow", ["--root", sandbox.root, "doctor"])
        #expect(report.status == 1 && report.stdout.contains("another writer's layout"))
        let fixed = try run("chatflow", ["--root", sandbox.root, "doctor", "--fix"])
        #expect(fixed.stdout.contains("fixed: "))
        let text = try String(contentsOfFile: sandbox.engine.layout.stateFile(id), encoding: .utf8)
        #expect(!text.contains("\"history\""))
        #expect(try sandbox.engine.history(id).map(\.phase) == (0...23).map { "p\($0)" })
    }
}
