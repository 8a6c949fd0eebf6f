import ChatFlow
import ChatFlowHarness
import Foundation

import Glibc

extension Torture {
    // MARK: 11. Acknowledged means readable

    /// Trigger data nested around the limit through `chatflow`: what is acknowledged reads back
    /// (status, history, a later trigger, doctor), what is refused exits 2 and writes nothing.
    func acknowledged() throws {
        let root = newRoot("acknowledged")
        let engine = WorkflowEngine(root: root)
        let id = try engine.start(schema: schema(40), featureID: "a")
        var wrong: [String] = []
        var tried = 0
        func nested(_ depth: Int) -> String { String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth) }
        var accepted = 1
        for depth in [1, 64, 127, 128, 129, 150, 199, 200, 201, 250, 1000] {
            tried += 1
            let data = "{\"d\": \(nested(depth - 1))}"
            let outcome = try run("chatflow", ["--root", root, "trigger", id, "--data", data])
            if depth <= StoredLimits.maximumDataDepth {
                accepted += 1
                let status = try run("chatflow", ["--root", root, "status", id, "--json"])
                let history = try run("chatflow", ["--root", root, "history", id, "--json"])
                if outcome.status != 0 || status.status != 0 || history.status != 0
                    || !status.stdout.contains("\"history_length\":\(accepted)") && !status.stdout.contains("\"history_length\": \(accepted)") {
                    wrong.append("depth \(depth) acknowledged (exit \(outcome.status)) but does not read back: \(status.stderr.prefix(120))\(history.stderr.prefix(120))")
                }
            } else if outcome.status != 2 || (try? WorkflowEngine(root: root).freshStatus(id)?.historyLength) != accepted {
                wrong.append("depth \(depth): exit \(outcome.status), not refused with nothing written: \(outcome.stderr.prefix(120))")
            }
        }
        tried += 1
        let doctor = try run("chatflow", ["--root", root, "doctor"])
        if doctor.stdout.contains(id) { wrong.append("doctor finds the instance broken: \(doctor.stdout.prefix(200))") }
        tally("acknowledged", tried: tried, wrong: wrong.count, note: wrong.first ?? "within \(StoredLimits.maximumDataDepth) levels read back, deeper refused, nothing lost")
    }

    // MARK: 12. Other writers as people write them

    /// Python's `json.dump` (defaults, `indent=2`, sorted keys) and `sed -i` moving
    /// `current_phase`, each under the instance's flock beside `chatflow trigger`: no step of
    /// either writer lost (Tests/interop/writer.py; skipped without it or python3).
    func otherWriters() throws {
        let writer = URL(fileURLWithPath: binaries).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/interop/writer.py").path
        guard FileManager.default.fileExists(atPath: writer), system("python3 -c '' 2>/dev/null") == 0 else {
            tally("other_writers", tried: 0, wrong: 0, note: "skipped: needs python3 and \(writer)")
            return
        }
        var wrong: [String] = []
        var tried = 0
        let steps = quick ? 30 : 120
        for mode in ["dump", "indent", "sorted", "sed"] {
            let root = newRoot("writers-" + mode)
            let id = try WorkflowEngine(root: root).start(schema: schema(2 * steps + 2), featureID: "w")
            let python = try process("/usr/bin/env", ["python3", writer, root, id, mode, "\(steps)"])
            for _ in 0..<steps {
                tried += 1
                let outcome = try run("chatflow", ["--root", root, "trigger", id])
                if outcome.status != 0 { wrong.append("\(mode): trigger exit \(outcome.status) \(outcome.stderr.prefix(120))") }
            }
            python.waitUntilExit()
            tried += 1
            // Each step of either writer moves one phase on; the hand-written moves also count
            // their own variable. (A move another writer made without a history entry is
            // adopted as one entry however many phases it jumped, so the history's length does
            // not count steps; the phase does.)
            let state = try WorkflowEngine(root: root).freshStatus(id)
            let reached = state.flatMap { Int($0.currentPhase.dropFirst()) } ?? 0
            let lost = 2 * steps - reached
            let counted = mode == "sed" || state?.variables["by_" + mode] == .number(JSONNumber(steps))
            if python.terminationStatus != 0 || lost != 0 || !counted {
                wrong.append("\(mode): \(lost) of \(2 * steps) steps lost\(counted ? "" : ", variables lost") (writer exit \(python.terminationStatus))")
            }
        }
        tally("other_writers", tried: tried, wrong: wrong.count, note: wrong.first ?? "json.dump, indent, sorted, sed -i beside chatflow trigger: 0 steps lost")
    }

    // MARK: 13. Orphaned hooks

    /// The watcher SIGKILLed mid-hook again and again: each restart ends the orphan before the
    /// transition runs again, every run is listed with its own attempt.
    func orphans() throws {
        let root = newRoot("orphans")
        let directory = root + "/.."
        writeHook(root, "b", """
            #!/bin/sh
            p=$(cat \(directory)/hook.pid 2>/dev/null)
            if [ -n "$p" ] && [ -d /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status; then echo overlap >> \(directory)/record.log; fi
            echo $$ > \(directory)/hook.pid
            echo "attempt $CHATFLOW_ATTEMPT" >> \(directory)/record.log
            exec sleep 60

            """)
        let id = try WorkflowEngine(root: root).start(schema: WorkflowSchema(name: "o", phaseNames: ["a", "b", "c"]), featureID: "o")
        _ = try run("chatflow", ["--root", root, "trigger", id])
        let kills = quick ? 10 : 30
        for round in 1...kills {
            let watcher = try startWatcher(root)
            try waitFor("attempt \(round)", timeout: 20) { lines(directory + "/record.log").filter { $0.hasPrefix("attempt") }.count >= round }
            kill(watcher.processIdentifier, SIGKILL)
            watcher.waitUntilExit()
        }
        let last = try startWatcher(root)
        try waitFor("the last attempt", timeout: 20) { lines(directory + "/record.log").filter { $0.hasPrefix("attempt") }.count > kills }
        let record = lines(directory + "/record.log")
        let runs = (try? JSONValue(parsing: run("chatflow", ["--root", root, "runs", id, "--json"]).stdout).arrayValue) ?? []
        let attempts = runs.compactMap { $0["attempt"]?.intValue }
        var wrong = record.filter { $0.hasPrefix("overlap") }.count
        if attempts != Array(1...(kills + 1)) { wrong += 1 }
        if let pid = Int32(read(directory + "/hook.pid").trimmingCharacters(in: .whitespacesAndNewlines)) { kill(pid, SIGKILL) }
        stop(last)
        tally("orphans", tried: kills + 1, wrong: wrong, note: "\(kills) SIGKILLs mid-hook; overlaps \(record.filter { $0.hasPrefix("overlap") }.count); attempts listed \(attempts.count)")
    }
}

extension Torture {
    // MARK: 14. Containment

    /// Links and recorded paths planted in the state directory, and an untrusted hooks.env: no
    /// read or write of `chatflow` or the watcher leaves the state directory, and no setting of
    /// another user's runs. As another local user (`chatflow-torture-other`, made with useradd
    /// where the suite runs as root) where the attacker matters.
    func containment() throws {
        let root = newRoot("containment")
        let outside = root + "/../outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try "SECRET\n".write(toFile: outside + "/secret", atomically: false, encoding: .utf8)
        func outsideFiles() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: outside)) ?? []).sorted() }
        let engine = WorkflowEngine(root: root)
        let schema = WorkflowSchema(name: "c", phaseNames: ["a", "b", "c", "d"])
        let checks = Checks()
        let check = checks.check
        let report = root + "/../report.txt"
        try "report\n".write(toFile: report, atomically: false, encoding: .utf8)

        // tasks/ linked out.
        let tasksLinked = try engine.start(schema: schema, featureID: "c")
        try? FileManager.default.removeItem(atPath: engine.layout.tasksDirectory(tasksLinked))
        symlink(outside, engine.layout.tasksDirectory(tasksLinked))
        var outcome = try run("chatflow", ["--root", root, "artifact", tasksLinked, "secret"])
        check("artifact through a linked tasks/", outcome.status != 0 && !outcome.stdout.contains("SECRET"))
        outcome = try run("chatflow", ["--root", root, "artifacts", tasksLinked])
        check("artifacts list a linked tasks/", !outcome.stdout.contains("secret"))
        _ = try run("chatflow", ["--root", root, "save-artifact", tasksLinked, "planted", "--file", report])
        check("save-artifact through a linked tasks/", outsideFiles() == ["secret"])

        // The instance's directory linked out: a trigger must not append a history there.
        let dirLinked = try engine.start(schema: schema, featureID: "c")
        let moved = root + "/../moved"
        rename(engine.layout.instanceDirectory(dirLinked), moved)
        symlink(outside, engine.layout.instanceDirectory(dirLinked))
        outcome = try run("chatflow", ["--root", root, "trigger", dirLinked])
        check("trigger through a linked instance directory (exit \(outcome.status))", outcome.status != 0 && outsideFiles() == ["secret"])
        outcome = try run("chatflow", ["--root", root, "history", dirLinked])
        check("history through a linked instance directory", !outcome.stdout.contains("SECRET"))

        // runs/ linked out, and a run record naming another file: the watcher writes no log
        // there, and `logs` reads neither.
        writeHook(root, "b", "#!/bin/sh\necho hook-output\n")
        let runsLinked = try engine.start(schema: schema, featureID: "c")
        try FileManager.default.createDirectory(atPath: engine.layout.instanceDirectory(runsLinked), withIntermediateDirectories: true)
        symlink(outside, engine.layout.runsDirectory(runsLinked))
        let log = root + "/../watch.log"
        let watcher = try startWatcher(root, log: log)
        try waitFor("the watcher", timeout: 20) { read(log).contains("watching ") }
        _ = try run("chatflow", ["--root", root, "trigger", runsLinked])
        try waitFor("the hook's end", timeout: 20) { read(log).contains("hook b for \(runsLinked)") }
        stop(watcher)
        check("the watcher wrote a log through a linked runs/", outsideFiles() == ["secret"])
        let forged = "{\"attempt\":1,\"dropped_output_bytes\":0,\"ended_at\":2,\"error\":null,\"event\":\"b\",\"exit_code\":0,\"hook\":\"b\",\"instance_id\":\"\(tasksLinked)\",\"log_path\":\"\(outside)/secret\",\"phase\":\"b\",\"signal\":null,\"started_at\":1,\"timed_out\":false,\"transition\":1}\n"
        if let handle = FileHandle(forWritingAtPath: engine.layout.runJournalFile) {
            handle.seekToEndOfFile()
            handle.write(Data(forged.utf8))
            handle.closeFile()
        }
        outcome = try run("chatflow", ["--root", root, "logs", tasksLinked])
        check("logs read a path from a run record", !outcome.stdout.contains("SECRET"))

        // hooks.env: world-writable, a link, another user's, and settings that load code.
        let marker = root + "/../env-ran"
        writeHook(root, "c", "#!/bin/sh\necho \"[$MARK][$LD_PRELOAD][$BASH_ENV]\" >> \(marker)\n")
        let settings = engine.layout.hookEnvironmentFile
        let other = otherUser()
        for (label, prepare) in [
            ("world-writable", { () throws in try "MARK=x\n".write(toFile: settings, atomically: false, encoding: .utf8); chmod(settings, 0o666) }),
            ("a link", { () throws in try "MARK=x\n".write(toFile: outside + "/env", atomically: false, encoding: .utf8); symlink(outside + "/env", settings) }),
            ("another user's", { () throws in
                try "MARK=x\n".write(toFile: settings, atomically: false, encoding: .utf8); chmod(settings, 0o644)
                if let other { chown(settings, other.uid, other.gid) } else { chmod(settings, 0o646) }
            }),
            ("loading code", { () throws in try "LD_PRELOAD=/tmp/x.so\nBASH_ENV=/tmp/x.sh\n".write(toFile: settings, atomically: false, encoding: .utf8); chmod(settings, 0o644) }),
        ] as [(String, () throws -> Void)] {
            unlink(settings)
            unlink(marker)
            try prepare()
            let id = try engine.start(schema: schema, featureID: "c")
            let watcher = try startWatcher(root)
            _ = try run("chatflow", ["--root", root, "trigger", id, "--to", "c"])
            try waitFor("hook c (\(label))", timeout: 20) { !lines(marker).isEmpty }
            stop(watcher)
            check("hooks.env \(label) reached a hook: \(lines(marker).first ?? "")", lines(marker).first == "[][][]")
        }
        unlink(settings)
        tally("containment", checks, passed: "links, recorded paths and untrusted hooks.env held\(other == nil ? " (no other user: modes stand in)" : "")")
    }

    /// A local user that is not the one running the suite (made when root; `nil` otherwise).
    func otherUser() -> (uid: uid_t, gid: gid_t)? {
        guard getuid() == 0 else { return nil }
        let name = "chatflow-torture-other"
        if getpwnam(name) == nil { _ = system("useradd --system --no-create-home \(name) >/dev/null 2>&1") }
        return getpwnam(name).map { ($0.pointee.pw_uid, $0.pointee.pw_gid) }
    }
}
