import ChatFlow
import ChatFlowTestSupport
import Foundation
import Testing

import Glibc

/// Nothing planted in the state directory (a link, a run record naming a path) leads a read or a
/// write of `chatflow` out of it.
@Suite("Links and recorded paths stay inside the state directory")
struct ContainmentTests {
    @Test("tasks/ linked to another directory: artifact, artifacts and save-artifact refuse, and nothing outside is read or written")
    func linkedTasks() throws {
        let sandbox = Sandbox()
        let id = try sandbox.engine.start(schema: WorkflowSchema(name: "w", phaseNames: ["a", "b"]), featureID: "f")
        let outside = sandbox.directory + "/outside"
        #expect(mkdir(outside, 0o755) == 0)
        try "SECRET\n".write(toFile: outside + "/secret", atomically: false, encoding: .utf8)
        let tasks = sandbox.engine.layout.tasksDirectory(id)
        try? FileManager.default.removeItem(atPath: tasks)
        #expect(symlink(outside, tasks) == 0)

        let read = try run("chatflow", ["--root", sandbox.root, "artifact", id, "secret"])
        #expect(read.status != 0 && !read.stdout.contains("SECRET"), "\(read.stdout)")
        #expect(read.stderr.contains("symbolic link"), "\(read.stderr)")
        let listed = try run("chatflow", ["--root", sandbox.root, "artifacts", id])
        #expect(listed.status != 0 && !listed.stdout.contains("secret"), "\(listed.stdout)")
        let file = sandbox.directory + "/report.txt"
        try "report\n".write(toFile: file, atomically: false, encoding: .utf8)
        let saved = try run("chatflow", ["--root", sandbox.root, "save-artifact", id, "planted", "--file", file])
        #expect(saved.status != 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside) == ["secret"], "nothing written outside")

        // The instance's directory linked out: the same.
        let instance = sandbox.engine.layout.instanceDirectory(id)
        let moved = sandbox.directory + "/moved"
        #expect(rename(instance, moved) == 0 && symlink(moved, instance) == 0)
        #expect(try run("chatflow", ["--root", sandbox.root, "artifact", id, "secret"]).status != 0)
    }

    @Test("a run record naming any log_path: logs reads the log the run's own fields name, never the recorded path")
    func recordedLogPath() throws {
        let sandbox = Sandbox()
        let engine = sandbox.engine
        let id = try engine.start(schema: WorkflowSchema(name: "w", phaseNames: ["a", "b"]), featureID: "f")
        let secret = sandbox.directory + "/secret"
        try "SECRET\n".write(toFile: secret, atomically: false, encoding: .utf8)
        let record: JSONValue = [
            "instance_id": .string(id), "transition": 1, "phase": "b", "event": "b", "hook": "b", "started_at": 1.0,
            "ended_at": 2.0, "exit_code": 0, "signal": nil, "timed_out": false, "error": nil, "log_path": .string(secret),
            "dropped_output_bytes": 0, "attempt": 1,
        ]
        mkdir(engine.layout.watchDirectory, 0o755)
        try (record.compactText + "\n").write(toFile: engine.layout.runJournalFile, atomically: false, encoding: .utf8)
        let logs = try run("chatflow", ["--root", sandbox.root, "logs", id])
        #expect(!logs.stdout.contains("SECRET"), "\(logs.stdout)")
        // The run's own log, where its fields put it, is what is read.
        let own = engine.layout.runLogFile(id, transition: 1, hook: "b")
        mkdir(engine.layout.runsDirectory(id), 0o755)
        try "own output\n".write(toFile: own, atomically: false, encoding: .utf8)
        #expect(try run("chatflow", ["--root", sandbox.root, "logs", id]).stdout.contains("own output"))
        // And a runs/ linked out is not followed.
        try FileManager.default.removeItem(atPath: engine.layout.runsDirectory(id))
        let elsewhere = sandbox.directory + "/elsewhere"
        mkdir(elsewhere, 0o755)
        try "SECRET\n".write(toFile: elsewhere + "/1-b.log", atomically: false, encoding: .utf8)
        #expect(symlink(elsewhere, engine.layout.runsDirectory(id)) == 0)
        let linked = try run("chatflow", ["--root", sandbox.root, "logs", id])
        #expect(!linked.stdout.contains("SECRET") && linked.status != 0, "\(linked.stdout) \(linked.stderr)")
    }
}
