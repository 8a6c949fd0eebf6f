import ChatFlow
import Glibc
import Logging
import Synchronization

/// Runs a transition's hooks, in order: the one path from a reconciled transition to hook runs,
/// whether its first hook starts where the change was read (`startFirst`) or on a worker (`run`).
/// Keeps the hooks in flight so that shutdown can end them through the supervisor.
final class HookDispatcher: Sendable {
    struct Settings: Sendable {
        var root: String
        var hooksDirectory: String
        var timeout: Double
        var killGrace: Double
        var outputLimit: Int
        var retry: RetryPolicy.Defaults = .init()
    }

    private let settings: Settings
    private let recorder: RunRecorder
    private let logger: Logger
    private let running = Mutex<[ObjectIdentifier: HookRunner.Launch]>([:])
    private let pauses = Mutex<[ObjectIdentifier: @Sendable () -> Void]>([:])
    private let environmentFile: HookEnvironmentFile
    /// The hooks of an event, looked up now (for `@hook-failed`).
    private let lookUp: @Sendable (String) -> [Hook]

    init(settings: Settings, recorder: RunRecorder, logger: Logger, lookUp: @escaping @Sendable (String) -> [Hook] = { _ in [] }) {
        self.settings = settings
        self.recorder = recorder
        self.logger = logger
        self.lookUp = lookUp
        environmentFile = HookEnvironmentFile(path: Layout(root: settings.root).hookEnvironmentFile, logger: logger)
    }

    /// Ends and records the runs a watcher that died left running (`OrphanRuns`). Call holding
    /// the watcher lock, before any transition is run again.
    func settleOrphans() {
        OrphanRuns.settle(layout: Layout(root: settings.root), recorder: recorder, grace: settings.killGrace, logger: logger)
    }

    /// Starts the job's first hook on the calling thread (logging follows the spawn, so nothing
    /// delays it); `nil` when the job has no hook.
    func startFirst(_ job: TransitionJob, childFirst: Bool = true) -> StartedRun? {
        guard let first = job.hooks.first else { return nil }
        defer { logStart(job) }
        return start(first, of: job, childFirst: childFirst)
    }

    /// Runs the job's hooks to their end (the first may already be running), each with its
    /// retry policy, and records every attempt; `hookFinished` is told of each hook that ended
    /// for good, but the last (which completes the transition). `false` if `stopping` said to
    /// start no more part way, or a hook was interrupted by shutdown: the transition is then not done.
    func run(_ job: TransitionJob, stopping: @escaping @Sendable () -> Bool, hookFinished: (Hook) -> Void = { _ in }) async -> Bool {
        if job.hooks.isEmpty { logStart(job) }
        for (index, hook) in job.hooks.enumerated() {
            let policy = RetryPolicy(hook: hook, defaults: settings.retry)
            var retry = 0
            while true {
                let run: StartedRun
                if index == 0, retry == 0, let started = job.started {
                    run = started
                } else {
                    if stopping() { return false }
                    run = index == 0 && retry == 0 ? startFirst(job, childFirst: false)! : start(hook, of: job, childFirst: false)
                }
                let result = await finish(run, hook, job)
                if case .interrupted = result.outcome { return false }
                if retry < policy.retries, policy.retries(result.outcome), !stopping() {
                    retry += 1
                    let delay = policy.delay(beforeRetry: retry)
                    logger.warning(
                        "hook \(hook.name) for \(job.transition.instanceID) #\(job.transition.position): \(result.outcome.summary); retry \(retry) of \(policy.retries) in \(HookOutcome.seconds(delay))",
                        metadata: ["instance.id": "\(job.transition.instanceID)", "hook.name": "\(hook.name)"])
                    await pause(delay)
                    if stopping() { return false }
                    continue
                }
                if !result.outcome.succeeded { await gaveUp(hook, job, result, attempts: retry + 1, stopping: stopping) }
                break
            }
            if index < job.hooks.count - 1 { hookFinished(hook) }
        }
        return true
    }

    /// A hook that failed for good: a warning, and the `@hook-failed` hooks (a place to attach
    /// a notification), run once each with what failed in their environment.
    private func gaveUp(_ hook: Hook, _ job: TransitionJob, _ result: HookResult, attempts: Int, stopping: () -> Bool) async {
        guard !hook.name.hasPrefix("@hook-failed") else { return }
        if attempts > 1 {
            logger.warning(
                "hook \(hook.name) for \(job.transition.instanceID) #\(job.transition.position) failed after \(attempts) attempts: \(result.outcome.summary)",
                metadata: ["instance.id": "\(job.transition.instanceID)", "hook.name": "\(hook.name)"])
        }
        var notice = job
        notice.extraEnvironment = [
            "CHATFLOW_FAILED_HOOK": hook.name, "CHATFLOW_FAILED_OUTCOME": result.outcome.summary,
            "CHATFLOW_FAILED_ATTEMPTS": "\(attempts)",
        ]
        for failed in lookUp("@hook-failed") {
            if stopping() { return }
            _ = await finish(start(failed, of: notice, childFirst: false), failed, job)
        }
    }

    /// Waits for a started run to end, and records it.
    private func finish(_ run: StartedRun, _ hook: Hook, _ job: TransitionJob) async -> HookResult {
        let result = await run.launch.result()
        _ = running.withLock { $0.removeValue(forKey: ObjectIdentifier(run.launch)) }
        recorder.record(result, hook: hook, transition: job.transition, attempt: run.attempt)
        return result
    }

    /// Waits `seconds` on the supervisor's timer; `wakeAll` ends every such wait early (shutdown).
    private func pause(_ seconds: Double) async {
        guard case .success(let supervisor) = HookSupervisor.shared() else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let fired = PauseFlag()
            let key = ObjectIdentifier(fired)
            let fire: @Sendable () -> Void = {
                if fired.set() { continuation.resume() }
            }
            pauses.withLock { $0[key] = fire }
            supervisor.after(seconds) {
                _ = self.pauses.withLock { $0.removeValue(forKey: key) }
                fire()
            }
        }
    }

    /// Ends the retry waits now (shutdown: the transition runs again at the next start).
    func wakeAll() {
        let all = pauses.withLock { pauses in
            defer { pauses.removeAll() }
            return Array(pauses.values)
        }
        for fire in all { fire() }
    }

    /// Ends every hook in flight (SIGTERM to its process group, SIGKILL after `grace`, by
    /// default the kill grace); they are recorded as interrupted. Returns how many there were.
    func terminateAll(grace: Double? = nil) -> Int {
        wakeAll()
        let launches = running.withLock { Array($0.values) }
        for launch in launches { launch.terminate(grace: grace) }
        return launches.count
    }

    private func start(_ hook: Hook, of job: TransitionJob, childFirst: Bool) -> StartedRun {
        let attempt = recorder.nextAttempt(job.transition, hook: hook.name)
        let launch = HookRunner.start(invocation(for: hook, job, attempt: attempt), childFirst: childFirst)
        if let pid = launch.pid {
            running.withLock { $0[ObjectIdentifier(launch)] = launch }
            recorder.recordStart(hook: hook, transition: job.transition, attempt: attempt, pid: pid, startedAt: launch.startedAt)
        }
        return StartedRun(launch: launch, attempt: attempt)
    }

    /// Once per transition, when its hooks start (or it has none).
    private func logStart(_ job: TransitionJob) {
        for hook in job.refused {
            let name = hook.path.hasPrefix(settings.hooksDirectory + "/")
                ? String(hook.path.dropFirst(settings.hooksDirectory.count + 1)) : FileSystem.baseName(hook.path)
            recorder.recordRefused(hook, name: name, transition: job.transition)
        }
        logTransition(job.transition, hooks: job.hooks.count, logger: logger)
    }

    /// Marks a hook as one a watcher started (`OrphanRuns` finds the unrecorded ones by it).
    static let watcherPID = "\(getpid())"

    private func invocation(for hook: Hook, _ job: TransitionJob, attempt: Int) -> HookInvocation {
        let transition = job.transition
        // hooks.env first: the watcher's own variables win over it.
        var environment = environmentFile.values()
        environment.merge([
            "CHATFLOW_ROOT": settings.root, "CHATFLOW_INSTANCE_ID": transition.instanceID,
            "CHATFLOW_FEATURE_ID": transition.featureID, "CHATFLOW_WORKFLOW": transition.workflow,
            "CHATFLOW_PHASE": transition.phase, "CHATFLOW_PREVIOUS_PHASE": transition.previousPhase ?? "",
            "CHATFLOW_STATUS": transition.status, "CHATFLOW_TRANSITION": "\(transition.position)",
            "CHATFLOW_EVENT": transition.event, "CHATFLOW_HOOK": hook.name, "CHATFLOW_ATTEMPT": "\(attempt)",
            "CHATFLOW_WATCHER_PID": HookDispatcher.watcherPID,
        ]) { _, own in own }
        environment.merge(job.extraEnvironment) { _, extra in extra }
        var invocation = HookInvocation(
            executable: hook.path, environment: environment, standardInput: job.stateText,
            workingDirectory: FileSystem.parent(settings.root), timeout: hook.timeout ?? settings.timeout,
            gracePeriod: settings.killGrace, outputLimit: settings.outputLimit)
        invocation.logRoot = settings.root
        invocation.logFile = Layout(root: settings.root).runLogFile(
            transition.instanceID, transition: transition.position, hook: hook.name, attempt: attempt)
        invocation.logHeader = "== \(hook.name) for transition \(transition.position) (\(transition.event)), attempt \(attempt) ==\n"
        return invocation
    }
}

/// Set once; `set` says whether this call set it.
private final class PauseFlag: Sendable {
    private let done = Mutex(false)

    func set() -> Bool {
        done.withLock { done in
            defer { done = true }
            return !done
        }
    }
}

/// A hook started: its launch and which attempt of that hook and transition it is.
struct StartedRun: Sendable {
    let launch: HookRunner.Launch
    let attempt: Int
}

/// The console line of a transition seen (with its hooks, or none).
func logTransition(_ transition: Transition, hooks: Int, logger: Logger) {
    logger.info(
        "transition",
        metadata: [
            "instance.id": "\(transition.instanceID)", "transition": "\(transition.position)",
            "event": "\(transition.event)", "previous": "\(transition.previousPhase ?? "-")", "hooks": "\(hooks)",
        ])
}
