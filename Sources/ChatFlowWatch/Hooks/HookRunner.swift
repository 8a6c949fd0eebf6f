import CChatFlowShims
import ChatFlow
import Synchronization

import Glibc

/// What to run and how.
public struct HookInvocation: Sendable {
    public var executable: String
    /// Variables added to the watcher's own environment.
    public var environment: [String: String]
    public var standardInput: [UInt8]
    public var workingDirectory: String
    public var timeout: Double
    /// Between SIGTERM and SIGKILL when the hook times out.
    public var gracePeriod: Double
    /// Bytes of output kept (the tail).
    public var outputLimit: Int
    /// Where the output goes as it is written, and the header line it starts with (none: the
    /// output is only in the result).
    public var logFile: String?
    public var logHeader = ""
    /// The state directory `logFile` lies in: the log is opened beneath it, no link followed.
    public var logRoot: String?

    public init(
        executable: String, environment: [String: String], standardInput: [UInt8], workingDirectory: String,
        timeout: Double, gracePeriod: Double = 5, outputLimit: Int = 1 << 20
    ) {
        self.executable = executable
        self.environment = environment
        self.standardInput = standardInput
        self.workingDirectory = workingDirectory
        self.timeout = timeout
        self.gracePeriod = gracePeriod
        self.outputLimit = outputLimit
    }
}

/// How a run went: its outcome and the tail of its combined stdout and stderr.
public struct HookResult: Sendable {
    public var outcome: HookOutcome
    public var pid: Int32
    public var startedAt: Double
    public var endedAt: Double
    public var output: [UInt8]
    /// Bytes written beyond the kept tail.
    public var droppedBytes: Int
    /// Why some of the output is not in the run's log (a full disk), or `nil`.
    public var logProblem: String?
}

/// Runs hooks as direct children (no shell), each in its own session so that a timeout ends its
/// whole process group, grandchildren included.
///
/// The spawn happens on the caller's thread; from then on one supervisor thread for the whole
/// process (`HookSupervisor`) watches every running hook's output pipe, pidfd and deadline.
public enum HookRunner {
    /// Runs `invocation` to its end. `onStart` is called with the pid once the hook is running.
    public static func run(_ invocation: HookInvocation, onStart: @escaping @Sendable (Int32) -> Void = { _ in }) async
        -> HookResult
    {
        let launch = start(invocation)
        if let pid = launch.pid { onStart(pid) }
        return await launch.result()
    }

    /// Starts the hook on the caller's thread and returns at once; the supervisor takes it from
    /// there. Starting wakes no other thread, so nothing competes with the hook's own start.
    ///
    /// With `childFirst`, the caller yields the CPU once the hook has been exec'd: the spawning
    /// thread is woken at that moment and would otherwise often preempt the starting hook on
    /// its CPU for its own bookkeeping (measured: 30–70 µs of the hook's start latency).
    public static func start(_ invocation: HookInvocation, childFirst: Bool = false) -> Launch {
        let supervisor: HookSupervisor
        switch HookSupervisor.shared() {
        case .success(let shared): supervisor = shared
        case .failure(let unavailable):
            let now = Timestamps.unix()
            let launch = Launch(pid: nil)
            launch.complete(HookResult(
                outcome: .failedToLaunch(reason: unavailable.reason), pid: -1, startedAt: now, endedAt: now, output: [],
                droppedBytes: 0))
            return launch
        }
        switch spawn(invocation, childFirst: childFirst) {
        case .success(let child):
            let launch = Launch(pid: child.pid, supervisor: supervisor, startedAt: child.startedAt)
            launch.supervised(as: supervisor.supervise(child, invocation) { launch.complete($0) })
            return launch
        case .failure(let failure):
            let launch = Launch(pid: nil)
            launch.complete(failure.result)
            return launch
        }
    }

    /// A hook started by `start`: its pid and, once it has ended, its result.
    public final class Launch: Sendable {
        /// The hook's pid when it is running.
        public let pid: Int32?

        private struct State {
            var supervisorID: UInt64?
            /// Set by `terminate` before the supervisor knew the hook: the grace asked for (-1: default).
            var terminateRequested: Double?
            var result: HookResult?
            var waiters: [CheckedContinuation<HookResult, Never>] = []
            var callbacks: [@Sendable () -> Void] = []
        }

        private let state = Mutex(State())

        /// When it was spawned (Unix seconds); the same value its result carries.
        public let startedAt: Double
        private let supervisor: HookSupervisor?

        init(pid: Int32?, supervisor: HookSupervisor? = nil, startedAt: Double = 0) {
            self.pid = pid
            self.supervisor = supervisor
            self.startedAt = startedAt
        }

        fileprivate func supervised(as id: UInt64) {
            let requested = state.withLock { state -> Double? in
                state.supervisorID = id
                return state.terminateRequested
            }
            if let requested { supervisor?.terminate(id, grace: requested < 0 ? nil : requested) }
        }

        /// Ends the hook's process group (SIGTERM, then SIGKILL after `grace`, by default its
        /// invocation's grace period); its outcome is then `interrupted`. Does nothing once it
        /// has ended.
        public func terminate(grace: Double? = nil) {
            let id = state.withLock { state -> UInt64? in
                state.terminateRequested = grace ?? -1
                return state.result == nil ? state.supervisorID : nil
            }
            if let id { supervisor?.terminate(id, grace: grace) }
        }

        /// The result, once the hook has ended.
        public func result() async -> HookResult {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> HookResult? in
                    if let result = state.result { return result }
                    state.waiters.append(continuation)
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }

        /// Calls `body` once the hook has ended (at once if it has), on the supervisor's thread.
        public func whenFinished(_ body: @escaping @Sendable () -> Void) {
            let now = state.withLock { state -> Bool in
                if state.result != nil { return true }
                state.callbacks.append(body)
                return false
            }
            if now { body() }
        }

        fileprivate func complete(_ result: HookResult) {
            let (waiters, callbacks) = state.withLock { state in
                state.result = result
                defer {
                    state.waiters.removeAll()
                    state.callbacks.removeAll()
                }
                return (state.waiters, state.callbacks)
            }
            for waiter in waiters { waiter.resume(returning: result) }
            for callback in callbacks { callback() }
        }
    }

    /// A running hook: what the supervisor needs.
    struct Child: Sendable {
        let pid: pid_t
        let output: Int32
        let startedAt: Double
    }

    struct LaunchFailure: Error {
        let result: HookResult
    }
}
