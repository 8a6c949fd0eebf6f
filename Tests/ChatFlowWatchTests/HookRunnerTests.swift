import ChatFlow
import Foundation
import Testing
@testable import ChatFlowWatch
import ChatFlowTestSupport

import Glibc

private func script(_ body: String, mode: mode_t = 0o755) -> String {
    let path = NSTemporaryDirectory() + "hook-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: path, contents: Data(("#!/bin/sh\n" + body + "\n").utf8))
    chmod(path, mode)
    return path
}

private func invocation(_ path: String, timeout: Double = 10, stdin: String = "", limit: Int = 1 << 20) -> HookInvocation {
    HookInvocation(
        executable: path, environment: ["CHATFLOW_PHASE": "testing"], standardInput: Array(stdin.utf8),
        workingDirectory: "/tmp", timeout: timeout, gracePeriod: 1, outputLimit: limit)
}

private func isGone(_ pid: Int32) -> Bool {
    if kill(pid, 0) != 0 { return errno == ESRCH }
    // A zombie waiting for a reaper counts as gone.
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
}

@Suite("Hook runner")
struct HookRunnerTests {
    @Test("passes environment, stdin and working directory; reports the exit code")
    func basics() async {
        let path = script("echo \"$CHATFLOW_PHASE\"; cat; pwd; echo \"$PWD\"; exit 3")
        let result = await HookRunner.run(invocation(path, stdin: "{\"a\":1}"))
        #expect(result.outcome == .exited(code: 3))
        #expect(String(decoding: result.output, as: UTF8.self) == "testing\n{\"a\":1}/tmp\n/tmp\n")
    }

    @Test("a signal ending the hook is reported as such")
    func signaled() async {
        let result = await HookRunner.run(invocation(script("kill -9 $$")))
        #expect(result.outcome == .signaled(signal: 9))
    }

    @Test("a timeout ends the whole process group, grandchildren included", .timeLimit(.minutes(1)))
    func timeoutKillsGroup() async throws {
        let pidFile = NSTemporaryDirectory() + "grandchild-\(UUID().uuidString)"
        let path = script("sleep 300 & echo $! > \(pidFile); trap '' TERM; sleep 300")
        let result = await HookRunner.run(invocation(path, timeout: 0.5))
        #expect(result.outcome == .timedOut(after: 0.5))
        // The run's own times (not the test's wall clock, which a busy test pool stretches).
        #expect(result.endedAt - result.startedAt < 5, "TERM ignored: KILL after the grace period")
        let grandchild = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(await eventually(timeout: 5) { isGone(grandchild) })
    }

    @Test("a daemon holding stdout open does not stall the run")
    func daemonHoldingOutput() async {
        let path = script("setsid sleep 30 & echo started")
        let result = await HookRunner.run(invocation(path))
        #expect(result.outcome == .exited(code: 0))
        // The run's own times: a busy test pool stretches the test's wall clock, not the run.
        #expect(result.endedAt - result.startedAt < 10, "the daemon sleeps 30 s; the run must not wait for it")
        #expect(String(decoding: result.output, as: UTF8.self).contains("started"))
    }

    @Test("a flood of output keeps only the tail and counts the rest", .timeLimit(.minutes(1)))
    func outputFlood() async {
        let path = script("head -c 5000000 /dev/zero | tr '\\0' x; echo END")
        let result = await HookRunner.run(invocation(path, limit: 1000))
        #expect(result.outcome == .exited(code: 0))
        #expect(result.output.count == 1000)
        #expect(String(decoding: result.output.suffix(4), as: UTF8.self) == "END\n")
        #expect(result.droppedBytes == 5_000_004 - 1000)
    }

    @Test("one supervisor runs many hooks at once: each gets its own output and status; a hung one delays none", .timeLimit(.minutes(1)))
    func manyAtOnce() async {
        // Written before any is started: a script still open for writing in another thread
        // while one is spawned fails with ETXTBSY.
        let paths = [script("echo hung; exec sleep 60")]
            + (1..<16).map { script("sleep 0.\($0 % 4); echo out-\($0); echo err-\($0) >&2; exit \($0)") }
        let results = await withTaskGroup(of: (Int, HookResult).self) { group in
            for index in 0..<16 {
                group.addTask {
                    (index, await HookRunner.run(invocation(paths[index], timeout: index == 0 ? 2 : 30)))
                }
            }
            var all: [Int: HookResult] = [:]
            for await (index, result) in group { all[index] = result }
            return all
        }
        let hungResult = results[0]!
        #expect(hungResult.outcome == .timedOut(after: 2))
        for index in 1..<16 {
            let result = results[index]!
            #expect(result.outcome == .exited(code: Int32(index)))
            #expect(String(decoding: result.output, as: UTF8.self).split(separator: "\n").sorted() == ["err-\(index)", "out-\(index)"])
            #expect(result.endedAt < hungResult.endedAt, "hook \(index) finished while the hung one was still running")
        }
    }

    @Test("a missing executable fails to launch")
    func missing() async {
        let result = await HookRunner.run(invocation("/nonexistent/hook"))
        guard case .failedToLaunch = result.outcome else {
            Issue.record("expected failedToLaunch, got \(result.outcome)")
            return
        }
    }
}

@Suite("Hook catalog")
struct HookCatalogTests {
    @Test("finds the phase file, then E.d in name order; ignores samples and dot files; refuses unsafe hooks")
    func discoveryAndTrust() throws {
        let directory = NSTemporaryDirectory() + "hooks-\(UUID().uuidString)"
        mkdir(directory, 0o755)
        chmod(directory, 0o755)
        func write(_ name: String, mode: mode_t) {
            _ = FileManager.default.createFile(atPath: directory + "/" + name, contents: Data("#!/bin/sh\n# chatflow-timeout: 7\n".utf8))
            chmod(directory + "/" + name, mode)
        }
        mkdir(directory + "/testing.d", 0o755)
        chmod(directory + "/testing.d", 0o755)
        write("testing", mode: 0o755)
        write("testing.d/20-b", mode: 0o755)
        write("testing.d/10-a", mode: 0o700)
        write("testing.d/15.sample", mode: 0o755)
        write("testing.d/.hidden", mode: 0o755)
        write("testing.d/30-writable", mode: 0o775)
        write("testing.d/40-noexec", mode: 0o644)
        symlink("/bin/true", directory + "/testing.d/50-outside")
        let (hooks, refused) = HookCatalog(directory: directory).hooks(for: "testing")
        #expect(hooks.map(\.name) == ["testing", "testing.d/10-a", "testing.d/20-b"])
        #expect(hooks.allSatisfy { $0.timeout == 7 })
        #expect(refused.map { FileSystem.baseName($0.path) }.sorted() == ["30-writable", "40-noexec", "50-outside"])
        #expect(refused.allSatisfy { $0.reason.contains("fix") || $0.reason.contains("copy") })
        chmod(directory, 0o777)
        let (none, all) = HookCatalog(directory: directory).hooks(for: "testing")
        #expect(none.isEmpty && all.count >= 3, "a world-writable hooks directory refuses everything")
    }
}

@Suite("Hook lookup cache")
struct HookLookupCacheTests {
    @Test("a remembered lookup notices permission changes, edits, new and removed hooks at once", .timeLimit(.minutes(1)))
    func noticesChanges() async throws {
        let directory = NSTemporaryDirectory() + "hooks-\(UUID().uuidString)"
        mkdir(directory, 0o755)
        chmod(directory, 0o755)
        func write(_ name: String, _ text: String = "#!/bin/sh\n", mode: mode_t = 0o755) {
            _ = FileManager.default.createFile(atPath: directory + "/" + name, contents: Data(text.utf8))
            chmod(directory + "/" + name, mode)
        }
        write("testing")
        let cache = HookLookupCache(catalog: HookCatalog(directory: directory))
        func names() -> [String] { cache.hooks(for: ["testing"]).hooks.map(\.name) }
        // Lookups are remembered once the files are older than the clock's granularity.
        #expect(await eventually(timeout: 5) { _ = names(); return cache.isRemembered("testing") })
        #expect(names() == ["testing"])

        chmod(directory + "/testing", 0o775)
        #expect(names().isEmpty && cache.hooks(for: ["testing"]).refused.count == 1, "group-writable now: refused")
        chmod(directory + "/testing", 0o755)
        #expect(names() == ["testing"])

        write("testing", "#!/bin/sh\n# chatflow-timeout: 3\n")
        #expect(cache.hooks(for: ["testing"]).hooks.first?.timeout == 3)

        mkdir(directory + "/testing.d", 0o755)
        chmod(directory + "/testing.d", 0o755)
        write("testing.d/10-more")
        #expect(names() == ["testing", "testing.d/10-more"])

        #expect(await eventually(timeout: 5) { _ = names(); return cache.isRemembered("testing") })
        unlink(directory + "/testing")
        #expect(names() == ["testing.d/10-more"])
        chmod(directory, 0o777)
        #expect(names().isEmpty, "a world-writable hooks directory refuses everything")
    }
}
