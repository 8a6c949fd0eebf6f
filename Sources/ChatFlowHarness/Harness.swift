import ChatFlow
import Foundation

import Glibc

/// What the benchmark and the torture suite share: a scratch directory on the working
/// directory's disk, the built executables, and real processes (writers, the watcher, hooks).
open class Harness {
    /// The scratch directory, removed by `cleanUp`.
    public let base: String
    /// Where `chatflow`, `chatflow-watch` and the running tool are.
    public let binaries: String
    private var counter = 0

    /// Creates `<cwd>/<prefix>-XXXXXX` and makes sure `chatflow` and `chatflow-watch` are built
    /// next to the running tool (`swift run TOOL` builds only the tool itself).
    public init(scratchPrefix: String) throws {
        // On the same disk as the working directory: fsync costs are the point (not tmpfs).
        var template = Array((FileManager.default.currentDirectoryPath + "/" + scratchPrefix + "-XXXXXX").utf8CString)
        base = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        binaries = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        for product in ["chatflow", "chatflow-watch"] { _ = try executable(product) }
        signal(SIGPIPE, SIG_IGN)
    }

    /// The built `product` next to the running tool, building it first if it is missing
    /// (`swift run TOOL` builds only the tool itself).
    public func executable(_ product: String) throws -> URL {
        let path = binaries + "/" + product
        if !FileManager.default.isExecutableFile(atPath: path) {
            // Built in this tool's own configuration, so that it lands in `binaries`.
            let configuration = URL(fileURLWithPath: binaries).lastPathComponent == "debug" ? "debug" : "release"
            FileHandle.standardError.write(Data("building \(product)…\n".utf8))
            guard system("swift build -c \(configuration) --product \(product) >&2") == 0,
                FileManager.default.isExecutableFile(atPath: path)
            else {
                throw HarnessError.failed("cannot build \(product) into \(binaries); run `swift build -c \(configuration) --product \(product)` in the package first")
            }
        }
        return URL(fileURLWithPath: path)
    }

    open func cleanUp() { try? FileManager.default.removeItem(atPath: base) }

    /// A fresh project directory; returns its `.chatflow` root, with an empty hooks directory.
    public func newRoot(_ name: String) -> String {
        counter += 1
        let root = base + "/\(counter)-\(name)/.chatflow"
        try? FileManager.default.createDirectory(atPath: root + "/hooks", withIntermediateDirectories: true)
        chmod(root + "/hooks", 0o755)
        return root
    }

    /// Writes a hook (`E` or `E.d/NAME`, the folder made as the watcher trusts it).
    public func writeHook(_ root: String, _ name: String, _ text: String, mode: mode_t = 0o755) {
        let path = root + "/hooks/" + name
        if let slash = name.lastIndex(of: "/") {
            let folder = root + "/hooks/" + name[..<slash]
            mkdir(folder, 0o755)
            chmod(folder, 0o755)
        }
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        chmod(path, mode)
    }

    /// Starts a process (a bare name is one of the built executables, built if missing); output to
    /// files or /dev/null.
    public func process(_ executable: String, _ arguments: [String], stdout: String? = nil, stderr: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = executable.hasPrefix("/") ? URL(fileURLWithPath: executable) : try self.executable(executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = binaries + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        process.environment = environment
        process.standardOutput = outputHandle(stdout)
        process.standardError = outputHandle(stderr)
        try process.run()
        return process
    }

    private func outputHandle(_ path: String?) -> FileHandle {
        guard let path else { return FileHandle.nullDevice }
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        return FileHandle(forWritingAtPath: path) ?? FileHandle.nullDevice
    }

    /// Starts chatflow-watch and waits for its "watching" line.
    public func startWatcher(_ root: String, _ extra: [String] = [], logLevel: String = "info", log: String? = nil) throws -> Process {
        let logPath = log ?? root + "/../watch-\(UUID().uuidString).log"
        let watcher = try process("chatflow-watch", ["--root", root, "--log-level", logLevel] + extra, stderr: logPath)
        try waitFor("the watcher to be ready", timeout: 600) {
            guard watcher.isRunning else { throw HarnessError.failed("chatflow-watch exited: \(read(logPath))") }
            return read(logPath).contains("watching ")
        }
        return watcher
    }

    /// SIGTERM and wait.
    public func stop(_ process: Process) {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// Polls `condition` every 2 ms until it holds, or throws after `timeout` seconds.
    public func waitFor(_ what: String, timeout: Double, _ condition: () throws -> Bool) throws {
        let deadline = Timestamps.monotonic() + timeout
        while try !condition() {
            guard Timestamps.monotonic() < deadline else { throw HarnessError.failed("timed out waiting for \(what)") }
            usleep(2_000)
        }
    }

    public func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    public func lines(_ path: String) -> [Substring] { read(path).split(separator: "\n") }

    /// A schema of `phases` phases named p0, p1, …
    public func schema(_ phases: Int) -> WorkflowSchema {
        WorkflowSchema(name: "harness", phaseNames: (0..<phases).map { "p\($0)" })
    }
}

/// CPU time (ns-exact, from each thread's schedstat) and context switches, summed over a
/// process's threads: an idle watcher should show neither growing.
public struct ThreadActivity: Sendable {
    public var cpuSeconds = 0.0
    /// A thread that blocks and is woken counts one.
    public var contextSwitches = 0

    public init(of pid: Int32) {
        for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
            func text(_ file: String) -> String {
                (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/\(file)", encoding: .utf8)) ?? ""
            }
            if let nanoseconds = text("schedstat").split(separator: " ").first.flatMap({ Double($0) }) {
                cpuSeconds += nanoseconds / 1e9
            }
            for line in text("status").split(separator: "\n") where line.contains("ctxt_switches:") {
                contextSwitches += line.split(separator: "\t").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? 0
            }
        }
    }
}

public enum HarnessError: Error, CustomStringConvertible {
    case failed(String)

    public var description: String {
        switch self { case .failed(let text): text }
    }
}

extension String {
    /// Right-aligned in `width` columns.
    public func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
