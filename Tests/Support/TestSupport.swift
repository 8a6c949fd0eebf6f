import Dispatch
import Foundation
import Glibc
import Synchronization

/// A fresh directory under /tmp (the real disk here, not tmpfs), removed when released.
/// `root` is the conventional state directory inside it.
public final class TemporaryDirectory: Sendable {
    public let path: String
    public var root: String { path + "/.chatflow" }

    public init(_ prefix: String = "chatflow-test") {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    deinit {
        if ProcessInfo.processInfo.environment["CHATFLOW_KEEP_SANDBOX"] == nil { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Lines of a text file inside the directory (none when it does not exist).
    public func lines(_ name: String) -> [String] {
        ((try? String(contentsOfFile: path + "/" + name, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }
}

/// Waits for `condition` with a deadline, checking every 10 ms; true once it holds.
public func eventually(timeout: Double = 20, _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try condition()
}

/// Whether process `pid` holds an inotify watch (a `chatflow wait` or `claim --wait` that is
/// armed: from then on no commit is missed). Read from `/proc/PID/fdinfo`, where each watch of an
/// inotify descriptor is an `inotify wd:` line.
public func hasInotifyWatch(_ pid: Int32) -> Bool {
    let directory = "/proc/\(pid)/fdinfo"
    for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
        if let text = try? String(contentsOfFile: directory + "/" + name, encoding: .utf8), text.contains("inotify wd:") { return true }
    }
    return false
}

/// How a process ended and what it wrote.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs `executable` to its end, reading its stdout and stderr at the same time (one after the
/// other deadlocks once a child fills the pipe buffer of the one not being read).
/// `environment` adds to (an empty value removes from) this process's environment.
public func runToEnd(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:], standardInput: Data? = nil,
    currentDirectory: String? = nil
) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value.isEmpty ? nil : value }
    process.environment = env
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let input = standardInput.map { _ in Pipe() }
    process.standardInput = input ?? FileHandle.nullDevice
    try process.run()
    if let input, let standardInput {
        input.fileHandleForWriting.write(standardInput)
        try? input.fileHandleForWriting.close()
    }
    let errData = Mutex(Data())
    let done = DispatchSemaphore(value: 0)
    let errHandle = err.fileHandleForReading
    Thread.detachNewThread {
        let data = errHandle.readDataToEndOfFile()
        errData.withLock { $0 = data }
        done.signal()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    done.wait()
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData.withLock { $0 }, as: UTF8.self))
}

/// `runToEnd` on a thread of its own, awaited: a long child (a browser test, a client suite)
/// must not hold one of the few cooperative threads that every other test's awaits need.
public func runToEndOffPool(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:]
) async throws -> CommandResult {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try runToEnd(executable, arguments, environment: environment) })
        }
    }
}

/// A database of its own on the test server (`$CHATFLOW_TEST_POSTGRES`, a URL of a role that may
/// create databases; scripts/test.sh starts a throwaway cluster and sets it), dropped when released.
public final class TestDatabase: Sendable {
    /// The server's URL, or nil when the tests run without one.
    public static var server: String? {
        ProcessInfo.processInfo.environment["CHATFLOW_TEST_POSTGRES"].flatMap { $0.isEmpty ? nil : $0 }
    }

    public let name: String
    public let url: String
    private let server: String

    public init() throws {
        guard let server = TestDatabase.server else {
            throw TestDatabaseError(message: "CHATFLOW_TEST_POSTGRES is not set (scripts/test.sh starts a throwaway cluster)")
        }
        self.server = server
        name = "chatflow_test_" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let base = server.split(separator: "?", maxSplits: 1)[0]
        url = base[..<(base.lastIndex(of: "/") ?? base.endIndex)] + "/" + name
        try TestDatabase.psql(server, "CREATE DATABASE \(name)")
    }

    deinit { _ = try? TestDatabase.psql(server, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }

    /// Runs SQL through `psql` (the server's own client), failing on any error.
    @discardableResult
    public static func psql(_ url: String, _ sql: String) throws -> String {
        let result = try runToEnd("/usr/bin/psql", ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        guard result.status == 0 else { throw TestDatabaseError(message: "psql: \(sql): \(result.stderr)") }
        return result.stdout
    }

    /// SQL on this database.
    @discardableResult
    public func sql(_ sql: String) throws -> String { try TestDatabase.psql(url, sql) }
}

public struct TestDatabaseError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
