import ChatFlow
import ChatFlowHarness
import Foundation

import Glibc

extension Torture {
    // MARK: 6. Hostile arguments

    /// The same hostile identifiers and JSON through every subcommand: a clean one-line error,
    /// a documented exit code, and nothing written.
    func hostileArguments() throws {
        let root = newRoot("arguments")
        let engine = WorkflowEngine(root: root)
        let good = try engine.start(schema: schema(4), featureID: "f")
        try engine.trigger(good)
        let identifiers = [
            "", ".", "..", "../x", "/etc/passwd", "a/b", "wfi_../../../x", "x\ny", "@any", "é", "a b", "-",
            "wfi_ZZZZZZZZZZZZ", "WFI_000000000000", String(repeating: "x", count: 10_000), ".hidden", "x;rm -rf /", "$(id)",
        ]
        let json = [
            "{", "[1,", "\"unterminated", "{\"a\":}", "nul", "{\"a\":1}x", String(repeating: "[", count: 100_000),
            "\"\\ud800\"", "{'a': 1}", "01",
        ]
        let schemaFile = root + "/../schema.json"
        try "{\"name\": \"x\", \"phases\": [\"../evil\"]}".write(toFile: schemaFile, atomically: true, encoding: .utf8)
        var cases: [[String]] = []
        for value in identifiers {
            cases += [["status", value], ["history", value], ["trigger", value], ["fail", value], ["runs", value], ["artifacts", value]]
        }
        // As names, a few of those are legal ([A-Za-z0-9._-], not starting with '.').
        for value in identifiers where Identifiers.nameProblem(value) != nil {
            cases += [
                ["save-artifact", good, value], ["feature", value], ["list", "--feature", value],
                ["start", "--feature", value, "--phases", "a"], ["start", "--feature", "f", "--phases", value],
                ["start", "--feature", "f", "--phases", "a," + value], ["start", "--feature", "f", "--phases", "a", "--workflow", value],
                ["trigger", good, "--to", value], ["list", "--status", value],
            ]
        }
        for value in json {
            cases += [
                ["trigger", good, "--data", value], ["trigger", good, "--meta", value],
                ["start", "--feature", "f", "--phases", "a", "--context", value], ["start", "--feature", "f", "--phases", "a", "--meta", value],
            ]
        }
        cases += [
            ["start", "--feature", "f", "--schema", "/nonexistent.json"], ["start", "--feature", "f", "--schema", schemaFile],
            ["start", "--feature", "f", "--schema", "/dev/zero"], ["trigger", good, "--context", "{}"],
        ]
        let before = snapshot(root)
        var wrong: [String] = []
        for arguments in cases {
            let outcome = try run("chatflow", ["--root", root] + arguments, timeout: 20)
            let message = outcome.stderr.split(separator: "\n")
            let ok =
                !outcome.timedOut && !outcome.signaled && [1, 2, 3].contains(outcome.status) && outcome.stdout.isEmpty
                && message.count == 1 && message[0].hasPrefix("chatflow: error: ")
            if !ok { wrong.append("\(arguments.map { String($0.prefix(30)) }) → \(outcome.status) \(outcome.stderr.prefix(200))") }
        }
        let after = snapshot(root)
        let unchanged = after == before
        for item in wrong { FileHandle.standardError.write(Data("  wrong: \(item)\n".utf8)) }
        for (path, _) in after where before[path] != after[path] {
            FileHandle.standardError.write(Data("  changed: \(path)\n".utf8))
        }
        tally(
            "hostile_arguments", tried: cases.count + 1, wrong: wrong.count + (unchanged ? 0 : 1),
            note: unchanged ? (wrong.first ?? "") : "the state directory changed")
    }

    // MARK: 5. Hostile state files

    /// Generated broken state files in `instances/`: the commands and the watcher report each
    /// clearly, never crash or hang, keep running, and never run a hook outside the hooks directory.
    func hostileState() throws {
        let root = newRoot("state")
        let engine = WorkflowEngine(root: root)
        let template = try engine.start(schema: WorkflowSchema(name: "w", phaseNames: ["a", "b"]), featureID: "f")
        try engine.trigger(template)
        let instances = root + "/instances"
        let valid = try JSONValue(parsing: String(contentsOfFile: engine.layout.stateFile(template), encoding: .utf8))
        let validText = valid.prettyText
        // A hook outside the hooks directory that a path escape would reach; it must never run.
        let marker = root + "/../escaped"
        for path in [root + "/evil", root + "/../evil", "/tmp/chatflow-torture-evil"] {
            _ = FileManager.default.createFile(atPath: path, contents: Data("#!/bin/sh\ntouch \(marker)\n".utf8))
            chmod(path, 0o755)
        }
        writeHook(root, "@any", "#!/bin/sh\necho \"$CHATFLOW_INSTANCE_ID $CHATFLOW_TRANSITION\" >> \(root)/../record.log\n")

        var cases: [(name: String, bytes: [UInt8]?)] = []  // nil bytes: special file made below
        var counter = 0
        func nextID() -> String {
            counter += 1
            let hex = String(counter, radix: 16)
            return "wfi_" + String(repeating: "0", count: 12 - hex.count) + hex
        }
        func mutated(_ change: (inout [String: JSONValue]) -> Void) -> (String, [UInt8]?) {
            let id = nextID()
            var object = valid.objectValue!
            object["instance_id"] = .string(id)
            change(&object)
            return (id, Array(JSONValue.object(object).prettyText.utf8))
        }
        let bytes = Array(validText.utf8)
        for cut in stride(from: 1, to: bytes.count - 1, by: max(1, bytes.count / 90)) {
            cases.append((nextID(), Array(bytes[0..<cut])))
        }
        for junk in ["", " ", "null", "[]", "\"text\"", "{}", "{\"instance_id\": 1}", String(repeating: "{\"a\":", count: 50_000)] {
            cases.append((nextID(), Array(junk.utf8)))
        }
        for invalid: [UInt8] in [[0xFF], [0xC3], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80]] {
            var copy = bytes
            copy.insert(contentsOf: invalid, at: bytes.firstIndex(of: UInt8(ascii: "f"))!)
            cases.append((nextID(), copy))
        }
        let required = [
            "instance_id", "feature_id", "workflow_name", "workflow_schema", "current_phase", "status", "variables", "meta",
            "created_at", "updated_at", "history_length", "history_bytes", "current_entry",
        ]
        // Keys another writer may leave out (docs/FORMAT.md, "Other writers"): such a file is
        // understood, not refused. Without the others it is refused (or inconsistent).
        let defaulted: Set<String> = ["workflow_name", "variables", "meta", "created_at", "updated_at"]
        for key in required where key != "instance_id" && !defaulted.contains(key) {
            cases.append(mutated { $0[key] = nil })
        }
        var understood: [(String, [UInt8]?)] = defaulted.sorted().map { key in mutated { $0[key] = nil } }
        understood.append(mutated { $0["status"] = "completed" })  // finished with its entry still open
        let wrongTypes: [JSONValue] = [42, "text", [1, 2], ["nested": true], true]
        for key in required where key != "instance_id" {
            for value in wrongTypes where !(key == "current_entry" && value == ["nested": true]) {
                if (key == "variables" || key == "meta") && value.objectValue != nil { continue }
                if ["feature_id", "workflow_name"].contains(key) && value.stringValue != nil { continue }
                cases.append(mutated { $0[key] = value })
            }
        }
        let hostileNames = ["../evil", "../../evil", "a/b", "..", ".", "", "x\u{0}y", "x\ny", "@any", String(repeating: "p", count: 10_240), "/tmp/chatflow-torture-evil"]
        for name in hostileNames {
            cases.append(mutated { $0["current_phase"] = .string(name) })
            cases.append(mutated { object in
                object["workflow_schema"] = ["name": "w", "phases": [["name": .string(name)], ["name": "b"]]]
                object["current_phase"] = .string(name)
                object["current_entry"] = ["phase": .string(name), "task": nil, "started_at": 1.0, "ended_at": nil, "status": "running", "trigger_data_snapshot": nil]
            })
            cases.append(mutated { $0["feature_id"] = .string(name) })
        }
        for (key, value) in [("history_length", JSONValue(0)), ("history_bytes", 999_999), ("history_length", 50), ("status", "exploded")] {
            cases.append(mutated { $0[key] = value })
        }
        cases.append(mutated { $0["instance_id"] = "wfi_ffffffffffff" })  // id does not match the file name
        let specialStart = cases.count
        for _ in 0..<4 { cases.append((nextID(), nil)) }  // symlink out, symlink to a valid file, FIFO, 100 MB
        var ids: [String] = []
        for (index, (id, content)) in cases.enumerated() {
            let path = instances + "/" + id + ".json"
            ids.append(id)
            if let content {
                _ = FileManager.default.createFile(atPath: path, contents: Data(content))
                continue
            }
            switch index - specialStart {
            case 0: symlink("/etc/passwd", path)
            case 1: symlink(engine.layout.stateFile(template), path)
            case 2: mkfifo(path, 0o644)
            default:
                let fd = open(path, O_WRONLY | O_CREAT, 0o644)
                ftruncate(fd, 100 << 20)
                close(fd)
            }
        }
        var understoodIDs: [String] = []
        for (id, content) in understood {
            _ = FileManager.default.createFile(atPath: instances + "/" + id + ".json", contents: Data(content!))
            // With the template's history, which these files still point into.
            try FileManager.default.createDirectory(atPath: engine.layout.instanceDirectory(id), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: engine.layout.historyFile(template), toPath: engine.layout.historyFile(id))
            understoodIDs.append(id)
        }
        // Badly named files the watcher must ignore.
        for name in ["WFI_000000000001.json", "wfi_123.json", "notes.json", "wfi_00000000000g.json"] {
            _ = FileManager.default.createFile(atPath: instances + "/" + name, contents: Data(validText.utf8))
        }

        let watchLog = root + "/../watch.log"
        let watcher = try startWatcher(root, log: watchLog)
        defer { stop(watcher) }
        var wrong: [String] = []
        for id in ids {
            // `history` reads the state and its history file, so it must refuse every case;
            // `status` reads only the state, whose counts alone may look consistent.
            for command in ["history", "status"] {
                let outcome = try run("chatflow", ["--root", root, command, id], timeout: 20)
                let message = outcome.stderr.split(separator: "\n")
                let refusedClearly = outcome.status == 1 && message.count == 1 && message[0].contains(id)
                let acceptable = refusedClearly || (command == "status" && outcome.status == 0)
                if outcome.timedOut || outcome.signaled || !acceptable {
                    wrong.append("\(command) \(id): exit \(outcome.status) \(outcome.stderr.prefix(160))")
                }
            }
        }
        for id in understoodIDs {
            let outcome = try run("chatflow", ["--root", root, "history", id], timeout: 20)
            if outcome.status != 0 { wrong.append("another writer's readable file refused: history \(id): \(outcome.stderr.prefix(160))") }
        }
        for command in [["list"], ["feature", "f"]] {
            let outcome = try run("chatflow", ["--root", root] + command, timeout: 60)
            if outcome.timedOut || outcome.signaled || ![0, 1].contains(outcome.status) { wrong.append("\(command): \(outcome.status)") }
        }
        // The watcher is alive, reported every file, and still runs hooks for good instances.
        let fresh = try engine.start(schema: schema(3), featureID: "f")
        try engine.trigger(fresh)
        try waitFor("hooks of a good instance", timeout: 30) { recorded(root + "/../record.log")["\(fresh) 1"] != nil }
        if !watcher.isRunning { wrong.append("the watcher died") }
        let log = read(watchLog)
        let unreported = ids.filter { !log.contains($0) }
        if !unreported.isEmpty { wrong.append("not reported by the watcher: \(unreported.prefix(3))") }
        if FileManager.default.fileExists(atPath: marker) { wrong.append("a hook outside the hooks directory ran") }
        tally("hostile_state", tried: ids.count, wrong: wrong.count, note: wrong.first ?? "each reported by status, history and the watcher")
    }
}
