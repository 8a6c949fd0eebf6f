import ChatFlow
import ChatFlowHarness
import Foundation

import Glibc

extension Torture {
    // MARK: 16. Other local users

    /// Another local user (made with useradd, sharing a group with nobody else) attacks a root
    /// watcher from where the layout lets them: swapping the hooks directory or a hook with
    /// their own (`renameat2(RENAME_EXCHANGE)` in a loop) while the watcher checks and starts
    /// hooks, in layouts the watcher must refuse and in layouts it may trust; and the web view,
    /// run as that user under a thread limit, asked for log follows it has no thread for.
    func otherUsers() throws {
        guard getuid() == 0, let other = otherUser(), let shared = sharedGroup(with: other),
              access("/usr/bin/setpriv", X_OK) == 0, access("/usr/bin/python3", X_OK) == 0
        else {
            tally("other_users", tried: 0, wrong: 0, note: "skipped: needs root (useradd, setpriv) and python3")
            return
        }
        // Under /tmp (sticky), reachable by the other user: the suite's own scratch may not be.
        var template = Array("/tmp/chatflow-torture-users-XXXXXX".utf8CString)
        let place = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        defer { try? FileManager.default.removeItem(atPath: place) }
        chmod(place, 0o755)
        let drop = place + "/drop"
        mkdir(drop, 0o777)
        chmod(drop, 0o777)
        let marker = drop + "/payload-ran"
        let attacker = place + "/swap.py"
        try Self.swapScript.write(toFile: attacker, atomically: false, encoding: .utf8)
        chmod(attacker, 0o644)
        let asOther = ["--reuid=\(other.uid)", "--regid=\(other.gid)", "--init-groups"]
        let transitions = quick ? 20 : 60
        var wrong: [String] = []
        var tried = 0
        var notes: [String] = []

        struct Layout {
            let label: String
            let refused: Bool
            /// Lays out the project (`.chatflow` given); returns the attacker's two paths and mode.
            let prepare: (String) -> (a: String, b: String, mode: String)
        }
        let layouts = [
            Layout(label: "a group-writable .chatflow", refused: true) { root in
                chown(root, 0, shared)
                chmod(root, 0o775)
                return (root + "/hooks", root + "/evil", "dir")
            },
            Layout(label: "a hook linked into a world-writable directory", refused: true) { root in
                mkdir(root + "/hooks/shared", 0o777)
                chmod(root + "/hooks/shared", 0o777)
                rename(root + "/hooks/@any", root + "/hooks/shared/any")
                symlink("shared/any", root + "/hooks/@any")
                return (root + "/hooks/shared/any", root + "/hooks/shared/evil", "file")
            },
            Layout(label: "a trusted layout", refused: false) { root in
                (root + "/hooks/@any", drop + "/evil", "file")
            },
            Layout(label: "a sticky group-writable .chatflow", refused: false) { root in
                chown(root, 0, shared)
                chmod(root, 0o1775)
                return (root + "/hooks", root + "/evil", "dir")
            },
        ]
        for (index, layout) in layouts.enumerated() {
            let project = place + "/p\(index)"
            let root = project + "/.chatflow"
            mkdir(project, 0o755)
            mkdir(root, 0o755)
            mkdir(root + "/hooks", 0o755)
            chmod(project, 0o755)
            chmod(root, 0o755)
            chmod(root + "/hooks", 0o755)
            let ran = place + "/ran-\(index)"
            writeHook(root, "@any", "#!/bin/sh\necho \"$CHATFLOW_TRANSITION\" >> \(ran)\n")
            let engine = WorkflowEngine(root: root)
            try engine.prepare()
            let (a, b, mode) = layout.prepare(root)
            unlink(marker)
            let stopFile = place + "/stop-\(index)"
            let counts = place + "/counts-\(index)"
            let swapper = try process("/usr/bin/setpriv", asOther + ["--", "/usr/bin/python3", attacker, mode, a, b, stopFile, marker], stdout: counts, stderr: counts + ".err")
            let watcher = try startWatcher(root)
            let id = try engine.start(schema: schema(transitions + 1), featureID: "users")
            let journal = RunJournal(layout: engine.layout)
            // The start's own hook run is the first record: transition N's is record N + 1.
            for position in 0...transitions {
                if position > 0 { try engine.trigger(id) }
                try waitFor("the hook of transition \(position) (\(layout.label))", timeout: 30) {
                    try journal.records(of: id, running: false).ended.count > position
                }
            }
            close(open(stopFile, O_CREAT | O_WRONLY, 0o644))
            swapper.waitUntilExit()
            stop(watcher)
            let payload = lines(marker).count
            let real = lines(ran).count
            let swaps = read(counts).split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            tried += transitions + 1
            if payload > 0 { wrong.append("\(layout.label): another user's hook ran \(payload) times as root") }
            if layout.refused && real > 0 { wrong.append("\(layout.label): not refused (\(real) hooks ran)") }
            if !layout.refused && real != transitions + 1 { wrong.append("\(layout.label): \(real) of \(transitions + 1) hooks ran") }
            if swaps.count != 2 { wrong.append("\(layout.label): the attacker did not run: \(read(counts + ".err"))") }
            if !layout.refused && (swaps.last ?? 0) > 0 { wrong.append("\(layout.label): the other user swapped \(swaps.last ?? -1) times") }
            notes.append("\(layout.label): \(swaps.first ?? 0) swaps tried, \(swaps.last ?? 0) done")
        }

        // The web view as that user, under a thread limit: follows it cannot start give back
        // every descriptor, and SIGTERM still ends it.
        let (held, detail) = try followsUnderThreadLimit(place: place, asOther: asOther)
        tried += 1
        if !held { wrong.append(detail) }
        notes.append(detail)
        tally("other_users", tried: tried, wrong: wrong.count, note: wrong.isEmpty ? notes.joined(separator: "; ") : wrong.joined(separator: "; "))
    }

    private func followsUnderThreadLimit(place: String, asOther: [String]) throws -> (Bool, String) {
        let root = place + "/ui/.chatflow"
        try FileManager.default.createDirectory(atPath: root + "/hooks", withIntermediateDirectories: true)
        for directory in [place + "/ui", root, root + "/hooks"] { chmod(directory, 0o755) }
        writeHook(root, "b", "#!/bin/sh\necho started\nexec sleep 60\n")
        let engine = WorkflowEngine(root: root)
        let id = try engine.start(schema: WorkflowSchema(name: "u", phaseNames: ["a", "b"]), featureID: "u")
        let watcher = try startWatcher(root, ["--shutdown-grace", "1"])
        defer { stop(watcher) }
        try engine.trigger(id)
        try waitFor("the hook", timeout: 20) { (try? engine.hookRuns.runs(of: id).running.isEmpty) == false }
        _ = system("chmod -R a+rX '\(root)'")
        // The build may sit where the other user cannot reach: run a copy.
        let binary = place + "/chatflow-ui"
        try FileManager.default.copyItem(atPath: binaries + "/chatflow-ui", toPath: binary)
        chmod(binary, 0o755)
        let log = place + "/ui.log"
        // The limit counts the user's threads: a server that has started may make no new one.
        let limit = try startLimited(binary, root: root, log: log, asOther: asOther)
        defer { stop(limit.ui) }
        let pid = limit.ui.processIdentifier
        func descriptors() -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count }
        let before = descriptors()
        var answers: [String] = []
        for _ in 0..<20 {
            answers.append(try run("/usr/bin/curl", ["-s", "-m", "3", limit.url + "/api/instances/\(id)/logs/follow"], timeout: 10).stdout)
        }
        let after = settled(atMost: before + 2, within: 10, descriptors)
        limit.ui.terminate()
        let stopBy = Timestamps.monotonic() + 10
        while limit.ui.isRunning && Timestamps.monotonic() < stopBy { usleep(50_000) }
        let refusedNow = answers.filter { $0.contains("no thread available") }.count
        let held = after <= before + 2 && !limit.ui.isRunning && refusedNow > 0
        return (held, "the web view under a thread limit: \(refusedNow) of 20 follows refused, descriptors \(before) → \(after), \(limit.ui.isRunning ? "SIGTERM ignored" : "SIGTERM ended it")")
    }

    /// Starts the web view as the other user with its thread limit at the user's thread count
    /// once it serves, raising the limit one at a time until it can start at all.
    private func startLimited(_ binary: String, root: String, log: String, asOther: [String]) throws -> (ui: Process, url: String) {
        for extra in 6...16 {
            let user = try run("/bin/sh", ["-c", "ps -L -u \(asOther[0].dropFirst(8)) --no-headers | wc -l"]).stdout
            let limit = (Int(user.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) + extra
            unlink(log)
            let ui = try process("/usr/bin/setpriv", asOther + ["--", "prlimit", "--nproc=\(limit):\(limit)", binary, "--root", root, "--port", "0"], stderr: log)
            let deadline = Timestamps.monotonic() + 20
            while ui.isRunning && !read(log).contains("serving") && Timestamps.monotonic() < deadline { usleep(10_000) }
            let text = read(log)
            if ui.isRunning, let start = text.range(of: "http://"), let end = text[start.lowerBound...].range(of: "/", options: [], range: text.index(start.lowerBound, offsetBy: 7)..<text.endIndex) {
                return (ui, String(text[start.lowerBound..<end.lowerBound]))
            }
            stop(ui)
        }
        throw HarnessError.failed("the web view did not start under any thread limit: \(read(log))")
    }

    /// Renames `a` and `b` into each other's place as fast as it can until `stop` exists, then
    /// prints how many it tried and how many it did. `b` is the attacker's own: a hooks directory
    /// whose `@any` writes the attacker's marker, or such a hook file.
    static let swapScript = """
        import ctypes, os, sys
        mode, a, b, stop, marker = sys.argv[1:6]
        payload = "#!/bin/sh\\necho \\"$(id -u)\\" >> " + marker + "\\n"
        def plant(path):
            with open(path, "w") as f:
                f.write(payload)
            os.chmod(path, 0o755)
        try:
            if mode == "dir":
                os.mkdir(b)
                plant(b + "/@any")
            else:
                plant(b)
        except OSError:
            pass
        libc = ctypes.CDLL(None, use_errno=True)
        tried = done = 0
        while not os.path.exists(stop):
            for _ in range(100):
                tried += 1
                if libc.renameat2(-100, a.encode(), -100, b.encode(), 2) == 0:
                    done += 1
        print(tried, done, flush=True)

        """

    /// A group with the other user in it and no one else: its members may write where it may.
    private func sharedGroup(with other: (uid: uid_t, gid: gid_t)) -> gid_t? {
        let name = "chatflow-torture-shared"
        if getgrnam(name) == nil { _ = system("groupadd \(name) >/dev/null 2>&1") }
        _ = system("usermod -a -G \(name) chatflow-torture-other >/dev/null 2>&1")
        return getgrnam(name).map { $0.pointee.gr_gid }
    }
}
