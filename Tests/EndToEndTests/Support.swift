import Testing
import ChatFlow
import ChatFlowTestSupport
import Foundation

import Glibc

/// The folder with the built executables (`chatflow`, `chatflow-watch`, `chatflow-bench`).
let binaries: URL = {
    var url = Bundle.main.bundleURL
    while !FileManager.default.fileExists(atPath: url.appendingPathComponent("chatflow").path) && url.path != "/" {
        url = url.deletingLastPathComponent()
    }
    return url
}()

/// A fresh project directory with `.chatflow` and its `hooks/` inside; removed when released.
final class Sandbox: @unchecked Sendable {
    private let temporary = TemporaryDirectory("chatflow-e2e")
    var directory: String { temporary.path }
    var root: String { temporary.root }
    var hooks: String { root + "/hooks" }
    lazy var engine = WorkflowEngine(root: root)

    init() {
        mkdir(root, 0o755)
        mkdir(hooks, 0o755)
        chmod(hooks, 0o755)
    }

    /// Writes an executable `/bin/sh` hook.
    func hook(_ name: String, _ body: String, mode: mode_t = 0o755) {
        let path = hooks + "/" + name
        if let slash = name.lastIndex(of: "/") {
            let folder = hooks + "/" + name[..<slash]
            mkdir(folder, 0o755)
            chmod(folder, 0o755)
        }
        _ = FileManager.default.createFile(atPath: path, contents: Data(("#!/bin/sh\n" + body + "\n").utf8))
        chmod(path, mode)
    }

    /// A hook body that appends `<id> <transition> <event>` to `file` (one write: atomic with O_APPEND).
    func recorder(_ file: String = "record.log") -> String {
        "echo \"$CHATFLOW_INSTANCE_ID $CHATFLOW_TRANSITION $CHATFLOW_EVENT\" >> \(directory)/\(file)"
    }

    func lines(_ file: String = "record.log") -> [String] { temporary.lines(file) }
}

/// Runs a built executable to its end.
@discardableResult
func run(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:], standardInput: Data? = nil,
    in directory: String? = nil
) throws -> CommandResult {
    try runToEnd(
        binaries.appendingPathComponent(executable).path, arguments, environment: environment, standardInput: standardInput,
        currentDirectory: directory)
}

/// A running `chatflow-watch`, its stderr going to a file.
final class Watcher: @unchecked Sendable {
    let process = Process()
    let logPath: String

    /// With `ignoringSIGCHLD`, started by a shell that ignores SIGCHLD, which exec inherits.
    init(_ sandbox: Sandbox, _ extra: [String] = [], ignoringSIGCHLD: Bool = false) throws {
        logPath = sandbox.directory + "/watch-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let watcher = binaries.appendingPathComponent("chatflow-watch")
        let arguments = ["--root", sandbox.root, "--log-level", "debug"] + extra
        if ignoringSIGCHLD {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "trap '' CHLD; exec \"$0\" \"$@\"", watcher.path] + arguments
        } else {
            process.executableURL = watcher
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = binaries.path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        process.environment = env
        process.standardError = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits for the "watching " line; on failure the watcher's log goes into the test's issue.
    func ready() async -> Bool {
        let ready = await eventually { log.split(separator: "\n").contains { $0.hasPrefix("watching ") } || !process.isRunning }
            && process.isRunning
        if !ready { Issue.record("the watcher did not become ready; its log:\n\(log.suffix(3000))") }
        return ready
    }

    /// SIGTERM, then the exit status.
    func stop() async -> Int32 {
        process.terminate()
        _ = await eventually(timeout: 40) { !process.isRunning }
        return process.isRunning ? -1 : process.terminationStatus
    }

    func kill9() async {
        kill(process.processIdentifier, SIGKILL)
        _ = await eventually { !process.isRunning }
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// `wfi_<id> <n> <event>` lines grouped per instance.
func transitionsByInstance(_ lines: [String]) -> [String: [(Int, String)]] {
    var result: [String: [(Int, String)]] = [:]
    for line in lines {
        let parts = line.split(separator: " ")
        guard parts.count == 3, let position = Int(parts[1]) else { continue }
        result[String(parts[0]), default: []].append((position, String(parts[2])))
    }
    return result
}

let devSchema = WorkflowSchema(name: "dev", phaseNames: ["design", "implement", "testing", "review"])

/// 8 shell loops × 100 `chatflow trigger` of one new 1,000-phase instance, all at once (with
/// `store`, on that store); the instance's id and whether every writer exited 0.
func contendedTriggers(_ sandbox: Sandbox, store: String? = nil) throws -> (id: String, allSucceeded: Bool) {
    let schemaPath = sandbox.directory + "/schema.json"
    let phases = (0..<1000).map { "{\"name\": \"p\($0)\"}" }.joined(separator: ",")
    try "{\"name\": \"long\", \"phases\": [\(phases)]}".write(toFile: schemaPath, atomically: true, encoding: .utf8)
    let storeOption = store.map { ["--store", $0] } ?? []
    let id = try run("chatflow", storeOption + ["--root", sandbox.root, "start", "--feature", "f", "--schema", schemaPath])
        .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    let cli = binaries.appendingPathComponent("chatflow").path
    let environment = store.map { "CHATFLOW_STORE=\($0) " } ?? ""
    let script = "i=0; while [ $i -lt 100 ]; do \(environment)\(cli) --root \(sandbox.root) trigger \(id) --data '{\"w\": '$$'}' >/dev/null || exit 1; i=$((i+1)); done"
    let writers = (0..<8).map { _ in
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        return process
    }
    for writer in writers { try writer.run() }
    for writer in writers { writer.waitUntilExit() }
    return (id, writers.allSatisfy { $0.terminationStatus == 0 })
}
