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

    /// The committed state as the Python reader sees it ("Reading a state", after a replay).
    private func pythonRead(_ sandbox: Sandbox, _ id: String) throws -> [String: Any] {
        let result = try runToEnd("/usr/bin/env", ["python3", writer, sandbox.root, id, "read", "0"])
        try #require(result.status == 0, "\(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    /// What a restart looks like to the store: the boot its commit log's lock file records is no
    /// longer the running one, so the next process replays the log.
    private func simulateNewBoot(_ sandbox: Sandbox) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: sandbox.engine.layout.commitLockFile))
        try handle.write(contentsOf: Data("00000000-0000-0000-0000-000000000000".utf8))
        try handle.close()
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

    @Test("this format (the commit log), its text before the log, before checked views, format 1 and the v1.0 history list, concurrently with Swift triggers: no lost update, every hook once")
    func concurrent() async throws {
        for mode in ["format", "synced", "format2", "format1", "v1list"] {
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

    @Test("a state file behind its history (a writer cut off after its commit) or torn: Python and Swift each recover the other's commit")
    func recovery() async throws {
        let sandbox = Sandbox()
        let engine = sandbox.engine
        let id = try engine.start(schema: schema, featureID: "f")
        let view = engine.layout.stateFile(id)
        func pythonRead() throws -> [String: Any] { try self.pythonRead(sandbox, id) }

        // Python commits and is cut off before its view: the Swift reader recovers the commit.
        try engine.trigger(id, data: ["from": "swift"])
        #expect(try python(sandbox, id, "killed", 1) == 0)
        let stale = try String(contentsOfFile: view, encoding: .utf8)
        #expect(stale.contains("\"history_length\": 2"), "the view was left behind")
        let shown = try run("chatflow", ["--root", sandbox.root, "status", id, "--json"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any])
        #expect(document["history_length"] as? Int == 3 && document["current_phase"] as? String == "p2")
        #expect((document["variables"] as? [String: Any])?["by"] as? String == "python")
        #expect(try String(contentsOfFile: view, encoding: .utf8).contains("\"history_length\": 3"), "the reader repaired the view")
        #expect((document["history"] as? [[String: Any]])?.allSatisfy { $0["state"] == nil } == true, "entries are shown without the commit's state")

        // Swift commits and its view is lost (a power cut): Python reads the commit, and agrees.
        let before = try Data(contentsOf: URL(fileURLWithPath: view))
        try engine.trigger(id, data: ["from": "swift", "n": 4])
        try before.write(to: URL(fileURLWithPath: view))
        let recovered = try pythonRead()
        #expect(recovered["history_length"] as? Int == 4 && recovered["current_phase"] as? String == "p3")
        #expect((recovered["variables"] as? [String: Any])?["n"] as? Int == 4)
        #expect(try engine.freshStatus(id)?.historyLength == 4)

        // A torn view (empty: the rename reached the disk, the data did not): both recover.
        try engine.trigger(id)
        try Data().write(to: URL(fileURLWithPath: view))
        #expect(try pythonRead()["history_length"] as? Int == 5)
        try Data("{\n  \"created".utf8).write(to: URL(fileURLWithPath: view))
        #expect(try engine.freshStatus(id)?.historyLength == 5)

        // Writers go on from a recovered state, in either language.
        try before.write(to: URL(fileURLWithPath: view))
        #expect(try python(sandbox, id, "format", 2) == 0)
        try engine.trigger(id)
        #expect(try engine.history(id).map(\.phase) == (0...7).map { "p\($0)" })
        #expect(try pythonRead()["history_length"] as? Int == 8)

        // A mix of two views (what a power cut leaves of an in-place rewrite): valid JSON, current
        // by its history_bytes, but never committed. Its view_crc32 gives it away to the replay
        // of the next boot (its commit is in the log's lap): both readers recover the commit.
        let good = try String(contentsOfFile: view, encoding: .utf8)
        #expect(good.hasPrefix("{\"view_crc32\": \""))
        let mixed = good.replacingOccurrences(of: "\"current_phase\": \"p7\"", with: "\"current_phase\": \"p1\"")
        #expect(mixed != good)
        try mixed.write(toFile: view, atomically: false, encoding: .utf8)
        try simulateNewBoot(sandbox)
        #expect(try pythonRead()["current_phase"] as? String == "p7")
        try mixed.write(toFile: view, atomically: false, encoding: .utf8)
        try simulateNewBoot(sandbox)
        #expect(try WorkflowEngine(root: sandbox.root).freshStatus(id)?.currentPhase == "p7")
        #expect(try String(contentsOfFile: view, encoding: .utf8) != mixed, "the replay repaired the view")
    }

    @Test("the same edit in the same boot, where nothing can tear a view: another writer's (sed -i keeps the stale view_crc32 first), kept by both readers")
    func staleCheckIsAnotherWriters() async throws {
        let sandbox = Sandbox()
        let engine = sandbox.engine
        let id = try engine.start(schema: schema, featureID: "f")
        for _ in 0..<7 { try engine.trigger(id) }
        let view = engine.layout.stateFile(id)
        let good = try String(contentsOfFile: view, encoding: .utf8)
        let edited = good.replacingOccurrences(of: "\"current_phase\": \"p7\"", with: "\"current_phase\": \"p8\"")
        try edited.write(toFile: view, atomically: true, encoding: .utf8)
        #expect(try pythonRead(sandbox, id)["current_phase"] as? String == "p8")
        try edited.write(toFile: view, atomically: true, encoding: .utf8)
        #expect(try WorkflowEngine(root: sandbox.root).freshStatus(id)?.currentPhase == "p8")
        // Checked again by the reader that took it, so lock-free readers take it at once.
        let restamped = Array(try Data(contentsOf: URL(fileURLWithPath: view)))
        #expect(String(decoding: restamped[16..<24], as: UTF8.self) == String(format: "%08x", zlibCRC32(restamped[26...])))
        #expect(String(decoding: restamped[26...], as: UTF8.self) == String(edited.utf8.dropFirst(26))!, "the writer's text kept")
        try engine.trigger(id)
        #expect(try engine.freshStatus(id)?.currentPhase == "p9")
        #expect(try engine.history(id).map(\.phase).suffix(3) == ["p7", "p8", "p9"], "the move to p8 is in the history")
    }

    @Test("other writers as people write them (json.dump with its defaults, indent=2, sorted keys; sed -i on current_phase; the original's habit; the v1.0 history list), each concurrently with `chatflow trigger`: no step lost")
    func byHand() async throws {
        for mode in ["dump", "indent", "sorted", "sed", "phase", "v1list"] {
            let sandbox = Sandbox()
            let id = try sandbox.engine.start(schema: schema, featureID: "f")
            async let fromPython = python(sandbox, id, mode, 30)
            for _ in 0..<30 {
                let result = try run("chatflow", ["--root", sandbox.root, "trigger", id])
                #expect(result.status == 0, "\(mode): \(result.stderr)")
            }
            #expect(try await fromPython == 0, "\(mode)")
            let state = try #require(try WorkflowEngine(root: sandbox.root).freshStatus(id))
            #expect(state.currentPhase == "p60", "\(mode): every step of both writers kept")
            if ["dump", "indent", "sorted"].contains(mode) {
                #expect(state.variables["by_" + mode] == 30, "\(mode): every variable the writer set kept")
            }
            #expect(try pythonRead(sandbox, id)["current_phase"] as? String == "p60", "\(mode)")
        }
    }

    @Test("a power cut after acknowledged commits (their history lines and views lost, a new boot): Python replays Swift's commits from the log, and Swift Python's")
    func powerCutReplay() async throws {
        let sandbox = Sandbox()
        let engine = sandbox.engine
        let id = try engine.start(schema: schema, featureID: "f")
        let history = engine.layout.historyFile(id)
        let view = engine.layout.stateFile(id)
        func pythonRead() throws -> [String: Any] { try self.pythonRead(sandbox, id) }
        func size(_ path: String) throws -> Int {
            try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        }
        /// What a power cut leaves when the lines written since `bytes` and the views since
        /// `oldView` never reached the disk (they are not synced; only the log is).
        func powerCut(historyBackTo bytes: Int, view oldView: Data) throws {
            #expect(truncate(history, off_t(bytes)) == 0)
            try oldView.write(to: URL(fileURLWithPath: view))
        }
        func reboot() throws { try simulateNewBoot(sandbox) }

        // Swift commits p2 and p3; the cut takes both lines and views.
        try engine.trigger(id)
        let bytes = try size(history)
        let oldView = try Data(contentsOf: URL(fileURLWithPath: view))
        try engine.trigger(id, data: ["n": 2])
        try engine.trigger(id, data: ["n": 3])
        try powerCut(historyBackTo: bytes, view: oldView)
        // In the same boot nothing replays: the cut's loss is what a reader would see (the test has teeth).
        #expect(try pythonRead()["current_phase"] as? String == "p1")
        try reboot()
        let replayed = try pythonRead()
        #expect(replayed["history_length"] as? Int == 4 && replayed["current_phase"] as? String == "p3")
        #expect((replayed["variables"] as? [String: Any])?["n"] as? Int == 3)

        // Python commits p4 and p5 through the log; the cut takes them; a new Swift process replays.
        let pythonBytes = try size(history)
        let pythonView = try Data(contentsOf: URL(fileURLWithPath: view))
        #expect(try python(sandbox, id, "format", 2) == 0)
        try powerCut(historyBackTo: pythonBytes, view: pythonView)
        try reboot()
        let shown = try run("chatflow", ["--root", sandbox.root, "status", id, "--json"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any], "\(shown.stderr)")
        #expect(document["history_length"] as? Int == 6 && document["current_phase"] as? String == "p5")
        #expect((document["history"] as? [[String: Any]])?.map { $0["phase"] as? String } == (0...5).map { "p\($0)" })
        // Both languages go on from the replayed store.
        try engine.trigger(id)
        #expect(try python(sandbox, id, "format", 1) == 0)
        #expect(try engine.history(id).map(\.phase) == (0...7).map { "p\($0)" })
    }

    @Test("a small commit log (16 KiB, a dozen records a lap) made by Python: both languages end laps in turn (syncfs, new header), and a power cut within the last lap is replayed")
    func laps() async throws {
        let sandbox = Sandbox()
        let engine = sandbox.engine
        let id = try engine.start(schema: schema, featureID: "f")
        let small = ["CHATFLOW_COMMIT_LOG_SIZE": "16384"]
        func python(_ count: Int) throws -> Int32 {
            try runToEnd("/usr/bin/env", ["python3", writer, sandbox.root, id, "format", "\(count)"], environment: small).status
        }
        let log = engine.layout.commitLogFile
        func base() throws -> Int {
            let header = try #require(FileHandle(forReadingAtPath: log)).readData(ofLength: 35)
            return try #require(Int(String(decoding: header[14..<34], as: UTF8.self)))
        }
        #expect(try python(1) == 0)
        #expect(try FileManager.default.attributesOfItem(atPath: log)[.size] as? Int == 16384, "Python made the log")
        // Alternating, then each writer on until it has ended a lap itself (the header's base moves).
        var commits = 1
        for round in 0..<10 {
            if round.isMultiple(of: 2) { try engine.trigger(id) } else { #expect(try python(1) == 0) }
            commits += 1
        }
        for (name, step) in [("Swift", { () throws -> Void in try engine.trigger(id) }), ("Python", { () throws -> Void in #expect(try python(1) == 0) })] {
            let before = try base()
            var ended = false
            for _ in 0..<30 where !ended {
                try step()
                commits += 1
                ended = try base() != before
            }
            #expect(ended, "\(name) ended a lap")
        }
        #expect(try engine.history(id).map(\.phase) == (0...commits).map { "p\($0)" })

        // Two more commits in the current lap, their lines and views lost to a cut, a new boot.
        let history = engine.layout.historyFile(id)
        let view = engine.layout.stateFile(id)
        while true {
            let head = try String(contentsOfFile: engine.layout.commitLockFile, encoding: .utf8)
            let offset = try #require(Int(head.split(separator: " ")[2].prefix(20)))
            if offset + 3 * 1024 <= 16384 { break }
            try engine.trigger(id)
        }
        let kept = try #require(try FileManager.default.attributesOfItem(atPath: history)[.size] as? Int)
        let keptView = try Data(contentsOf: URL(fileURLWithPath: view))
        let phase = try #require(try engine.freshStatus(id)?.historyLength)
        #expect(try python(1) == 0)
        try engine.trigger(id)
        #expect(truncate(history, off_t(kept)) == 0)
        try keptView.write(to: URL(fileURLWithPath: view))
        try simulateNewBoot(sandbox)
        let shown = try run("chatflow", ["--root", sandbox.root, "status", id, "--json"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any], "\(shown.stderr)")
        #expect(document["history_length"] as? Int == phase + 2, "both lost commits replayed")
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

/// zlib's CRC-32, as docs/FORMAT.md names it for `view_crc32`.
private func zlibCRC32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}
