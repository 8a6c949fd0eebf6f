import ChatFlow
import ChatFlowTestSupport
import Foundation
import Testing

import Glibc

/// The run journal stays bounded however long a watcher runs, and one instance's runs are read
/// from its own file and the journal's lines that name it.
@Suite("Run records: bounded, every run of an instance kept", .serialized, .timeLimit(.minutes(2)))
struct RunJournalTests {
    @Test("a journal of 24,000 runs (14 MB) is rotated at its next append: the new one holds the running hooks, the archive the rest; an instance's runs, old and new, are all listed")
    func rotation() async throws {
        let sandbox = Sandbox()
        let engine = sandbox.engine
        let id = try engine.start(schema: WorkflowSchema(name: "w", phaseNames: ["a", "b", "c"]), featureID: "f")
        let other = "wfi_0000000000aa"
        // What a long-lived watcher of the earlier text left: every run in one journal.
        mkdir(engine.layout.watchDirectory, 0o755)
        var text = ""
        for n in 0..<24_000 {
            var record = RunRecord(
                instanceID: n == 5 ? id : other, transition: n, phase: "p", event: "p", hook: "h", startedAt: Double(n),
                endedAt: Double(n) + 1, outcome: .exited(code: 0), logPath: "", droppedOutputBytes: 0)
            record.attempt = 1
            text += record.json.compactText + "\n"
        }
        try text.write(toFile: engine.layout.runJournalFile, atomically: false, encoding: .utf8)
        let before = try #require(try FileManager.default.attributesOfItem(atPath: engine.layout.runJournalFile)[.size] as? Int)
        #expect(before > RunJournal.rotateBytes)

        sandbox.hook("b", "echo ran")
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        try engine.trigger(id)
        #expect(await eventually { (try? run("chatflow", ["--root", sandbox.root, "runs", id]).stdout.contains("exit 0")) == true && watcher.log.contains("rotated") })
        let after = try #require(try FileManager.default.attributesOfItem(atPath: engine.layout.runJournalFile)[.size] as? Int)
        #expect(after < 64 * 1024, "the new journal holds only what is running and what came since: \(after) bytes")
        #expect(FileManager.default.fileExists(atPath: engine.layout.runArchiveFile))
        let listed = try JSONValue(parsing: run("chatflow", ["--root", sandbox.root, "runs", id, "--json"]).stdout).arrayValue ?? []
        #expect(listed.compactMap { $0["transition"]?.intValue } == [5, 1], "the archived run and the new one: \(listed)")
        #expect(try String(contentsOfFile: engine.layout.instanceRunsFile(id), encoding: .utf8).contains("\"hook\":\"b\""))
        #expect(await watcher.stop() == 0)
    }
}
