import CChatFlowShims
import ChatFlow

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
/// Each run uses one thread that `poll`s the output pipe and a pidfd of the child: exit, output
/// and the deadline are all seen without SIGCHLD handlers or polling wake-ups.
public enum HookRunner {
    /// Runs `invocation` to its end. `onStart` is called with the pid once the hook is running.
    ///
    /// The spawn happens on the caller's thread (it takes ~0.2 ms and never waits on the hook),
    /// so a hook starts without waiting for a thread to be created; only the wait moves to one.
    public static func run(_ invocation: HookInvocation, onStart: @escaping @Sendable (Int32) -> Void = { _ in }) async
        -> HookResult
    {
        let child: Child
        switch spawn(invocation) {
        case .success(let started): child = started
        case .failure(let failure): return failure.result
        }
        onStart(child.pid)
        return await onThread { wait(for: child, invocation) }
    }

    /// A running hook: what the wait needs.
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

    static func spawn(_ invocation: HookInvocation) -> Result<Child, LaunchFailure> {
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
        var written = 0
        while written < invocation.standardInput.count {
            let count = invocation.standardInput.withUnsafeBytes { write(input, $0.baseAddress! + written, $0.count - written) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return failed("writing stdin: \(String(cString: strerror(errno)))") }
            written += count
        }
        lseek(input, 0, SEEK_SET)

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
        let own = invocation.environment.map { strdup("\($0.key)=\($0.value)") }
        defer { own.forEach { free($0) } }
        let inherited = inheritedEnvironment.entries.filter { invocation.environment[$0.key] == nil }.map(\.pointer)
        var pid: pid_t = 0
        let spawnResult = withCStrings([invocation.executable]) { argv in
            posix_spawn(&pid, invocation.executable, &actions, &attributes, argv, inherited + own + [nil])
        }
        close(writeEnd)
        guard spawnResult == 0 else {
            close(readEnd)
            return failed(String(cString: strerror(spawnResult)))
        }
        return .success(Child(pid: pid, output: readEnd, startedAt: startedAt))
    }

    /// Waits for the hook's end, reading its output and enforcing the timeout.
    static func wait(for child: Child, _ invocation: HookInvocation) -> HookResult {
        let pid = child.pid
        let readEnd = child.output
        defer { close(readEnd) }
        let pidfd = chatflow_pidfd_open(pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        var tail = OutputTail(limit: invocation.outputLimit)
        let deadline = Timestamps.monotonic() + invocation.timeout
        var killDeadline: Double?
        var exitStatus: Int32?
        var timedOut = false
        var pipeOpen = true
        var buffer = [UInt8](repeating: 0, count: 65536)

        // Until the child exits: read output, watch the deadline.
        while exitStatus == nil {
            let now = Timestamps.monotonic()
            if !timedOut && now >= deadline {
                timedOut = true
                kill(-pid, SIGTERM)
                killDeadline = now + invocation.gracePeriod
            }
            if let limit = killDeadline, now >= limit {
                kill(-pid, SIGKILL)
                killDeadline = nil
            }
            let wakeAt = killDeadline ?? (timedOut ? now + 3600 : deadline)
            var fds = [pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)]
            if pipeOpen { fds.append(pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)) }
            let milliseconds = Int32(max(0, min(3_600_000, (wakeAt - now) * 1000)).rounded(.up))
            let ready = poll(&fds, nfds_t(fds.count), pidfd >= 0 ? milliseconds : min(milliseconds, 50))
            if ready < 0 && errno != EINTR { break }
            if pipeOpen && fds.count > 1 && fds[1].revents != 0 {
                pipeOpen = drain(readEnd, into: &tail, buffer: &buffer)
            }
            exitStatus = reap(pid)
        }
        // The hook has exited. Whatever it left in its process group goes too, and output is
        // read until EOF or briefly (a daemon that escaped the group may hold the pipe open).
        kill(-pid, SIGKILL)
        let drainUntil = Timestamps.monotonic() + 0.2
        while pipeOpen {
            let remaining = drainUntil - Timestamps.monotonic()
            guard remaining > 0 else { break }
            var fds = [pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 1, Int32(remaining * 1000) + 1) <= 0 { break }
            pipeOpen = drain(readEnd, into: &tail, buffer: &buffer)
        }

        let outcome: HookOutcome
        let status = exitStatus ?? 0
        if timedOut {
            outcome = .timedOut(after: invocation.timeout)
        } else if status & 0x7F == 0 {
            outcome = .exited(code: (status >> 8) & 0xFF)
        } else {
            outcome = .signaled(signal: status & 0x7F)
        }
        return HookResult(
            outcome: outcome, pid: pid, startedAt: child.startedAt, endedAt: Timestamps.unix(), output: tail.bytes,
            droppedBytes: tail.dropped)
    }

    /// Reads what is available; `false` at EOF.
    private static func drain(_ fd: Int32, into tail: inout OutputTail, buffer: inout [UInt8]) -> Bool {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count > 0 {
            tail.append(buffer[0..<count])
            return true
        }
        return count < 0 && (errno == EINTR || errno == EAGAIN)
    }

    /// The wait status if `pid` has exited (and reaps it), else `nil`.
    private static func reap(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return status }
            if result < 0 && errno == EINTR { continue }
            if result < 0 { return 0 }
            return nil
        }
    }
}

/// Keeps the last `limit` bytes of a stream and counts the rest.
struct OutputTail {
    let limit: Int
    private var ring: [UInt8] = []
    private var start = 0
    private(set) var dropped = 0

    init(limit: Int) { self.limit = max(1, limit) }

    mutating func append(_ chunk: ArraySlice<UInt8>) {
        for byte in chunk {
            if ring.count < limit {
                ring.append(byte)
            } else {
                ring[start] = byte
                start = (start + 1) % limit
                dropped += 1
            }
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
