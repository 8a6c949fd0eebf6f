import Testing
import ChatFlow
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The folder with the built executables (`chatflow`, `chatflow-watch`, `chatflow-bench`).
let binaries: URL = {
    var url = Bundle.main.bundleURL
    while !FileManager.default.fileExists(atPath: url.appendingPathComponent("chatflow").path) && url.path != "/" {
        url = url.deletingLastPathComponent()
    }
    return url
}()

/// A fresh project directory on the real disk with `.chatflow` inside; removed at deinit.
final class Sandbox: @unchecked Sendable {
    let directory: String
    var root: String { directory + "/.chatflow" }
    var hooks: String { root + "/hooks" }
    lazy var engine = WorkflowEngine(root: root)

    init() {
        var template = Array("/tmp/chatflow-e2e-XXXXXX".utf8CString)
        directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        mkdir(root, 0o755)
        mkdir(hooks, 0o755)
        chmod(hooks, 0o755)
    }

    deinit { if ProcessInfo.processInfo.environment["CHATFLOW_KEEP_SANDBOX"] == nil { try? FileManager.default.removeItem(atPath: directory) } }

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

    func lines(_ file: String = "record.log") -> [String] {
        ((try? String(contentsOfFile: directory + "/" + file, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }
}

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a built executable to its end.
@discardableResult
func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
    let process = Process()
    process.executableURL = binaries.appendingPathComponent(executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self))
}

/// Waits for `condition` with a deadline, checking every 10 ms.
func eventually(timeout: Double = 20, _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try condition()
}

/// A running `chatflow-watch`, its stderr going to a file.
final class Watcher: @unchecked Sendable {
    let process = Process()
    let logPath: String

    init(_ sandbox: Sandbox, _ extra: [String] = []) throws {
        logPath = sandbox.directory + "/watch-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = binaries.appendingPathComponent("chatflow-watch")
        process.arguments = ["--root", sandbox.root, "--log-level", "debug"] + extra
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
