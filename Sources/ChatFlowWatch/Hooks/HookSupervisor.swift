import CChatFlowShims
import ChatFlow
import Synchronization

import Glibc

/// The one thread that waits for every running hook: their output pipes and pidfds sit in an
/// epoll set, their deadlines behind one timerfd.
///
/// Handing a hook over adds two descriptors to the set and, only when its deadline is the
/// earliest, re-arms the timer; neither wakes the thread. So a hook's first milliseconds, when
/// it is starting up, are not shared with watcher threads being woken or created for it. The
/// thread wakes when a hook writes output, exits, or reaches a deadline.
final class HookSupervisor: Sendable {
    private static let instance = Mutex<HookSupervisor?>(nil)

    /// The process's supervisor, created on first use; if its descriptors cannot be created
    /// (out of file descriptors), the reason, and the next call tries again.
    static func shared() -> Result<HookSupervisor, HookSupervisorUnavailable> {
        instance.withLock { instance in
            if let instance { return .success(instance) }
            let epoll = chatflow_epoll_create()
            let timer = epoll >= 0 ? chatflow_timerfd_create() : -1
            guard epoll >= 0, timer >= 0, chatflow_epoll_add(epoll, timer, HookSupervisor.timerToken) == 0 else {
                let reason = String(cString: strerror(errno))
                if epoll >= 0 { close(epoll) }
                if timer >= 0 { close(timer) }
                return .failure(HookSupervisorUnavailable(reason: "cannot watch hooks (epoll/timerfd): \(reason)"))
            }
            let created = HookSupervisor(epoll: epoll, timer: timer)
            instance = created
            return .success(created)
        }
    }

    /// What is known of one running hook.
    private struct Entry {
        let child: HookRunner.Child
        let pidfd: Int32
        let timeout: Double
        let grace: Double
        let deadline: Double
        let completion: @Sendable (HookResult) -> Void
        var tail: OutputTail
        /// The run's log, written as output arrives.
        let log: LiveLog?
        var pipeOpen = true
        var timedOut = false
        /// Ended by `terminate` (the watcher's shutdown), not by its own doing.
        var interrupted = false
        var killAt: Double?
        var exitStatus: Int32?
        /// Why the exit status could not be collected (it is then unknown, never "exit 0").
        var statusLost: String?
        /// After exit, how long output is still read (a daemon left behind may hold the pipe).
        var drainUntil: Double?

        /// When the supervisor must look at this hook without being woken by a descriptor.
        var nextCheck: Double {
            if exitStatus != nil { return drainUntil ?? 0 }
            var next = min(timedOut ? .infinity : deadline, killAt ?? .infinity)
            // Without a pidfd (kernels before 5.3) the exit is found by polling.
            if pidfd < 0 { next = min(next, Timestamps.monotonic() + 0.05) }
            return next
        }
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        /// Delays (a hook's retry backoff): when, and what to call then.
        var timers: [UInt64: (deadline: Double, fire: @Sendable () -> Void)] = [:]
        var nextID: UInt64 = 1
        var armedFor = Double.infinity
    }

    private let state = Mutex(State())
    private let epoll: Int32
    private let timer: Int32
    private static let timerToken: UInt64 = 0

    private init(epoll: Int32, timer: Int32) {
        self.epoll = epoll
        self.timer = timer
        startThread { [self] in loop() }
    }

    /// Watches `child` until it has exited and its output is read, then calls `completion`
    /// (on the supervisor's thread). Returns the id `terminate` takes.
    @discardableResult
    func supervise(_ child: HookRunner.Child, _ invocation: HookInvocation, completion: @escaping @Sendable (HookResult) -> Void) -> UInt64 {
        let pidfd = chatflow_pidfd_open(child.pid)
        let flags = fcntl(child.output, F_GETFL)
        _ = fcntl(child.output, F_SETFL, flags | O_NONBLOCK)
        let entry = Entry(
            child: child, pidfd: pidfd, timeout: invocation.timeout, grace: invocation.gracePeriod,
            deadline: Timestamps.monotonic() + invocation.timeout, completion: completion,
            tail: OutputTail(limit: invocation.outputLimit),
            log: invocation.logFile.map { LiveLog(path: $0, root: invocation.logRoot, header: invocation.logHeader, limit: invocation.outputLimit) })
        return state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.entries[id] = entry
            _ = chatflow_epoll_add(epoll, child.output, id << 1)
            if pidfd >= 0 { _ = chatflow_epoll_add(epoll, pidfd, id << 1 | 1) }
            arm(&state, for: entry.nextCheck)
            return id
        }
    }

    /// Ends a running hook's process group: SIGTERM now, SIGKILL after `grace` (default its
    /// grace period); its outcome is `interrupted`. With a timeout, the one way hooks are ended.
    func terminate(_ id: UInt64, grace: Double? = nil) {
        state.withLock { state in
            guard var entry = state.entries[id], entry.exitStatus == nil else { return }
            let killAt = Timestamps.monotonic() + (grace ?? entry.grace)
            if !entry.interrupted {
                entry.interrupted = true
                kill(-entry.child.pid, SIGTERM)
            }
            entry.killAt = min(entry.killAt ?? .infinity, killAt)
            state.entries[id] = entry
            arm(&state, for: entry.nextCheck)
        }
    }

    /// Calls `fire` (on the supervisor's thread) `seconds` from now, on the same timerfd as the
    /// hooks' deadlines: a delay starts no thread and no other timer.
    func after(_ seconds: Double, _ fire: @escaping @Sendable () -> Void) {
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            let deadline = Timestamps.monotonic() + max(0, seconds)
            state.timers[id] = (deadline, fire)
            arm(&state, for: deadline)
        }
    }

    /// Moves the timer earlier if `time` is before what it is armed for.
    private func arm(_ state: inout State, for time: Double) {
        guard time < state.armedFor else { return }
        state.armedFor = time
        _ = chatflow_timerfd_arm(timer, max(time, 1e-6))
    }

    private func loop() {
        var tokens = [UInt64](repeating: 0, count: 64)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = tokens.withUnsafeMutableBufferPointer { chatflow_epoll_wait(epoll, $0.baseAddress, 64, -1) }
            if count < 0 {
                if errno != EINTR { usleep(10_000) }
                continue
            }
            var finished: [(Entry, HookResult)] = []
            var due: [@Sendable () -> Void] = []
            state.withLock { state in
                for token in tokens.prefix(Int(count)) {
                    if token == HookSupervisor.timerToken {
                        var expirations: UInt64 = 0
                        _ = read(timer, &expirations, 8)
                        state.armedFor = .infinity
                        continue
                    }
                    guard var entry = state.entries[token >> 1] else { continue }
                    if token & 1 == 0 {
                        drain(&entry, buffer: &buffer)
                    } else {
                        reap(&entry)
                    }
                    state.entries[token >> 1] = entry
                }
                let now = Timestamps.monotonic()
                var earliest = Double.infinity
                for (id, var entry) in state.entries {
                    check(&entry, now: now)
                    if entry.exitStatus != nil && (!entry.pipeOpen || now >= entry.drainUntil ?? 0) {
                        state.entries[id] = nil
                        finished.append((entry, finish(entry)))
                        continue
                    }
                    state.entries[id] = entry
                    earliest = min(earliest, entry.nextCheck)
                }
                for (id, timer) in state.timers {
                    if timer.deadline <= now {
                        state.timers[id] = nil
                        due.append(timer.fire)
                    } else {
                        earliest = min(earliest, timer.deadline)
                    }
                }
                // Re-arm for the earliest remaining check (the expiry disarmed it, or it may be later now).
                state.armedFor = .infinity
                if earliest < .infinity { arm(&state, for: earliest) }
            }
            for (entry, result) in finished { entry.completion(result) }
            for fire in due { fire() }
        }
    }

    /// Reads what the pipe has (at most 1 MiB per wake, so a flooding hook cannot starve the
    /// others; epoll reports the rest); at EOF stops watching it.
    private func drain(_ entry: inout Entry, buffer: inout [UInt8]) {
        for _ in 0..<16 where entry.pipeOpen {
            let got = buffer.withUnsafeMutableBytes { readAvailable(entry.child.output, into: $0) }
            guard let got else { return }
            if case .success(let count) = got, count > 0 {
                entry.tail.append(buffer[0..<count])
                entry.log?.append(buffer[0..<count])
                if count < buffer.count { return }
                continue
            }
            // End of file, or an error: nothing more will come.
            entry.pipeOpen = false
            _ = chatflow_epoll_remove(epoll, entry.child.output)
        }
    }

    /// Collects the exit status if the hook has exited; then ends what it left in its group.
    private func reap(_ entry: inout Entry) {
        guard entry.exitStatus == nil else { return }
        var status: Int32 = 0
        var result: pid_t
        repeat { result = waitpid(entry.child.pid, &status, WNOHANG) } while result < 0 && errno == EINTR
        guard result == entry.child.pid || result < 0 else { return }
        if result < 0 { entry.statusLost = "waitpid: \(String(cString: strerror(errno)))" }
        entry.exitStatus = result < 0 ? 0 : status
        kill(-entry.child.pid, SIGKILL)
        if entry.pidfd >= 0 { _ = chatflow_epoll_remove(epoll, entry.pidfd) }
        entry.drainUntil = Timestamps.monotonic() + 0.2
    }

    /// Deadlines: TERM to the group at the timeout, KILL after the grace period.
    private func check(_ entry: inout Entry, now: Double) {
        if entry.pidfd < 0 { reap(&entry) }
        guard entry.exitStatus == nil else { return }
        if !entry.timedOut && now >= entry.deadline {
            entry.timedOut = true
            kill(-entry.child.pid, SIGTERM)
            entry.killAt = min(entry.killAt ?? .infinity, now + entry.grace)
        }
        if let killAt = entry.killAt, now >= killAt {
            kill(-entry.child.pid, SIGKILL)
            entry.killAt = nil
        }
    }

    /// Closes the hook's descriptors and makes its result.
    private func finish(_ entry: Entry) -> HookResult {
        if entry.pipeOpen { _ = chatflow_epoll_remove(epoll, entry.child.output) }
        close(entry.child.output)
        if entry.pidfd >= 0 { close(entry.pidfd) }
        let status = entry.exitStatus ?? 0
        let outcome: HookOutcome
        if let reason = entry.statusLost {
            outcome = .statusLost(reason: reason)
        } else if entry.timedOut {
            outcome = .timedOut(after: entry.timeout)
        } else if entry.interrupted {
            outcome = .interrupted(signal: status & 0x7F == 0 ? nil : status & 0x7F)
        } else if status & 0x7F == 0 {
            outcome = .exited(code: (status >> 8) & 0xFF)
        } else {
            outcome = .signaled(signal: status & 0x7F)
        }
        let endedAt = Timestamps.unix()
        var footer = "== \(outcome.summary) after \(HookOutcome.seconds(endedAt - entry.child.startedAt))"
        if entry.tail.dropped > 0 { footer += ", \(entry.tail.dropped) bytes of output dropped (the tail is kept)" }
        entry.log?.finish(footer + " ==\n")
        var result = HookResult(
            outcome: outcome, pid: entry.child.pid, startedAt: entry.child.startedAt, endedAt: endedAt,
            output: entry.tail.bytes, droppedBytes: entry.tail.dropped)
        result.logProblem = entry.log?.problem
        return result
    }
}

/// Why hooks cannot be supervised right now.
struct HookSupervisorUnavailable: Error {
    let reason: String
}
