import CChatFlowShims
import ChatFlow
import Dispatch
import Glibc
import Logging
import Synchronization

/// The watcher: sees every phase change of its engine's state directory, invalidates the
/// engine's cache, and runs the hooks of each transition once, in order per instance, recording
/// each run.
///
/// This type only wires the parts together; each lives in its own room:
/// `InstanceChangeSource` (events) → `Reconciler` (detection) → `Scheduler` (per-instance order,
/// job slots) → `HookDispatcher` and `HookSupervisor` (hooks) → `RunRecorder` and `Ledger`
/// (recording). docs/DESIGN.md follows a change through them.
public final class WatchService: Sendable {
    public let configuration: WatchConfiguration
    public let engine: WorkflowEngine
    let logger: Logger
    let changes: any InstanceChangeSource

    /// A watcher of `engine`'s state directory. `changes` defaults to inotify on its `instances/`.
    public init(
        engine: WorkflowEngine, configuration: WatchConfiguration, logger: Logger,
        changes: (any InstanceChangeSource)? = nil
    ) {
        self.engine = engine
        self.configuration = configuration
        self.logger = logger
        self.changes = changes ?? FileChangeSource(layout: engine.layout)
    }

    /// Runs until `shutdown` is requested (or, with `once`, until the backlog is done).
    /// `onReady` gets the instances directory once changes are being received.
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

    private enum Ended { case workers, grace, immediate }

    private func runHere(shutdown: ShutdownSignal, onReady: @Sendable (String) -> Void) async throws(WatchError) {
        let layout = engine.layout
        let hooksDirectory = FileSystem.absolute(configuration.hooksDirectory ?? layout.hooksDirectory)
        let lock: LockFile
        let scheduler: Scheduler
        let dispatcher: HookDispatcher
        let catalog = HookLookupCache(catalog: HookCatalog(directory: hooksDirectory))
        do {
            try engine.prepare()
            lock = try WatcherLock.acquire(layout)
            try FileSystem.createDirectory(layout.rerunsDirectory)
            scheduler = Scheduler(ledger: try Ledger(layout: layout), logger: logger)
            dispatcher = try HookDispatcher(
                layout: layout, hooksDirectory: hooksDirectory, configuration: configuration, catalog: catalog, logger: logger)
        } catch let error as WatchError {
            throw error
        } catch {
            throw .state(ChatFlowErrorDescription(text: "\(error)"))
        }
        defer { withExtendedLifetime(lock) {} }
        // Before the catch-up runs their transitions again: never two runs of one at once.
        dispatcher.settleOrphans()
        let reconciler = Reconciler(
            engine: engine, catalog: catalog,
            scheduler: scheduler, dispatcher: dispatcher, logger: logger, fromNow: configuration.fromNow)

        // Changes are reconciled on the source's thread itself: one small file read, then the
        // instance's mailbox (or, with a worker idle, the hook's spawn right there).
        var token: Int?
        var rerunToken: Int?
        if !configuration.once {
            // `chatflow rerun` drops a request file here.
            rerunToken = try await FileEventSource.shared.subscribe(directory: layout.rerunsDirectory) { event in
                if case .changed(let name) = event, name.hasPrefix(".") || !name.hasSuffix(".json") { return }
                reconciler.takeReruns()
            }
            let engine = engine
            let logger = logger
            token = try await changes.subscribe { change in
                switch change {
                case .instance(let id):
                    engine.invalidate(id)
                    reconciler.reconcile([id], initial: false)
                case .rescanAll(let reason):
                    engine.invalidateAll()
                    logger.warning("rescanning instances", metadata: ["reason": "\(reason)"])
                    reconciler.reconcile(reconciler.scanInstances(), initial: false)
                }
            }
        }

        // The catch-up: its transient memory (every name and state of a large directory) is
        // handed back to the system afterwards, so a long-running watcher stays small.
        let start = Timestamps.monotonic()
        let ids = reconciler.scanInstances()
        reconciler.catchUp(ids)
        malloc_trim(0)
        logger.info("caught up", metadata: ["instances": "\(ids.count)", "seconds": "\(format3(Timestamps.monotonic() - start))"])
        reconciler.takeReruns()

        if configuration.once {
            scheduler.finishQueue()
        } else {
            onReady(layout.instancesDirectory)
        }
        let workers = configuration.jobs
        await withTaskGroup(of: Ended.self) { group in
            group.addTask {
                await scheduler.runWorkers(workers) { job, hookFinished in
                    await dispatcher.run(job, stopping: { scheduler.isStopping }, hookFinished: hookFinished)
                }
                return .workers
            }
            if !configuration.once {
                await shutdown.wait()
                if let token { await changes.unsubscribe(token) }
                if let rerunToken { await FileEventSource.shared.unsubscribe(rerunToken) }
                scheduler.stop()
                dispatcher.wakeAll()
                logger.info("stopping: letting running hooks finish", metadata: ["grace": "\(configuration.shutdownGrace)"])
                let grace = configuration.shutdownGrace
                group.addTask {
                    try? await Task.sleep(for: .seconds(grace))
                    return .grace
                }
                group.addTask {
                    await shutdown.waitForImmediate()
                    return .immediate
                }
            }
            // Ends when the workers have: at once if no hook is running, else when the hooks
            // have finished or, after the grace period or a second signal, been ended. Ended
            // hooks are recorded as interrupted and run again at the next start.
            while let ended = await group.next() {
                switch ended {
                case .workers:
                    group.cancelAll()
                case .grace:
                    let count = dispatcher.terminateAll()
                    if count > 0 {
                        logger.warning(
                            "grace period over: ending running hooks; they run again at the next start",
                            metadata: ["count": "\(count)"])
                    }
                case .immediate:
                    let count = dispatcher.terminateAll(grace: 1)
                    logger.warning(
                        "second stop request: ending running hooks now (TERM, then KILL after 1 s); they run again at the next start",
                        metadata: ["count": "\(count)"])
                }
                if ended == .workers { break }
            }
        }
    }
}
