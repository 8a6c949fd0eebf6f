import ChatFlow
import ChatFlowTestSupport
import Synchronization
import Testing
@testable import ChatFlowWatch

import Glibc

/// The one thread that supervises every running hook, on its own: its timers (the retry
/// backoffs) and the end of a hook asked to stop.
@Suite("Hook supervisor", .timeLimit(.minutes(1)))
struct HookSupervisorTests {
    private func supervisor() throws -> HookSupervisor {
        switch HookSupervisor.shared() {
        case .success(let shared): return shared
        case .failure(let unavailable): throw ChatFlowError.io(operation: unavailable.reason, path: "supervisor", errno: 0)
        }
    }

    @Test("timers fire in the order of their deadlines, not of their setting, and none early")
    func timers() async throws {
        let supervisor = try supervisor()
        let fired = Mutex<[(Int, Double)]>([])
        let set = Timestamps.monotonic()
        let delays = [0.30, 0.05, 0.20, 0.0, 0.10]
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            for (index, delay) in delays.enumerated() {
                supervisor.after(delay) {
                    let count = fired.withLock { list in
                        list.append((index, Timestamps.monotonic() - set))
                        return list.count
                    }
                    if count == delays.count { done.resume() }
                }
            }
        }
        let order = fired.withLock { $0 }
        #expect(order.map(\.0) == [3, 1, 4, 2, 0])
        for (index, elapsed) in order { #expect(elapsed >= delays[index] - 0.001, "timer \(index) fired at \(elapsed) s") }
    }

    @Test("a hook asked to stop that ignores SIGTERM is killed after the grace it was given, and is recorded as interrupted")
    func terminateWithGrace() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/stubborn"
        try FileDescriptor(opening: path, flags: O_WRONLY | O_CREAT, mode: 0o755).write(Array("#!/bin/sh\ntrap '' TERM\nsleep 300\n".utf8), at: 0)
        chmod(path, 0o755)
        let launch = HookRunner.start(
            HookInvocation(executable: path, environment: [:], standardInput: [], workingDirectory: "/tmp", timeout: 60, gracePeriod: 30, outputLimit: 4096))
        let pid = try #require(launch.pid)
        // Once it ignores TERM, stop it with a short grace.
        #expect(await eventually(timeout: 10) { Self.hasIgnoredTERM(pid) })
        launch.terminate(grace: 0.3)
        let result = await launch.result()
        guard case .interrupted = result.outcome else {
            Issue.record("the outcome is \(result.outcome), not interrupted")
            return
        }
        #expect(result.endedAt - result.startedAt < 10, "KILL after 0.3 s, not the 30 s grace of its invocation")
    }

    /// Whether the process ignores SIGTERM (`SigIgn` in its status).
    private static func hasIgnoredTERM(_ pid: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigIgn:") }),
              let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16)
        else { return false }
        return mask & (1 << (UInt64(SIGTERM) - 1)) != 0
    }
}
