import ChatFlow
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One scenario's count.
struct Tally {
    var name: String
    var tried: Int
    var wrong: Int
    var note: String
}

enum TortureError: Error, CustomStringConvertible {
    case failed(String)
    var description: String {
        switch self { case .failed(let text): text }
    }
}

final class Torture {
    let quick: Bool
    let base: String
    let binaries: String
    private(set) var tallies: [Tally] = []
    private var counter = 0

    init(quick: Bool) throws {
        self.quick = quick
        var template = Array((FileManager.default.currentDirectoryPath + "/.chatflow-torture-XXXXXX").utf8CString)
        base = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        binaries = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        // `swift run chatflow-torture` builds only this tool; build the programs it drives too.
        for product in ["chatflow", "chatflow-watch"] where !FileManager.default.isExecutableFile(atPath: binaries + "/" + product) {
            guard system("swift build -c release --product \(product) >&2") == 0 else {
                throw TortureError.failed("cannot build \(product); run `swift build -c release` in the package first")
            }
        }
        signal(SIGPIPE, SIG_IGN)
    }

    func cleanUp() {
        _ = system("umount '\(base)'/*/mnt >/dev/null 2>&1")
        try? FileManager.default.removeItem(atPath: base)
    }

    /// Records and prints one scenario's result.
    func tally(_ name: String, tried: Int, wrong: Int, note: String = "") {
        tallies.append(Tally(name: name, tried: tried, wrong: wrong, note: note))
        let status = wrong == 0 ? "ok  " : "FAIL"
        print("\(status) \(name.padding(toLength: 20, withPad: " ", startingAt: 0)) tried \(String(tried).leftPadded(6))  wrong \(String(wrong).leftPadded(4))  \(note)")
        fflush(nil)
    }

    /// A fresh project directory; returns its `.chatflow` root (hooks directory created).
    func newRoot(_ name: String) -> String {
        counter += 1
        let root = base + "/\(counter)-\(name)/.chatflow"
        try? FileManager.default.createDirectory(atPath: root + "/hooks", withIntermediateDirectories: true)
        chmod(root + "/hooks", 0o755)
        return root
    }

    func writeHook(_ root: String, _ name: String, _ text: String, mode: mode_t = 0o755) {
        let path = root + "/hooks/" + name
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        chmod(path, mode)
    }

    func process(_ executable: String, _ arguments: [String], stdout: String? = nil, stderr: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : binaries + "/" + executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = binaries + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        process.environment = environment
        process.standardOutput = outputHandle(stdout)
        process.standardError = outputHandle(stderr)
        try process.run()
        return process
    }

    /// A file to write a child's output to, or /dev/null.
    private func outputHandle(_ path: String?) -> FileHandle {
        guard let path else { return FileHandle.nullDevice }
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        return FileHandle(forWritingAtPath: path) ?? FileHandle.nullDevice
    }

    struct Outcome {
        var status: Int32
        var signaled: Bool
        var stdout: String
        var stderr: String
        var timedOut: Bool
    }

    /// Runs a command to its end, killing it after `timeout` seconds.
    func run(_ executable: String, _ arguments: [String], timeout: Double = 20) throws -> Outcome {
        let out = base + "/run.out"
        let err = base + "/run.err"
        let child = try process(executable, arguments, stdout: out, stderr: err)
        let deadline = Timestamps.monotonic() + timeout
        while child.isRunning && Timestamps.monotonic() < deadline { usleep(1000) }
        let timedOut = child.isRunning
        if timedOut { kill(child.processIdentifier, SIGKILL) }
        child.waitUntilExit()
        return Outcome(
            status: child.terminationStatus, signaled: child.terminationReason == .uncaughtSignal,
            stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "", timedOut: timedOut)
    }

    func waitFor(_ what: String, timeout: Double, _ condition: () throws -> Bool) throws {
        let deadline = Timestamps.monotonic() + timeout
        while try !condition() {
            guard Timestamps.monotonic() < deadline else { throw TortureError.failed("timed out waiting for \(what)") }
            usleep(5_000)
        }
    }

    /// Starts chatflow-watch and waits for its "watching" line.
    func startWatcher(_ root: String, _ extra: [String] = [], log: String? = nil) throws -> Process {
        let logPath = log ?? root + "/../watch-\(UUID().uuidString).log"
        let watcher = try process("chatflow-watch", ["--root", root, "--log-level", "info"] + extra, stderr: logPath)
        try waitFor("the watcher", timeout: 120) {
            guard watcher.isRunning else { throw TortureError.failed("chatflow-watch exited: \(read(logPath))") }
            return read(logPath).contains("watching ")
        }
        return watcher
    }

    func stop(_ process: Process) {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    func lines(_ path: String) -> [Substring] { read(path).split(separator: "\n") }

    /// `<id> <position>` lines written by a recording hook → count per (id, position).
    func recorded(_ path: String) -> [String: Int] {
        var counts: [String: Int] = [:]
        for line in lines(path) { counts[String(line), default: 0] += 1 }
        return counts
    }

    func schema(_ phases: Int) -> WorkflowSchema {
        WorkflowSchema(name: "torture", phaseNames: (0..<phases).map { "p\($0)" })
    }

    /// Every file under a directory with its contents, for "nothing was written" checks.
    func snapshot(_ directory: String) -> [String: Data] {
        var result: [String: Data] = [:]
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return result }
        while let relative = walker.nextObject() as? String {
            let path = directory + "/" + relative
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            result[relative] = FileManager.default.contents(atPath: path) ?? Data()
        }
        return result
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
