import ChatFlow
import ChatFlowWatch
import Foundation
import Histogram

#if canImport(Glibc)
import Glibc
#endif

/// One scenario's figures. Latencies are in milliseconds.
struct Figure {
    var name: String
    var unit: String
    var p50: Double?
    var p90: Double?
    var p99: Double?
    var max: Double?
    var n: Int?
    var value: Double?
    var note: String = ""

    var json: JSONValue {
        var object: [String: JSONValue] = ["name": .string(name), "unit": .string(unit)]
        for (key, number) in [("p50", p50), ("p90", p90), ("p99", p99), ("max", max), ("value", value)] {
            if let number { object[key] = .number(JSONNumber((number * 1000).rounded() / 1000)) }
        }
        if let n { object["n"] = .number(JSONNumber(n)) }
        if !note.isEmpty { object["note"] = .string(note) }
        return .object(object)
    }
}

/// Latency samples in microseconds, summarised by an HdrHistogram.
struct Samples {
    private var histogram = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    private(set) var count = 0

    mutating func add(seconds: Double) {
        _ = histogram.record(UInt64(Swift.max(0, seconds) * 1_000_000))
        count += 1
    }

    func figure(_ name: String, note: String = "") -> Figure {
        func ms(_ percentile: Double) -> Double { Double(histogram.valueAtPercentile(percentile)) / 1000 }
        return Figure(
            name: name, unit: "ms", p50: ms(50), p90: ms(90), p99: ms(99), max: Double(histogram.max) / 1000, n: count,
            note: note)
    }
}

enum BenchError: Error, CustomStringConvertible {
    case failed(String)
    var description: String {
        switch self { case .failed(let text): text }
    }
}

final class Bench {
    let quick: Bool
    let json: Bool
    let base: String
    let binaries: String
    private(set) var figures: [Figure] = []

    init(quick: Bool, json: Bool) throws {
        self.quick = quick
        self.json = json
        // On the same disk as the working directory: fsync costs are the point (not tmpfs).
        var template = Array((FileManager.default.currentDirectoryPath + "/.chatflow-bench-XXXXXX").utf8CString)
        base = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        binaries = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        // `swift run chatflow-bench` builds only the bench; build the programs it measures too.
        for product in ["chatflow", "chatflow-watch"] where !FileManager.default.isExecutableFile(atPath: binaries + "/" + product) {
            FileHandle.standardError.write(Data("building \(product)…\n".utf8))
            guard system("swift build -c release --product \(product) >&2") == 0,
                FileManager.default.isExecutableFile(atPath: binaries + "/" + product)
            else {
                throw BenchError.failed("cannot build \(product); run `swift build -c release` in the package first")
            }
        }
    }

    func cleanUp() { try? FileManager.default.removeItem(atPath: base) }

    func record(_ figure: Figure) {
        figures.append(figure)
        if json {
            print(figure.json.compactText)
        } else {
            FileHandle.standardError.write(Data("  \(figure.name): done\n".utf8))
        }
    }

    func printTable() {
        func cell(_ value: Double?) -> String { value.map { String(format: "%.3f", $0) } ?? "-" }
        print("scenario".padding(toLength: 42, withPad: " ", startingAt: 0) + "unit      p50       p90       p99       max        n      value  note")
        for figure in figures {
            var line = figure.name.padding(toLength: 42, withPad: " ", startingAt: 0)
            line += figure.unit.padding(toLength: 7, withPad: " ", startingAt: 0)
            for value in [figure.p50, figure.p90, figure.p99, figure.max] {
                line += cell(value).leftPadded(10)
            }
            line += (figure.n.map(String.init) ?? "-").leftPadded(9)
            line += (figure.value.map { String(format: "%.1f", $0) } ?? "-").leftPadded(11)
            print(line + "  " + figure.note)
        }
    }

    // MARK: Helpers

    private var counter = 0

    /// A fresh state directory with an empty hooks directory.
    func newRoot(_ name: String) -> String {
        counter += 1
        let root = base + "/\(counter)-\(name)/.chatflow"
        try? FileManager.default.createDirectory(atPath: root + "/hooks", withIntermediateDirectories: true)
        chmod(root + "/hooks", 0o755)
        return root
    }

    func writeHook(_ root: String, _ name: String, _ text: String) {
        let path = root + "/hooks/" + name
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        chmod(path, 0o755)
    }

    func process(_ executable: String, _ arguments: [String], stdout: String? = nil, stderr: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : binaries + "/" + executable)
        process.arguments = arguments
        if let stdout {
            _ = FileManager.default.createFile(atPath: stdout, contents: nil)
            process.standardOutput = FileHandle(forWritingAtPath: stdout)
        } else {
            process.standardOutput = FileHandle.nullDevice
        }
        if let stderr {
            _ = FileManager.default.createFile(atPath: stderr, contents: nil)
            process.standardError = FileHandle(forWritingAtPath: stderr)
        } else {
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        return process
    }

    /// Starts chatflow-watch and waits for its "watching" line; returns it and the seconds that took.
    func startWatcher(_ root: String, _ extra: [String] = []) throws -> (Process, Double) {
        let log = root + "/../watch.log"
        let start = Timestamps.monotonic()
        let watcher = try process("chatflow-watch", ["--root", root, "--log-level", "warning"] + extra, stderr: log)
        try waitFor("the watcher to be ready", timeout: 600) { (try? String(contentsOfFile: log, encoding: .utf8))?.contains("watching ") ?? false }
        return (watcher, Timestamps.monotonic() - start)
    }

    func stop(_ process: Process) {
        process.terminate()
        process.waitUntilExit()
    }

    func waitFor(_ what: String, timeout: Double, _ condition: () throws -> Bool) throws {
        let deadline = Timestamps.monotonic() + timeout
        while try !condition() {
            guard Timestamps.monotonic() < deadline else { throw BenchError.failed("timed out waiting for \(what)") }
            usleep(2_000)
        }
    }

    func lines(_ path: String) -> [Substring] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n")
    }

    /// Writer report lines `<id> <seq> <unix time>` → time per (id, seq).
    func writerTimes(_ path: String) -> [String: [Int: Double]] {
        var result: [String: [Int: Double]] = [:]
        for line in lines(path) {
            let parts = line.split(separator: " ")
            guard parts.count == 3, let seq = Int(parts[1]), let time = Double(parts[2]) else { continue }
            result[String(parts[0]), default: [:]][seq] = time
        }
        return result
    }

    func schema(_ phases: Int) -> WorkflowSchema {
        WorkflowSchema(name: "bench", phaseNames: (0..<phases).map { "p\($0)" })
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
