import CChatFlowShims
import ChatFlow
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How `chatflow-watch` runs.
public struct WatchConfiguration: Sendable {
    /// The state directory.
    public var root: String
    /// Where hooks live (default `<root>/hooks`).
    public var hooksDirectory: String?
    /// Hooks running at once, across instances.
    public var jobs: Int
    /// Default per-hook timeout in seconds.
    public var timeout: Double = 600
    /// Between SIGTERM and SIGKILL when a hook times out.
    public var killGrace: Double = 5
    /// How long running hooks may take to finish after SIGTERM/SIGINT.
    public var shutdownGrace: Double = 30
    /// Skip transitions made while the watcher was down.
    public var fromNow = false
    /// Process the backlog, then exit.
    public var once = false
    /// Bytes of each run's output kept in its log (the tail).
    public var outputLimit = 1 << 20

    public init(root: String, jobs: Int) {
        self.root = root
        self.jobs = jobs
    }
}

/// The watcher: sees every phase change under `<root>/instances`, invalidates caches, and runs
/// the hooks of each transition once, in order per instance, recording each run.
public final class WatchService: Sendable {
    public let configuration: WatchConfiguration
    let logger: Logger
    let layout: Layout
    let engine: WorkflowEngine
    let catalog: HookLookupCache

    private let ledger = Mutex<Ledger?>(nil)
    private let journal = Mutex<AppendLog?>(nil)
    /// Next position to schedule per instance (ledger position plus what is queued).
    private let scheduled = Mutex<[InstanceKey: Int]>([:])
    /// Problems already logged per file, so a broken file is reported once per change.
    private let reported = Mutex<[String: String]>([:])
    private let mailboxes = Mailboxes()
    private let ready = WorkQueue()
    private let reconciling = Mutex(())
    private let runningHooks = Mutex<Set<Int32>>([])
    private let invalidatesGlobalEngine: Bool

    public init(configuration: WatchConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        layout = Layout(root: configuration.root)
        engine = WorkflowEngine(root: configuration.root)
        catalog = HookLookupCache(catalog: HookCatalog(directory: FileSystem.absolute(configuration.hooksDirectory ?? layout.hooksDirectory)))
        invalidatesGlobalEngine = ChatFlow.engine.root == layout.root
    }

    /// Runs until `shutdown` is requested (or, with `once`, until the backlog is done). At most
    /// `jobs` workers run hooks at once; each takes an instance and runs its transitions in order.
    /// `onReady` gets the instances directory once events are being received.
    public func run(shutdown: ShutdownSignal, onReady: @Sendable (String) -> Void) async throws(WatchError) {
        // Everything the watcher awaits runs on its own threads (see `ThreadPoolExecutor`), so
        // an idle watcher is woken by nothing but a change.
        let executor = ThreadPoolExecutor(threads: max(2, configuration.jobs))
        defer { executor.stop() }
        try await withTaskExecutorPreference(executor) { () async throws(WatchError) in
            try await self.runHere(shutdown: shutdown, onReady: onReady)
        }
    }

    /// `run`, blocking the calling thread: for a process that is only a watcher, which then
    /// never starts the thread pool of Swift concurrency (an async `main` would, and with it
    /// libdispatch's once-a-second pool monitor).
    public func runBlocking(shutdown: ShutdownSignal, onReady: @escaping @Sendable (String) -> Void) throws(WatchError) {
        let executor = ThreadPoolExecutor(threads: max(2, configuration.jobs))
        defer { executor.stop() }
        let outcome = Mutex<Result<Void, WatchError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task(executorPreference: executor) {
            do throws(WatchError) {
                try await self.runHere(shutdown: shutdown, onReady: onReady)
                outcome.withLock { $0 = .success(()) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        try outcome.withLock { $0! }.get()
    }

    private func runHere(shutdown: ShutdownSignal, onReady: @Sendable (String) -> Void) async throws(WatchError) {
        let lock: LockFile
        do {
            try engine.prepare()
            var (acquired, holder) = try LockFile.tryAcquire(layout.locksDirectory + "/watch.lock")
            // A watcher killed while spawning a hook leaves that half-started child holding a copy
            // of its descriptors (the lock's among them) until it has exec'd: if the recorded
            // holder is dead, wait for that moment to pass.
            let deadline = Timestamps.monotonic() + 2
            while acquired == nil, let pid = Int32(holder), kill(pid, 0) != 0 && errno == ESRCH, Timestamps.monotonic() < deadline {
                usleep(10_000)
                (acquired, holder) = try LockFile.tryAcquire(layout.locksDirectory + "/watch.lock")
            }
            guard let acquired else { throw WatchError.alreadyWatching(root: layout.root, pid: holder) }
            lock = acquired
            let loaded = try Ledger(layout: layout)
            ledger.withLock { $0 = loaded }
            let opened = try AppendLog(path: RunJournal(layout: layout).path)
            journal.withLock { $0 = opened }
        } catch let error as WatchError {
            throw error
        } catch {
            throw .state(ChatFlowErrorDescription(text: "\(error)"))
        }
        defer { withExtendedLifetime(lock) {} }

        // Events are reconciled on the event thread itself: one small file read, then the
        // instance's mailbox; a worker waiting on `ready` starts the hook. One thread hand-off
        // between an event and the spawn.
        var token: Int?
        if !configuration.once {
            let engine = engine
            let global = invalidatesGlobalEngine
            token = try await FileEventSource.shared.subscribe(directory: layout.instancesDirectory) { event in
                switch event {
                case .changed(let name):
                    guard let id = Layout.instanceID(fromStateFileName: name) else { return }
                    engine.invalidate(id)
                    if global { ChatFlow.engine.invalidate(id) }
                    self.reconcile([id], initial: false)
                case .rescan(let reason):
                    engine.invalidateAll()
                    if global { ChatFlow.engine.invalidateAll() }
                    self.logger.warning("rescanning instances", metadata: ["reason": "\(reason)"])
                    self.reconcile(self.scanInstances(), initial: false)
                }
            }
        }

        let start = Timestamps.monotonic()
        let count = catchUp()
        logger.info("caught up", metadata: ["instances": "\(count)", "seconds": "\(format3(Timestamps.monotonic() - start))"])
        if configuration.once {
            ready.finish()
        } else {
            onReady(layout.instancesDirectory)
        }
        await withDiscardingTaskGroup { group in
            for _ in 0..<max(1, configuration.jobs) {
                group.addTask {
                    while let id = await self.ready.next() { await self.work(id) }
                }
            }
            guard !configuration.once else { return }
            await shutdown.wait()
            if let token { await FileEventSource.shared.unsubscribe(token) }
            stopping.withLock { $0 = true }
            ready.finish()
            logger.info("stopping: letting running hooks finish", metadata: ["grace": "\(configuration.shutdownGrace)"])
            group.addTask { await self.enforceShutdownGrace() }
        }
    }

    // MARK: Detection

    /// The initial scan; its transient memory (every name and state of a large directory) is
    /// handed back to the system afterwards, so a long-running watcher stays small.
    private func catchUp() -> Int {
        let ids = scanInstances()
        reconcile(ids, initial: true)
        malloc_trim(0)
        return ids.count
    }

    /// Ids of the state files in `instances/`; other entries are logged once and skipped.
    private func scanInstances() -> [String] {
        var ids: [String] = []
        for name in (try? FileSystem.list(layout.instancesDirectory)) ?? [] {
            if let id = Layout.instanceID(fromStateFileName: name) {
                ids.append(id)
            } else if !name.hasPrefix("."), !Identifiers.isInstanceID(name) {
                reportOnce(name, "ignoring a file whose name is not wfi_<12 hex>.json", nil)
            }
        }
        return ids.sorted()
    }

    private func reportOnce(_ key: String, _ message: Logger.Message, _ detail: String?) {
        let text = detail ?? "\(message)"
        let isNew = reported.withLock { reported in
            defer { reported[key] = text }
            return reported[key] != text
        }
        if isNew { logger.warning(message, metadata: ["file": "\(key)", "reason": "\(detail ?? "")"]) }
    }

    /// Reads each instance fresh and schedules the transitions it has made since the last look.
    /// Transitions with no hook to run are recorded straight away (one fdatasync per batch).
    /// Serialised: the event thread and the initial scan never reconcile at the same time, so
    /// each reconcile sees the newest state and schedules every position once.
    private func reconcile(_ ids: [String], initial: Bool) {
        reconciling.withLock { _ in reconcileLocked(ids, initial: initial) }
    }

    private func reconcileLocked(_ ids: [String], initial: Bool) {
        var hookless: [(id: String, next: Int)] = []
        let ledger = ledger.withLock { $0! }
        for id in ids {
            guard let key = InstanceKey(id) else { continue }
            let summary: InstanceSummary
            let stateText: [UInt8]
            do {
                guard let read = try engine.freshSummaryWithText(id) else { continue }
                (summary, stateText) = read
            } catch {
                reportOnce(id, "skipping an unreadable state file", "\(error)")
                continue
            }
            reported.withLock { $0[id] = nil }
            let end = TransitionDetector.end(of: summary)
            if initial && configuration.fromNow {
                // Skip the backlog: record where each instance is now and run nothing old.
                if ledger.next(id) != end { hookless.append((id, end)) }
                continue
            }
            // `scheduled` holds a position only while hooks are queued (it runs ahead of the
            // ledger, which moves when they have finished); otherwise the ledger is the truth.
            let next = scheduled.withLock { $0[key] } ?? ledger.next(id) ?? 0
            if next > end {
                logger.warning(
                    "instance history went backwards; resuming from its current state",
                    metadata: ["instance.id": "\(id)", "recorded": "\(next)", "now": "\(end)"])
                guard mailboxes.isIdle(id) else { continue }
                scheduled.withLock { $0[key] = nil }
                do {
                    try ledger.reset(id, to: end)
                } catch {
                    logger.error("cannot record the ledger", metadata: ["error": "\(error)"])
                }
                continue
            }
            guard next < end else { continue }
            // Several phases entered since the last look: their names are in the history.
            let (transitions, usedFallback) = TransitionDetector.transitions(of: summary, from: next) { [engine] start in
                try? engine.history(of: summary, from: start)
            }
            if usedFallback {
                logger.warning(
                    "history does not explain the phase change; using current_phase",
                    metadata: ["instance.id": "\(id)", "from": "\(next)", "to": "\(end)"])
            }
            // The first transition's hooks are looked up once: they decide whether anything runs
            // and, on the fast path below, what starts.
            let firstHooks = hooks(for: transitions[0])
            let idle = mailboxes.isIdle(id)
            if idle && firstHooks.hooks.isEmpty && firstHooks.refused.isEmpty && !transitions.dropFirst().contains(where: { hasHooks($0.event) }) {
                for transition in transitions { logTransition(transition, hooks: 0) }
                hookless.append((id, end))
                continue
            }
            scheduled.withLock { $0[key] = end }
            var jobs = transitions.map { Mailboxes.Job(transition: $0, stateText: stateText) }
            // With a worker idle and nothing queued for the instance, the first hook starts
            // here and then goes to that worker to be waited for: no thread hand-off between
            // reading the change and the hook's start.
            if !initial, idle, !stopping.withLock({ $0 }), let worker = ready.takeIdleWorker() {
                let started = startFirstHook(of: jobs[0], hooks: firstHooks)
                jobs[0].started = started
                _ = mailboxes.enqueue(id, jobs)
                // The worker is not needed (and not woken) until that hook has ended.
                if let started {
                    started.first.whenFinished { worker.hand(id) }
                } else {
                    worker.hand(id)
                }
            } else if mailboxes.enqueue(id, jobs) {
                ready.push(id)
            }
        }
        do {
            try ledger.record(hookless)
        } catch {
            logger.error("cannot record the ledger", metadata: ["error": "\(error)"])
        }
    }

    private func hasHooks(_ event: String) -> Bool {
        catalog.hasCandidates(for: [event, "@any"])
    }

    /// The hooks a transition runs, in order, and the ones refused.
    private func hooks(for transition: Transition) -> (hooks: [Hook], refused: [RefusedHook]) {
        catalog.hooks(for: [transition.event, "@any"])
    }

    private func logRefused(_ refused: [RefusedHook]) {
        for hook in refused {
            logger.warning("hook refused", metadata: ["hook.path": "\(hook.path)", "reason": "\(hook.reason)"])
        }
    }

    /// Starts the first of `hooks` for `job` on the calling (event) thread; logging follows the spawn.
    private func startFirstHook(of job: Mailboxes.Job, hooks: (hooks: [Hook], refused: [RefusedHook])) -> Mailboxes.StartedHooks? {
        // Without a hook to start, the worker dispatches (and logs) the transition as usual.
        guard let first = hooks.hooks.first else { return nil }
        defer {
            logRefused(hooks.refused)
            logTransition(job.transition, hooks: hooks.hooks.count)
        }
        let launch = HookRunner.start(invocation(for: first, job.transition, stdin: job.stateText), childFirst: true)
        if let pid = launch.pid { runningHooks.withLock { _ = $0.insert(pid) } }
        return Mailboxes.StartedHooks(hooks: hooks.hooks, first: launch)
    }

    private func logTransition(_ transition: Transition, hooks: Int) {
        logger.info(
            "transition",
            metadata: [
                "instance.id": "\(transition.instanceID)", "transition": "\(transition.position)",
                "event": "\(transition.event)", "previous": "\(transition.previousPhase ?? "-")", "hooks": "\(hooks)",
            ])
    }

    // MARK: Dispatch

    private func work(_ id: String) async {
        while let job = mailboxes.next(id, stopping: stopping.withLock { $0 }) {
            let transition = job.transition
            guard await dispatch(job) else { continue }
            do {
                try ledger.withLock { $0! }.record([(id, transition.position + 1)])
                // Caught up with what was scheduled: the ledger alone holds the position again.
                if let key = InstanceKey(id) {
                    scheduled.withLock { if $0[key] == transition.position + 1 { $0[key] = nil } }
                }
            } catch {
                logger.error("cannot record the ledger", metadata: ["error": "\(error)"])
            }
        }
    }

    /// True once the event loop has ended (shutdown requested): start no new hook.
    private let stopping = Mutex(false)

    /// Runs the hooks of one transition in order (the first may already be running);
    /// `false` if shutdown stopped it part way.
    private func dispatch(_ job: Mailboxes.Job) async -> Bool {
        let transition = job.transition
        let all: [Hook]
        if let started = job.started {
            all = started.hooks
        } else {
            let found = hooks(for: transition)
            logRefused(found.refused)
            all = found.hooks
            logTransition(transition, hooks: all.count)
        }
        for (index, hook) in all.enumerated() {
            let result: HookResult
            if index == 0, let started = job.started {
                result = await started.first.result()
            } else {
                if stopping.withLock({ $0 }) { return false }
                result = await HookRunner.run(invocation(for: hook, transition, stdin: job.stateText)) { pid in
                    self.runningHooks.withLock { _ = $0.insert(pid) }
                }
            }
            runningHooks.withLock { _ = $0.remove(result.pid) }
            record(result, hook: hook, transition: transition)
        }
        return true
    }

    private func invocation(for hook: Hook, _ transition: Transition, stdin: [UInt8]) -> HookInvocation {
        let environment = [
            "CHATFLOW_ROOT": layout.root, "CHATFLOW_INSTANCE_ID": transition.instanceID,
            "CHATFLOW_FEATURE_ID": transition.featureID, "CHATFLOW_WORKFLOW": transition.workflow,
            "CHATFLOW_PHASE": transition.phase, "CHATFLOW_PREVIOUS_PHASE": transition.previousPhase ?? "",
            "CHATFLOW_STATUS": transition.status, "CHATFLOW_TRANSITION": "\(transition.position)",
            "CHATFLOW_EVENT": transition.event, "CHATFLOW_HOOK": hook.name,
        ]
        return HookInvocation(
            executable: hook.path, environment: environment, standardInput: stdin,
            workingDirectory: FileSystem.parent(layout.root), timeout: hook.timeout ?? configuration.timeout,
            gracePeriod: configuration.killGrace, outputLimit: configuration.outputLimit)
    }

    /// Writes the run's log (appended, so a re-run keeps both), journals the run, logs a line.
    private func record(_ result: HookResult, hook: Hook, transition: Transition) {
        let directory = layout.runsDirectory(transition.instanceID)
        let logPath = directory + "/\(transition.position)-" + hook.name.replacing("/", with: "_") + ".log"
        var text = "== \(hook.name) for transition \(transition.position) (\(transition.event)), \(result.outcome.summary)"
        if result.droppedBytes > 0 { text += ", first \(result.droppedBytes) bytes of output dropped" }
        text += " ==\n"
        writeLog(directory: directory, path: logPath, header: Array(text.utf8), body: result.output)
        let record = RunRecord(
            instanceID: transition.instanceID, transition: transition.position, phase: transition.phase,
            event: transition.event, hook: hook.name, startedAt: result.startedAt, endedAt: result.endedAt,
            outcome: result.outcome, logPath: logPath, droppedOutputBytes: result.droppedBytes)
        do {
            try journal.withLock { $0! }.append([record.json])
        } catch {
            logger.error("cannot append to the run journal", metadata: ["error": "\(error)"])
        }
        let level: Logger.Level = result.outcome.succeeded ? .info : .warning
        logger.log(
            level: level, "hook run",
            metadata: [
                "instance.id": "\(transition.instanceID)", "transition": "\(transition.position)",
                "hook.name": "\(hook.name)", "hook.exit": "\(result.outcome.summary)",
                "hook.duration": "\(format3(result.endedAt - result.startedAt))", "log": "\(logPath)",
            ])
    }

    private func writeLog(directory: String, path: String, header: [UInt8], body: [UInt8]) {
        if !FileSystem.isDirectory(directory) { mkdir(directory, 0o755) }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else {
            logger.error("cannot write a hook log", metadata: ["path": "\(path)", "errno": "\(errno)"])
            return
        }
        defer { close(fd) }
        for bytes in [header, body] {
            var offset = 0
            while offset < bytes.count {
                let count = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                offset += count
            }
        }
    }

    /// After the shutdown grace period, ends the hooks still running (TERM, then KILL).
    private func enforceShutdownGrace() async {
        stopping.withLock { $0 = true }
        let deadline = Timestamps.monotonic() + configuration.shutdownGrace
        while Timestamps.monotonic() < deadline {
            if runningHooks.withLock({ $0.isEmpty }) { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
        let pids = runningHooks.withLock { $0 }
        guard !pids.isEmpty else { return }
        logger.warning("grace period over: terminating running hooks", metadata: ["count": "\(pids.count)"])
        for pid in pids { kill(-pid, SIGTERM) }
        try? await Task.sleep(for: .seconds(configuration.killGrace))
        for pid in runningHooks.withLock({ $0 }) { kill(-pid, SIGKILL) }
    }
}

func format3(_ value: Double) -> String {
    let scaled = (value * 1000).rounded() / 1000
    return "\(scaled)"
}
