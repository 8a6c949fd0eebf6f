import CChatFlowShims
import ChatFlow
import Glibc
import Logging

/// The hook runs a watcher that died left behind: started, never ended. Hooks run in sessions
/// of their own, so they outlive a watcher killed with SIGKILL; the next watcher would otherwise
/// run the same transition again beside them.
enum OrphanRuns {
    /// Ends each orphan still running (its process group: TERM, then KILL after `grace`
    /// seconds), waits until it is gone, and records it as interrupted; one already gone is
    /// recorded as its status lost. Call holding the watcher lock, before the catch-up runs
    /// their transitions again: then no transition runs twice at once, and the re-run is the
    /// next attempt with a log of its own. Returns how many runs it settled.
    @discardableResult
    static func settle(layout: Layout, recorder: RunRecorder, grace: Double, logger: Logger) -> Int {
        var unended = (try? RunJournal(layout: layout).scan().unended) ?? []
        // A watcher killed between a hook's spawn and its start record left no record of it:
        // such a hook is found by its environment (no watcher of this root is alive to own it).
        let known = Set(unended.map(\.pid))
        unended += unrecorded(root: layout.root).filter { !known.contains($0.pid) }
        for start in unended {
            if start.isAlive {
                logger.warning(
                    "ending a hook its dead watcher left running; its transition runs again",
                    metadata: [
                        "instance.id": "\(start.instanceID)", "transition": "\(start.transition)", "hook.name": "\(start.hook)",
                        "pid": "\(start.pid)",
                    ])
                let signal = end(start.pid, grace: grace)
                recorder.recordEnd(of: start, outcome: .interrupted(signal: signal))
            } else {
                recorder.recordEnd(
                    of: start, outcome: .statusLost(reason: "its watcher ended before it did, and its end was not recorded"))
            }
        }
        return unended.count
    }

    /// Hooks of `root` still running that no record names: session leaders (hooks run in
    /// sessions of their own) whose environment says a watcher started them as a hook of this
    /// state directory (`CHATFLOW_WATCHER_PID`, `CHATFLOW_ROOT`, …).
    /// Their start is not in the journal, but their attempt is in their environment.
    private static func unrecorded(root: String) -> [RunningHook] {
        var found: [RunningHook] = []
        for name in (try? FileSystem.list("/proc")) ?? [] {
            guard let pid = Int32(name), pid != getpid(), let process = ProcessStart(pid), process.session == pid,
                  let bytes = try? FileDescriptor(opening: "/proc/\(pid)/environ", flags: O_RDONLY).readAll(limit: 1 << 20)
            else { continue }
            var environment: [Substring: Substring] = [:]
            for entry in String(decoding: bytes, as: UTF8.self).split(separator: "\0") where entry.hasPrefix("CHATFLOW_") {
                if let equals = entry.firstIndex(of: "=") { environment[entry[..<equals]] = entry[entry.index(after: equals)...] }
            }
            guard environment["CHATFLOW_WATCHER_PID"] != nil, environment["CHATFLOW_ROOT"].map(String.init) == root,
                  let id = environment["CHATFLOW_INSTANCE_ID"].map(String.init), Identifiers.isInstanceID(id),
                  let transition = environment["CHATFLOW_TRANSITION"].flatMap({ Int($0) }),
                  let hook = environment["CHATFLOW_HOOK"].map(String.init),
                  let attempt = environment["CHATFLOW_ATTEMPT"].flatMap({ Int($0) })
            else { continue }
            var start = RunningHook(
                instanceID: id, transition: transition, phase: environment["CHATFLOW_PHASE"].map(String.init) ?? "",
                event: environment["CHATFLOW_EVENT"].map(String.init) ?? "", hook: hook, pid: pid,
                startedAt: process.startedAt, logPath: "")
            start.attempt = attempt
            found.append(start)
        }
        return found
    }

    /// TERM to the process group, KILL once `grace` seconds pass without its leader exiting;
    /// returns the last signal sent. Waits on a pidfd (the leader is not this process's child).
    private static func end(_ pid: Int32, grace: Double) -> Int32 {
        let pidfd = chatflow_pidfd_open(pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        kill(-pid, SIGTERM)
        if exited(pidfd, pid, within: grace) { return SIGTERM }
        kill(-pid, SIGKILL)
        _ = exited(pidfd, pid, within: 10)
        return SIGKILL
    }

    private static func exited(_ pidfd: Int32, _ pid: Int32, within seconds: Double) -> Bool {
        guard pidfd >= 0 else { return kill(pid, 0) != 0 && errno == ESRCH }
        var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        let deadline = Timestamps.monotonic() + seconds
        while true {
            let left = Int32(max(0, (deadline - Timestamps.monotonic()) * 1000))
            let ready = poll(&entry, 1, left)
            if ready > 0 { return true }
            if ready == 0 { return false }
            if errno != EINTR { return false }
        }
    }
}
