import ChatFlowTestSupport
import Foundation
import Testing
@testable import ChatFlow

import Glibc

@Suite("Engine")
struct EngineTests {
    @Test("start creates the layout, entry 0, the link and a created status")
    func start() throws {
        let root = TemporaryRoot()
        let engine = root.engine
        let id = try engine.start(schema: fourPhases, featureID: "login", context: ["k": "v"], meta: ["user": "u1"])
        let state = try #require(try engine.status(id))
        #expect(state.status == .created)
        #expect(state.currentPhase == "design")
        #expect(state.historyLength == 1)
        #expect(state.variables == ["k": "v"])
        #expect(state.meta == ["user": "u1"])
        #expect(try engine.history(id).map(\.phase) == ["design"])
        #expect(FileSystem.isDirectory(engine.layout.tasksDirectory(id)))
        #expect(try StateStore(layout: engine.layout).readLink(feature: "login") == [id])
    }

    @Test("the state file, start.json and commit lines: pretty sorted JSON as Python writes it, the schema (spliced from the cache) included; the commit's state is the state without schema and history_bytes")
    func storedText() throws {
        let root = TemporaryRoot()
        let engine = root.engine
        let schema = WorkflowSchema(name: "wide", phases: (0..<30).map { WorkflowSchema.Phase(name: "p\($0)", task: $0 % 3 == 0 ? "task \"\($0)\"" : nil) })
        let id = try engine.start(schema: schema, featureID: "f", context: ["k": ["nested": [1, 2]]])
        try engine.trigger(id, data: ["x": 1.5])
        for path in [engine.layout.stateFile(id), engine.layout.startFile(id)] {
            var text = Array(try #require(FileManager.default.contents(atPath: path)))
            if path == engine.layout.stateFile(id) {
                // The view starts with its check: the CRC-32 (zlib's; its check value below) of
                // every byte after the first 26.
                #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
                #expect(text.starts(with: Array(#"{"view_crc32": ""#.utf8)) && text[24...25] == Array(#"","#.utf8)[...])
                let body = Array(text[26...])
                #expect(UInt32(String(decoding: text[16..<24], as: UTF8.self), radix: 16) == CRC32.checksum(body))
                text = Array("{".utf8) + body
            }
            let parsed = try JSONValue(parsing: text)
            #expect(String(decoding: text, as: UTF8.self) == parsed.prettyText + "\n", "\(path)")
            #expect(parsed.objectValue?["workflow_schema"] == schema.json)
        }
        let state = try #require(try engine.freshStatus(id))
        let line = try #require(String(decoding: FileManager.default.contents(atPath: engine.layout.historyFile(id))!, as: UTF8.self).split(separator: "\n").last)
        var expected = state.json.objectValue!
        expected["workflow_schema"] = nil
        expected["history_bytes"] = nil
        #expect(try JSONValue(parsing: Array(line.utf8)).objectValue?["state"] == .object(expected))
    }

    @Test("trigger closes the entry, merges data and meta, enters the next phase, completes at the end", arguments: StoreKind.available)
    func triggerFlow(_ kind: StoreKind) throws {
        let store = try TestStore(kind)
        let engine = try store.engine
        let id = try engine.start(schema: fourPhases, featureID: "f", context: ["a": 1, "keep": true])
        var state = try engine.trigger(id, data: ["a": 2, "b": ["nested": [1, 2]]], meta: ["m": "x"])
        #expect(state.currentPhase == "implement")
        #expect(state.status == .running)
        #expect(state.variables == ["a": 2, "keep": true, "b": ["nested": [1, 2]]])
        #expect(state.meta == ["m": "x"])
        state = try engine.trigger(id, data: "not merged")
        #expect(state.variables["a"] == 2)
        state = try engine.trigger(id)
        state = try engine.trigger(id)
        #expect(state.status == .completed)
        #expect(state.currentEntry == nil)
        let history = try engine.history(id)
        #expect(history.map(\.phase) == ["design", "implement", "testing", "review"])
        #expect(history.allSatisfy { $0.status == .completed && $0.endedAt != nil })
        #expect(history[0].triggerDataSnapshot == ["a": 2, "b": ["nested": [1, 2]]])
        #expect(history[1].triggerDataSnapshot == "not merged")
        #expect(throws: ChatFlowError.instanceFinished(instanceID: id, status: .completed)) { try engine.trigger(id) }
        #expect(try engine.history(id).count == 4)
    }

    @Test("--to sends work back to an earlier phase; unknown phases are refused and nothing is written", arguments: StoreKind.available)
    func explicitTarget(_ kind: StoreKind) throws {
        let store = try TestStore(kind)
        let engine = try store.engine
        let id = try engine.start(schema: fourPhases, featureID: "f")
        try engine.trigger(id, to: "review")
        let state = try engine.trigger(id, data: ["verdict": "rework"], to: "implement")
        #expect(state.currentPhase == "implement")
        #expect(try engine.history(id).map(\.phase) == ["design", "review", "implement"])
        let before = try engine.freshStatus(id)
        #expect(throws: ChatFlowError.self) { try engine.trigger(id, to: "deploy") }
        #expect(throws: ChatFlowError.self) { try engine.trigger(id, to: "../x") }
        #expect(try engine.freshStatus(id) == before)
    }

    @Test("fail records the reason and refuses further triggers", arguments: StoreKind.available)
    func fail(_ kind: StoreKind) throws {
        let store = try TestStore(kind)
        let engine = try store.engine
        let id = try engine.start(schema: fourPhases, featureID: "f")
        let state = try engine.fail(id, reason: "tests broke")
        #expect(state.status == .failed)
        #expect(try engine.history(id).last?.triggerDataSnapshot == ["reason": "tests broke"])
        #expect(throws: ChatFlowError.instanceFinished(instanceID: id, status: .failed)) { try engine.fail(id) }
    }

    @Test("unknown and invalid ids", arguments: StoreKind.available)
    func unknownIDs(_ kind: StoreKind) throws {
        let store = try TestStore(kind)
        let engine = try store.engine
        try engine.prepare()
        #expect(try engine.status("wfi_000000000000") == nil)
        #expect(throws: ChatFlowError.self) { try engine.trigger("wfi_000000000000") }
        #expect(throws: ChatFlowError.self) { try engine.status("../../etc/passwd") }
        #expect(throws: ChatFlowError.self) { try engine.start(schema: fourPhases, featureID: "../x") }
    }

    @Test("feature status aggregates through the link", arguments: StoreKind.available)
    func featureStatus(_ kind: StoreKind) throws {
        let store = try TestStore(kind)
        let engine = try store.engine
        let a = try engine.start(schema: fourPhases, featureID: "f")
        let b = try engine.start(schema: fourPhases, featureID: "f")
        let c = try engine.start(schema: fourPhases, featureID: "f")
        _ = try engine.start(schema: fourPhases, featureID: "other")
        for _ in 0..<4 { try engine.trigger(a) }
        try engine.fail(b)
        let status = try engine.featureStatus("f")
        #expect(status.totalInstances == 3)
        #expect(status.completedCount == 1)
        #expect(status.failedCount == 1)
        #expect(status.runningCount == 1)
        #expect(status.latestInstanceID == c)
        #expect(status.status == "failed")
        #expect(try engine.featureStatus("none").status == "empty")
        #expect(try engine.list(feature: "f", status: .completed).map(\.instanceID) == [a])
        #expect(try engine.list().count == 4)
    }

    @Test("an instance with no start.json (a format 1 writer started it) gets one before its first commit line; a torn state file then recovers from both")
    func startFileForOlderInstances() throws {
        let root = TemporaryRoot()
        let engine = root.engine
        let id = try engine.start(schema: fourPhases, featureID: "f", context: ["k": "v"])
        #expect(unlink(engine.layout.startFile(id)) == 0)
        // Triggered from another engine, as from another process: the one that started the
        // instance remembers writing its start.json (`ViewMemo`) and would not look again.
        try root.engine.trigger(id, data: ["step": 1])
        #expect(FileSystem.exists(engine.layout.startFile(id)))
        try StateStore.replace(engine.layout.stateFile(id), temp: engine.layout.stateFile(id) + ".x", bytes: [], directory: nil)
        engine.invalidateAll()
        let recovered = try #require(try engine.freshStatus(id))
        #expect(recovered.historyLength == 2 && recovered.currentPhase == "implement" && recovered.schema == fourPhases)
        #expect(recovered.variables == ["k": "v", "step": 1])
    }

    @Test("corrupt state files are reported with the path and never overwritten")
    func corruptState() throws {
        let root = TemporaryRoot()
        let engine = root.engine
        let id = try engine.start(schema: fourPhases, featureID: "f")
        let path = engine.layout.stateFile(id)
        let garbage = Array("{\"instance_id\": \"\(id)\", broken".utf8)
        try StateStore.replace(path, temp: path + ".x", bytes: garbage, directory: engine.layout.instancesDirectory)
        engine.invalidateAll()
        #expect {
            try engine.status(id)
        } throws: { error in
            guard case .corruptState(let reported, _) = error as? ChatFlowError else { return false }
            return reported == path
        }
        #expect(throws: ChatFlowError.self) { try engine.trigger(id) }
        let file = try FileDescriptor(opening: path, flags: O_RDONLY)
        #expect(try file.readAll(limit: 1000) == garbage)
    }

    @Test("a history tail left by a crashed writer is cut off by the next trigger")
    func uncommittedHistoryTail() throws {
        let root = TemporaryRoot()
        let engine = root.engine
        let id = try engine.start(schema: fourPhases, featureID: "f")
        try engine.trigger(id)
        let history = engine.layout.historyFile(id)
        let file = try FileDescriptor(opening: history, flags: O_WRONLY | O_APPEND)
        try file.write(Array("{\"half\": tru".utf8), at: try file.size())
        #expect(try engine.history(id).count == 2)
        try engine.trigger(id)
        #expect(try engine.history(id).map(\.phase) == ["design", "implement", "testing"])
    }

    @Test("threads of one process never lose an update", arguments: StoreKind.available)
    func threadsDoNotLoseUpdates(_ kind: StoreKind) async throws {
        let store = try TestStore(kind)
        let engine = try store.engine
        let schema = WorkflowSchema(name: "long", phaseNames: (0..<1000).map { "p\($0)" })
        let id = try engine.start(schema: schema, featureID: "f")
        let engines = try (0..<8).map { _ in try store.engine }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for own in engines {
                group.addTask {
                    for _ in 0..<50 { try own.trigger(id) }
                }
            }
            try await group.waitForAll()
        }
        let state = try #require(try engine.freshStatus(id))
        #expect(state.historyLength == 401)
        #expect(state.currentPhase == "p400")
        #expect(try engine.history(id).count == 401)
    }

    @Test("the cache serves within the TTL; invalidation and the TTL bound staleness")
    func cacheStaleness() throws {
        let root = TemporaryRoot()
        let reader = WorkflowEngine(root: root.path, cacheTTL: 0.3)
        let writer = root.engine
        let id = try writer.start(schema: fourPhases, featureID: "f")
        #expect(try reader.status(id)?.currentPhase == "design")
        try writer.trigger(id)
        #expect(try reader.status(id)?.currentPhase == "design", "a cached read within the TTL")
        reader.invalidate(id)
        #expect(try reader.status(id)?.currentPhase == "implement")
        try writer.trigger(id)
        let deadline = Timestamps.monotonic() + 5
        while try reader.status(id)?.currentPhase != "testing" && Timestamps.monotonic() < deadline { usleep(20_000) }
        #expect(try reader.status(id)?.currentPhase == "testing", "the TTL ends staleness")
    }

    @Test("the process-wide engine switches root with one call")
    func singleton() throws {
        let root = TemporaryRoot()
        ChatFlow.engine.use(root: root.path)
        let id = try ChatFlow.engine.start(schema: fourPhases, featureID: "f")
        #expect(ChatFlow.engine.root == root.path)
        #expect(try WorkflowEngine(root: root.path).status(id) != nil)
    }

    @Test("artifacts are saved atomically and listed; names are validated")
    func artifacts() throws {
        let root = TemporaryRoot()
        let engine = root.engine
        let id = try engine.start(schema: fourPhases, featureID: "f")
        try engine.artifacts.save(id, name: "report.txt", bytes: Array("ok".utf8))
        #expect(try engine.artifacts.names(id) == ["report.txt"])
        #expect(try engine.artifacts.read(id, name: "report.txt") == Array("ok".utf8))
        #expect(throws: ChatFlowError.self) { try engine.artifacts.save(id, name: "../x", bytes: []) }
    }

    @Test("the commit log: one sector-aligned record per commit; a head the lock file lost or garbled is found again by replaying, and nothing is lost")
    func commitLogHead() throws {
        let root = TemporaryRoot()
        let engine = root.engine
        let id = try engine.start(schema: fourPhases, featureID: "f")
        try engine.trigger(id)
        let lock = engine.layout.commitLockFile
        let head = try String(contentsOfFile: lock, encoding: .utf8)
        let fields = head.split(separator: " ")
        #expect(fields.count == 3 && fields[0].count == 36 && head.utf8.count == 79)
        #expect(Int(fields[1]) == 2 && Int(fields[2].prefix(20))! % 512 == 0, "one record written, the head on a sector: \(head)")
        for garbled in ["", "x", String(head.prefix(37)) + "00000000000000000002 00000000000000004097\n"] {
            try garbled.write(toFile: lock, atomically: false, encoding: .utf8)
            try engine.trigger(id, to: "design")
            #expect(try String(contentsOfFile: lock, encoding: .utf8).utf8.count == 79, "the head written again")
        }
        #expect(try engine.history(id).map(\.phase) == ["design", "implement", "design", "design", "design"])
        let log = try Data(contentsOf: URL(fileURLWithPath: engine.layout.commitLogFile))
        #expect(log.count == 1 << 20)
        let records = log.indices.filter { $0 % 512 == 0 && log[$0..<($0 + 5)] == Data("cfr1 ".utf8) }
        #expect(records.count == 4, "a record per commit, none lost to a garbled head: \(records)")
    }

    @Test("a view this process wrote is taken back from its text without decoding: decoding every view gives back exactly the state it was written from, and another writer's bytes are decoded")
    func viewMemoRoundTrip() throws {
        let root = TemporaryRoot()
        let engine = root.engine
        let store = try #require(engine.backend.store as? StateStore)
        let json = "{\"s\": \"e\\u0301 \\\"q\\\" \\\\ \\n\\t\\u0001 ✓ 😀\", \"i\": 42, \"big\": 12345678901234567890, \"neg\": -0.0, \"f\": 1.0, "
            + "\"g\": 0.1, \"e\": 1e300, \"tiny\": 5e-324, \"exp\": 2.5E+3, \"arr\": [1, \"x\", null, true, []], \"obj\": {\"a\": {\"b\": {}}}, "
            + "\"null\": null, \"bool\": false, \"\": \"empty key\"}"
        let odd = try #require(try JSONValue(parsing: Array(json.utf8)).objectValue)
        let id = try engine.start(schema: fourPhases, featureID: "f", context: odd, meta: ["who": .string("ü")])
        var states = [try #require(try engine.status(id))]
        states.append(try engine.trigger(id, data: .object(odd), meta: ["n": 1.5]))
        states.append(try engine.trigger(id, data: ["x": 0.30000000000000004, "y": -17], to: "design"))
        let grant = try #require(try engine.claim(phase: "design", owner: "agent \"7\""))
        states.append(try engine.heartbeat(id, token: grant.claim.token))
        states.append(try engine.trigger(id, data: .string("plain"), token: grant.claim.token))
        states.append(try engine.fail(id, reason: "stop ✗"))
        for (index, state) in states.enumerated() {
            #expect(try StateStore.decodeState(StateStore.viewBytes(state), path: "view \(index)") == state, "view \(index) decodes to its state")
        }
        let text = Array(try #require(FileManager.default.contents(atPath: engine.layout.stateFile(id))))
        #expect(try StateStore.decodeState(text, path: "state file") == states.last)
        #expect(store.memo.state(id, text: text) == states.last, "the last view written is remembered")
        // The paths a change builds once are Layout's.
        let files = InstanceFiles(engine.layout, id)
        #expect([files.directory, files.history, files.start, files.state, files.temp, files.lock] == [
            engine.layout.instanceDirectory(id), engine.layout.historyFile(id), engine.layout.startFile(id),
            engine.layout.stateFile(id), engine.layout.stateTempFile(id), engine.layout.lockFile(id),
        ])
        // Another writer's text (one value changed, its check recomputed) is not taken from the memo.
        var other = text
        let at = try #require(other.indices.first { other[$0...].starts(with: Array("\"y\": -17".utf8)) })
        other[at + 7] = UInt8(ascii: "8")
        other = StateStore.checkedView([UInt8(ascii: "{")] + other.dropFirst(26))
        #expect(store.memo.state(id, text: other) == nil)
        try Data(other).write(to: URL(fileURLWithPath: engine.layout.stateFile(id)))
        #expect(try engine.freshStatus(id)?.variables["y"] == -18, "the changed bytes were decoded")
    }
}
