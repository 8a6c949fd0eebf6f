import CChatFlowShims
import ChatFlow
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

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
            let launch = Launch(pid: child.pid)
            supervisor.supervise(child, invocation) { launch.complete($0) }
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
            var result: HookResult?
            var waiters: [CheckedContinuation<HookResult, Never>] = []
            var callbacks: [@Sendable () -> Void] = []
        }

        private let state = Mutex(State())

        init(pid: Int32?) { self.pid = pid }

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

    /// The watcher's environment, copied once into C strings that live for the process:
    /// hooks get it plus their own variables.
    private static let inheritedEnvironment = InheritedEnvironment()

    /// Immutable after initialisation and never freed, hence safe to share across threads.
    private struct InheritedEnvironment: @unchecked Sendable {
        let entries: [(key: String, pointer: UnsafeMutablePointer<CChar>?)]

        init() {
            var result: [(String, UnsafeMutablePointer<CChar>?)] = []
            var pointer = environ
            while let entry = pointer.pointee {
                let text = String(cString: entry)
                if let equals = text.firstIndex(of: "=") { result.append((String(text[..<equals]), strdup(entry))) }
                pointer += 1
            }
            entries = result
        }
    }

    static func spawn(_ invocation: HookInvocation, childFirst: Bool = false) -> Result<Child, LaunchFailure> {
        let startedAt = Timestamps.unix()
        func failed(_ reason: String) -> Result<Child, LaunchFailure> {
            .failure(LaunchFailure(result: HookResult(
                outcome: .failedToLaunch(reason: reason), pid: -1, startedAt: startedAt, endedAt: Timestamps.unix(),
                output: [], droppedBytes: 0)))
        }

        // stdin: an in-memory file, so a hook that never reads it cannot block us.
        let input = chatflow_memfd_create("chatflow-hook-stdin")
        guard input >= 0 else { return failed("memfd_create: \(String(cString: strerror(errno)))") }
        defer { close(input) }
        // pwrite leaves the offset at 0, where the hook starts reading.
        var written = 0
        while written < invocation.standardInput.count {
            let count = invocation.standardInput.withUnsafeBytes {
                pwrite(input, $0.baseAddress! + written, $0.count - written, off_t(written))
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return failed("writing stdin: \(String(cString: strerror(errno)))") }
            written += count
        }

        var pipeEnds: [Int32] = [0, 0]
        guard pipe2(&pipeEnds, O_CLOEXEC) == 0 else { return failed("pipe: \(String(cString: strerror(errno)))") }
        let readEnd = pipeEnds[0]
        let writeEnd = pipeEnds[1]

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        posix_spawn_file_actions_addclosefrom_np(&actions, 3)
        posix_spawn_file_actions_addchdir_np(&actions, invocation.workingDirectory)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(
            &attributes, chatflow_spawn_setsid_flag() | Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        // The inherited part is built once; only the hook's own variables are copied per run.
        // PWD follows the working directory (an inherited PWD would name the watcher's).
        var variables = invocation.environment
        if variables["PWD"] == nil { variables["PWD"] = invocation.workingDirectory }
        let own = variables.map { strdup("\($0.key)=\($0.value)") }
        defer { own.forEach { free($0) } }
        let inherited = inheritedEnvironment.entries.filter { variables[$0.key] == nil }.map(\.pointer)
        var pid: pid_t = 0
        let environment = inherited + own + [nil]
        var spawnResult: Int32 = 0
        // ETXTBSY: the hook file is open for writing somewhere, often only for a moment (an
        // editor saving it, or another process's half-started child holding a copy of a
        // descriptor). A few short retries, then it counts as a failed launch.
        for pause in [0, 1_000, 4_000, 16_000] as [useconds_t] {
            if pause > 0 { usleep(pause) }
            spawnResult = withCStrings([invocation.executable]) { argv in
                posix_spawn(&pid, invocation.executable, &actions, &attributes, argv, environment)
            }
            if spawnResult != ETXTBSY { break }
        }
        if childFirst && spawnResult == 0 { sched_yield() }
        close(writeEnd)
        guard spawnResult == 0 else {
            close(readEnd)
            return failed(String(cString: strerror(spawnResult)))
        }
        return .success(Child(pid: pid, output: readEnd, startedAt: startedAt))
    }
}

/// Keeps the last `limit` bytes of a stream and counts the rest.
struct OutputTail {
    let limit: Int
    private var ring: [UInt8] = []
    /// Where the oldest byte is once the ring is full.
    private var start = 0
    private(set) var dropped = 0

    init(limit: Int) { self.limit = max(1, limit) }

    mutating func append(_ chunk: ArraySlice<UInt8>) {
        var chunk = chunk
        if ring.count < limit {
            let room = min(limit - ring.count, chunk.count)
            ring.append(contentsOf: chunk.prefix(room))
            chunk = chunk.dropFirst(room)
        }
        guard !chunk.isEmpty else { return }
        dropped += chunk.count
        // Only the last `limit` bytes of the chunk can survive.
        if chunk.count > limit { chunk = chunk.suffix(limit) }
        for byte in chunk {
            ring[start] = byte
            start = start + 1 == limit ? 0 : start + 1
        }
    }

    var bytes: [UInt8] { Array(ring[start...] + ring[..<start]) }
}

/// Calls `body` with a NULL-terminated C string array.
func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    let pointers = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    return body(pointers + [nil])
}
