import ChatFlow
import ChatFlowHarness
import Foundation

import Glibc

extension Torture {
    // MARK: 7. Hostile hooks

    /// Hooks that hang, leave a daemon holding stdout, flood output, die by a signal, are not
    /// executable, are group-writable, or link out of the hooks directory: each bounded or
    /// refused as docs/HOOKS.md says, while another instance's hooks keep starting promptly.
    func hostileHooks() throws {
        let root = newRoot("hooks")
        let floodBytes = quick ? 200 << 20 : 1 << 30
        writeHook(root, "hang", "#!/bin/sh\n# chatflow-timeout: 1\nsleep 300\n")
        writeHook(root, "daemon", "#!/bin/sh\nsetsid sleep 300 &\necho started\n")
        writeHook(root, "flood", "#!/bin/sh\nhead -c \(floodBytes) /dev/zero\n")
        writeHook(root, "signal", "#!/bin/sh\nkill -SEGV $$\n")
        writeHook(root, "noexec", "#!/bin/sh\ntouch \(root)/../noexec-ran\n", mode: 0o644)
        writeHook(root, "writable", "#!/bin/sh\ntouch \(root)/../writable-ran\n", mode: 0o775)
        symlink("/bin/true", root + "/hooks/outside")
        let stamps = root + "/../probe.log"
        let probePhases = (0..<60).map { "q\($0)" }
        for phase in probePhases.dropFirst() {
            writeHook(root, phase, "#!/bin/bash\necho \"$CHATFLOW_TRANSITION $EPOCHREALTIME\" >> \(stamps)\n")
        }
        let log = root + "/../watch.log"
        let watcher = try startWatcher(root, ["--jobs", "8"], log: log)
        defer { stop(watcher) }
        let engine = WorkflowEngine(root: root)
        let hostile = ["hang", "daemon", "flood", "signal", "noexec", "writable", "outside"]
        var instanceOf: [String: String] = [:]
        for phase in hostile {
            let id = try engine.start(schema: WorkflowSchema(name: "h", phaseNames: ["begin", phase]), featureID: "h")
            try engine.trigger(id)
            instanceOf[phase] = id
        }
        // Meanwhile a probe instance moves every 50 ms; its hooks must keep starting promptly.
        let probe = try engine.start(schema: WorkflowSchema(name: "probe", phaseNames: probePhases), featureID: "p")
        var triggered: [Int: Double] = [:]
        for position in 1..<probePhases.count {
            try engine.trigger(probe)
            triggered[position] = Timestamps.unix()
            usleep(50_000)
        }
        let journal = RunJournal(layout: engine.layout)
        try waitFor("the bounded hooks", timeout: 120) {
            let hooks = Set(try journal.records().map(\.hook))
            return ["hang", "daemon", "flood", "signal"].allSatisfy(hooks.contains) && lines(stamps).count >= probePhases.count - 1
        }
        let records = try journal.records()
        func record(_ hook: String) -> RunRecord? { records.first { $0.hook == hook } }
        var wrong: [String] = []
        if case .timedOut = record("hang")?.outcome {} else { wrong.append("hang: \(String(describing: record("hang")?.outcome))") }
        if let daemon = record("daemon") {
            if daemon.outcome != .exited(code: 0) || daemon.endedAt - daemon.startedAt > 5 {
                wrong.append("daemon: \(daemon.outcome.summary) after \(daemon.endedAt - daemon.startedAt) s")
            }
        } else { wrong.append("daemon did not run") }
        if let flood = record("flood") {
            let size = (try? FileManager.default.attributesOfItem(atPath: flood.logPath)[.size] as? Int) ?? -1
            if flood.outcome != .exited(code: 0) || size > (1 << 20) + 512 || flood.droppedOutputBytes < floodBytes - (1 << 20) {
                wrong.append("flood: \(flood.outcome.summary), log \(size) bytes, dropped \(flood.droppedOutputBytes)")
            }
        } else { wrong.append("flood did not run") }
        if record("signal")?.outcome != .signaled(signal: SIGSEGV) { wrong.append("signal: \(String(describing: record("signal")?.outcome))") }
        let watchLog = read(log)
        for (hook, reason) in [("noexec", "is not executable"), ("writable", "group- or world-writable"), ("outside", "leads out of the hooks directory")] {
            guard case .refused(let recorded)? = record(hook)?.outcome, recorded.contains(reason), watchLog.contains(reason) else {
                wrong.append("\(hook) was not refused (and recorded as refused)")
                continue
            }
        }
        for marker in ["noexec-ran", "writable-ran"] where FileManager.default.fileExists(atPath: root + "/../" + marker) {
            wrong.append("\(marker)")
        }
        var latencies: [Double] = []
        for line in lines(stamps) {
            let parts = line.split(separator: " ")
            if parts.count == 2, let position = Int(parts[0]), let time = Double(parts[1]), let sent = triggered[position] {
                latencies.append((time - sent) * 1000)
            }
        }
        latencies.sort()
        let p99 = latencies.isEmpty ? .infinity : latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.99))]
        let p50 = latencies.isEmpty ? .infinity : latencies[latencies.count / 2]
        if p99 > 100 || latencies.count < probePhases.count - 1 { wrong.append("probe hooks slowed: p99 \(p99) ms") }
        if !watcher.isRunning { wrong.append("the watcher died") }
        tally(
            "hostile_hooks", tried: hostile.count + 1, wrong: wrong.count,
            note: wrong.first ?? String(format: "probe hook start p50 %.1f ms, p99 %.1f ms meanwhile (--jobs 8)", p50, p99))
    }

    // MARK: 8. Disk trouble

    /// A full filesystem (a 2 MiB tmpfs) and a read-only one: writes fail with a clear error,
    /// the previous state stays intact, and work resumes once space is back.
    func diskTrouble() throws {
        let mountPoint = newRoot("disk") + "/../mnt"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        guard system("mount -t tmpfs -o size=2m tmpfs '\(mountPoint)' 2>/dev/null") == 0 else {
            tally("disk_trouble", tried: 0, wrong: 0, note: "skipped: cannot mount a tmpfs here (needs root)")
            return
        }
        defer { _ = system("umount '\(mountPoint)' 2>/dev/null") }
        let root = mountPoint + "/.chatflow"
        // A process that commits keeps the store's commit log open for writing (as SQLite keeps
        // its database open), which a remount read-only refuses: this one commits in a scope of
        // its own, and from here on only reads (which keep nothing open) or runs `chatflow`.
        let (id, loud) = try {
            let writer = WorkflowEngine(root: root)
            let id = try writer.start(schema: schema(50), featureID: "d")
            for _ in 0..<3 { try writer.trigger(id, data: ["note": "before the disk filled"]) }
            return (id, try writer.start(schema: WorkflowSchema(name: "l", phaseNames: ["quiet", "loud"]), featureID: "l"))
        }()
        let engine = WorkflowEngine(root: root)
        var wrong: [String] = []
        var tried = 0
        func expectFailure(_ label: String, _ arguments: [String], reason: String) throws {
            tried += 1
            let outcome = try run("chatflow", ["--root", root] + arguments)
            if outcome.status != 1 || !outcome.stderr.contains(reason) || !intact() {
                wrong.append("\(label): exit \(outcome.status) \(outcome.stderr.prefix(160))")
            }
        }
        // A watcher whose hook writes 256 KiB of output, running while the disk is full.
        mkdir(root + "/hooks", 0o755)
        chmod(root + "/hooks", 0o755)
        writeHook(root, "loud", "#!/bin/sh\nhead -c 262144 /dev/zero | tr '\\0' x\n")
        let watchLog = mountPoint + "/../watch-disk.log"
        let watcher = try startWatcher(root, [], log: watchLog)
        defer { stop(watcher) }
        try waitFor("the watcher", timeout: 20) { read(watchLog).contains("watching ") }
        // Fill the filesystem.
        _ = system("dd if=/dev/zero of='\(mountPoint)/filler' bs=64k >/dev/null 2>&1")
        // A trigger whose commit fits in the space already allocated (the log, the history's
        // first 16 KiB) but whose view cannot grow: it committed, so it must say so.
        tried += 1
        let medium = String(repeating: "m", count: 6000)
        let committed = try run("chatflow", ["--root", root, "trigger", id, "--data", "{\"medium\": \"\(medium)\"}"])
        engine.invalidateAll()
        let after = try? engine.freshStatus(id)
        let shown = try run("chatflow", ["--root", root, "status", id])
        if committed.status == 0 {
            if after?.historyLength != 5 || after?.variables["medium"] != .string(medium) || shown.status != 0 {
                wrong.append("a trigger reported done is not what reads back: \(shown.stderr.prefix(160))")
            }
        } else if after?.historyLength != 4 {
            wrong.append("a trigger that committed reported failure: exit \(committed.status) \(committed.stderr.prefix(160))")
        }
        let expectedLength = after?.historyLength ?? 4
        // Hook output that cannot be written is said, not lost silently.
        tried += 1
        _ = try run("chatflow", ["--root", root, "trigger", loud])
        try? waitFor("the loud hook's end", timeout: 30) {
            read(watchLog).contains("hook output not saved") || read(watchLog).contains("hook loud for")
        }
        if !read(watchLog).contains("hook output not saved") {
            wrong.append("hook output lost on a full disk without an error: \(read(watchLog).suffix(300))")
        }
        func intact() -> Bool {
            engine.invalidateAll()
            guard let state = try? engine.freshStatus(id), state.historyLength == expectedLength,
                (try? engine.history(id).count) == expectedLength else { return false }
            return true
        }
        let big = String(repeating: "x", count: 100_000)
        try expectFailure("trigger on a full disk", ["trigger", id, "--data", "{\"big\": \"\(big)\"}"], reason: "No space left")
        try expectFailure("start on a full disk", ["start", "--feature", "d", "--phases", "a,b", "--context", "{\"big\": \"\(big)\"}"], reason: "No space left")
        try expectFailure("fail on a full disk", ["fail", id, "--reason", big], reason: "No space left")
        unlink(mountPoint + "/filler")
        tried += 1
        let resumed = try run("chatflow", ["--root", root, "trigger", id])
        if resumed.status != 0 { wrong.append("no recovery after space came back: \(resumed.stderr.prefix(160))") }
        // Read-only.
        stop(watcher)
        guard system("mount -o remount,ro '\(mountPoint)'") == 0 else {
            wrong.append("cannot remount read-only")
            tally("disk_trouble", tried: tried, wrong: wrong.count, note: wrong.first ?? "")
            return
        }
        let before = try engine.freshStatus(id)
        for (label, arguments) in [("trigger", ["trigger", id]), ("fail", ["fail", id]), ("start", ["start", "--feature", "d", "--phases", "a"])] {
            tried += 1
            let outcome = try run("chatflow", ["--root", root] + arguments)
            if outcome.status != 1 || !outcome.stderr.contains("Read-only") || (try? engine.freshStatus(id)) != before {
                wrong.append("\(label) on a read-only disk: exit \(outcome.status) \(outcome.stderr.prefix(160))")
            }
        }
        _ = system("mount -o remount,rw '\(mountPoint)'")
        tally("disk_trouble", tried: tried, wrong: wrong.count, note: wrong.first ?? "ENOSPC and EROFS reported, a committed change reported done, lost hook output said, state intact, resumed after")
    }

    // MARK: doctor

    /// `chatflow doctor` finds planted problems, `--fix` repairs the safe ones, and a clean
    /// directory passes.
    func doctor() throws {
        let root = newRoot("doctor")
        let engine = WorkflowEngine(root: root)
        let ids = try (0..<6).map { try engine.start(schema: schema(3), featureID: $0 < 3 ? "alpha" : "beta") }
        // Plant: an id dropped from a link, a dangling id, temp files, a bad hook, a corrupt file.
        try "\(ids[1]),\(ids[2]),wfi_00000000dead".write(toFile: engine.layout.linkFile("alpha"), atomically: false, encoding: .utf8)
        // (An instance's own `.wfi_<id>.json.tmp` is its view's spare, not debris: one of an id
        // with no state file is.)
        let strayTemp = engine.layout.stateTempFile("wfi_00000000beef")
        _ = FileManager.default.createFile(atPath: strayTemp, contents: Data("{".utf8))
        _ = FileManager.default.createFile(atPath: engine.layout.linkTempFile("beta"), contents: Data())
        writeHook(root, "testing", "#!/bin/sh\n", mode: 0o777)
        _ = FileManager.default.createFile(atPath: engine.layout.stateFile("wfi_0000000bad00"), contents: Data("{broken".utf8))
        let checks = Checks()
        let check = checks.check
        var outcome = try run("chatflow", ["--root", root, "doctor"])
        check("doctor finds problems (exit 1)", outcome.status == 1)
        for needle in [ids[0], "wfi_00000000dead", ".tmp", "group- or world-writable", "wfi_0000000bad00", "fix:"] {
            check("doctor names \(needle)", outcome.stdout.contains(needle))
        }
        outcome = try run("chatflow", ["--root", root, "doctor", "--fix"])
        check("--fix leaves only what it may not fix", outcome.status == 1 && outcome.stdout.contains("fixed: "))
        check("link rebuilt", (try? engine.list(feature: "alpha").map(\.instanceID).sorted()) == Array(ids[0..<3]).sorted())
        check("temp files removed", !FileManager.default.fileExists(atPath: strayTemp))
        check("views' spares kept", FileManager.default.fileExists(atPath: engine.layout.stateTempFile(ids[3])))
        check("corrupt file untouched", read(engine.layout.stateFile("wfi_0000000bad00")) == "{broken")
        chmod(root + "/hooks/testing", 0o755)
        unlink(engine.layout.stateFile("wfi_0000000bad00"))
        outcome = try run("chatflow", ["--root", root, "doctor"])
        check("clean directory passes: \(outcome.stdout.prefix(200))", outcome.status == 0 && outcome.stdout.contains("no problems"))
        tally("doctor", checks, passed: "planted problems found, safe ones fixed")
    }
}
