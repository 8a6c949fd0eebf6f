import ChatFlow
import ChatFlowHarness
import Foundation

import Glibc

/// One scenario's cases: each `check` is a case tried; the ones that did not hold are named.
final class Checks {
    private(set) var tried = 0
    private(set) var wrong: [String] = []

    func check(_ label: String, _ held: Bool) {
        tried += 1
        if !held { wrong.append(label) }
    }
}

/// One scenario's count.
struct Tally {
    var name: String
    var tried: Int
    var wrong: Int
    var note: String
}

final class Torture: Harness {
    let quick: Bool
    private(set) var tallies: [Tally] = []

    init(quick: Bool) throws {
        self.quick = quick
        try super.init(scratchPrefix: ".chatflow-torture")
    }

    override func cleanUp() {
        _ = system("umount '\(base)'/*/mnt >/dev/null 2>&1")
        super.cleanUp()
    }

    /// Records and prints one scenario's result.
    func tally(_ name: String, tried: Int, wrong: Int, note: String = "") {
        tallies.append(Tally(name: name, tried: tried, wrong: wrong, note: note))
        let status = wrong == 0 ? "ok  " : "FAIL"
        print("\(status) \(name.padding(toLength: 20, withPad: " ", startingAt: 0)) tried \(String(tried).leftPadded(6))  wrong \(String(wrong).leftPadded(4))  \(note)")
        fflush(nil)
    }

    /// Records one scenario's result from its checks: the first that failed names the note,
    /// else `passed` does.
    func tally(_ name: String, _ checks: Checks, passed: String) {
        tally(name, tried: checks.tried, wrong: checks.wrong.count, note: checks.wrong.isEmpty ? passed : checks.wrong.joined(separator: "; "))
    }

    /// Measures until the value is at most `limit` or `seconds` have passed; returns the last
    /// measure (for resources that a server gives back a little after its clients leave).
    func settled(atMost limit: Int, within seconds: Double, _ measure: () -> Int) -> Int {
        let deadline = Timestamps.monotonic() + seconds
        var value = measure()
        while value > limit && Timestamps.monotonic() < deadline {
            usleep(100_000)
            value = measure()
        }
        return value
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
            stdout: read(out), stderr: read(err), timedOut: timedOut)
    }

    /// `<id> <position>` lines written by a recording hook → count per (id, position).
    func recorded(_ path: String) -> [String: Int] {
        var counts: [String: Int] = [:]
        for line in lines(path) { counts[String(line), default: 0] += 1 }
        return counts
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
