import ChatFlow
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
    }

    private let settings: Settings
    private let recorder: RunRecorder
    private let logger: Logger
    private let running = Mutex<[ObjectIdentifier: HookRunner.Launch]>([:])
    private let environmentFile: HookEnvironmentFile

    init(settings: Settings, recorder: RunRecorder, logger: Logger) {
        self.settings = settings
        self.recorder = recorder
        self.logger = logger
        environmentFile = HookEnvironmentFile(path: Layout(root: settings.root).hookEnvironmentFile, logger: logger)
    }

    /// Starts the job's first hook on the calling thread (logging follows the spawn, so nothing
    /// delays it); `nil` when the job has no hook.
    func startFirst(_ job: TransitionJob, childFirst: Bool = true) -> HookRunner.Launch? {
        guard let first = job.hooks.first else { return nil }
        defer { logStart(job) }
        return start(first, of: job, childFirst: childFirst)
    }

    /// Runs the job's hooks to their end (the first may already be running) and records each;
    /// `hookFinished` is told of each that ended on its own, but the last (which completes the
    /// transition). `false` if `stopping` said to start no more part way, or a hook was
    /// interrupted by shutdown: the transition is then not done.
    func run(_ job: TransitionJob, stopping: () -> Bool, hookFinished: (Hook) -> Void = { _ in }) async -> Bool {
        if job.hooks.isEmpty { logStart(job) }
        for (index, hook) in job.hooks.enumerated() {
            let launch: HookRunner.Launch
            if index == 0, let started = job.started {
                launch = started
            } else {
                if stopping() { return false }
                launch = index == 0 ? startFirst(job, childFirst: false)! : start(hook, of: job, childFirst: false)
            }
            let result = await launch.result()
            _ = running.withLock { $0.removeValue(forKey: ObjectIdentifier(launch)) }
            recorder.record(result, hook: hook, transition: job.transition)
            if case .interrupted = result.outcome { return false }
            if index < job.hooks.count - 1 { hookFinished(hook) }
        }
        return true
    }

    /// Ends every hook in flight (SIGTERM to its process group, SIGKILL after `grace`, by
    /// default the kill grace); they are recorded as interrupted. Returns how many there were.
    func terminateAll(grace: Double? = nil) -> Int {
        let launches = running.withLock { Array($0.values) }
        for launch in launches { launch.terminate(grace: grace) }
        return launches.count
    }

    private func start(_ hook: Hook, of job: TransitionJob, childFirst: Bool) -> HookRunner.Launch {
        let launch = HookRunner.start(invocation(for: hook, job), childFirst: childFirst)
        if launch.pid != nil { running.withLock { $0[ObjectIdentifier(launch)] = launch } }
        return launch
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

    private func invocation(for hook: Hook, _ job: TransitionJob) -> HookInvocation {
        let transition = job.transition
        // hooks.env first: the watcher's own variables win over it.
        var environment = environmentFile.values()
        environment.merge([
            "CHATFLOW_ROOT": settings.root, "CHATFLOW_INSTANCE_ID": transition.instanceID,
            "CHATFLOW_FEATURE_ID": transition.featureID, "CHATFLOW_WORKFLOW": transition.workflow,
            "CHATFLOW_PHASE": transition.phase, "CHATFLOW_PREVIOUS_PHASE": transition.previousPhase ?? "",
            "CHATFLOW_STATUS": transition.status, "CHATFLOW_TRANSITION": "\(transition.position)",
            "CHATFLOW_EVENT": transition.event, "CHATFLOW_HOOK": hook.name,
        ]) { _, own in own }
        return HookInvocation(
            executable: hook.path, environment: environment, standardInput: job.stateText,
            workingDirectory: FileSystem.parent(settings.root), timeout: hook.timeout ?? settings.timeout,
            gracePeriod: settings.killGrace, outputLimit: settings.outputLimit)
    }
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
