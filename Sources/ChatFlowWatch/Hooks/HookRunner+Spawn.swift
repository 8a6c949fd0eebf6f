import CChatFlowShims
import ChatFlow
import Glibc

/// Starting a hook: `posix_spawn` of the file itself (no shell) in a new session, stdin from a
/// memfd holding the state, stdout and stderr to one pipe the supervisor reads.
extension HookRunner {
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
        let memfd = chatflow_memfd_create("chatflow-hook-stdin")
        guard memfd >= 0 else { return failed("memfd_create: \(String(cString: strerror(errno)))") }
        let input = FileDescriptor(adopting: memfd, path: "the hook's standard input")
        // pwrite leaves the offset at 0, where the hook starts reading.
        do {
            try input.write(invocation.standardInput, at: 0)
        } catch {
            return failed("writing stdin: \(error)")
        }

        var pipeEnds: [Int32] = [0, 0]
        guard pipe2(&pipeEnds, O_CLOEXEC) == 0 else { return failed("pipe: \(String(cString: strerror(errno)))") }
        let readEnd = pipeEnds[0]
        let writeEnd = pipeEnds[1]

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input.rawValue, 0)
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

/// Calls `body` with a NULL-terminated C string array.
func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    let pointers = strings.map { strdup($0) }
    defer { pointers.forEach { free($0) } }
    return body(pointers + [nil])
}
