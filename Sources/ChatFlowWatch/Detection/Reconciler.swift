import ChatFlow
import Logging
import Synchronization

/// Summaries read ahead by several threads, each slot written once and taken once.
private final class ReadAhead: @unchecked Sendable {
    private var slots: [Result<(summary: InstanceSummary, text: [UInt8])?, ChatFlowError>?]
    private let lock = Mutex(())

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func store(_ index: Int, _ result: Result<(summary: InstanceSummary, text: [UInt8])?, ChatFlowError>) {
        lock.withLock { _ in slots[index] = result }
    }

    func take(_ index: Int) -> Result<(summary: InstanceSummary, text: [UInt8])?, ChatFlowError> {
        lock.withLock { _ in
            defer { slots[index] = nil }
            return slots[index] ?? .success(nil)
        }
    }
}

/// Turns "this instance may have changed" into scheduled transitions: reads the instance fresh,
/// finds every transition since the position last scheduled or dispatched, looks up their hooks
/// and hands them to the scheduler. Transitions with nothing to run are recorded at once.
final class Reconciler: Sendable {
    private let engine: WorkflowEngine
    private let catalog: HookLookupCache
    private let scheduler: Scheduler
    private let dispatcher: HookDispatcher
    private let logger: Logger
    private let fromNow: Bool
    /// Problems already logged per file, so a broken file is reported once per change.
    private let reported = Mutex<[String: String]>([:])
    private let serial = Mutex(())
    /// Rerun requests already queued (by file), so each is taken once.
    private let takenReruns = Mutex<Set<String>>([])

    init(
        engine: WorkflowEngine, catalog: HookLookupCache, scheduler: Scheduler, dispatcher: HookDispatcher,
        logger: Logger, fromNow: Bool
    ) {
        self.engine = engine
        self.catalog = catalog
        self.scheduler = scheduler
        self.dispatcher = dispatcher
        self.logger = logger
        self.fromNow = fromNow
    }

    /// Ids of the state files in `instances/`; other entries are logged once and skipped.
    func scanInstances() -> [String] {
        var ids: [String] = []
        for name in (try? FileSystem.list(engine.layout.instancesDirectory)) ?? [] {
            if let id = Layout.instanceID(fromStateFileName: name) {
                ids.append(id)
            } else if !name.hasPrefix("."), !Identifiers.isInstanceID(name) {
                reportOnce(name, "ignoring a file whose name is not wfi_<12 hex>.json", nil)
            }
        }
        return ids.sorted()
    }

    /// Reconciles `ids`; `initial` for the catch-up at start. Serialised: the event thread and
    /// the catch-up never reconcile at the same time, so each sees the newest state and
    /// schedules every position once.
    func reconcile(_ ids: [String], initial: Bool) {
        serial.withLock { _ in reconcileSerially(ids, initial: initial) }
    }

    /// The catch-up: the states are read ahead in batches on several threads (reading is most of
    /// the work, and a cold page cache makes it wait for the disk), then reconciled in order.
    /// Batches keep the memory bounded: a batch's state bytes go once it is reconciled.
    func catchUp(_ ids: [String], threads: Int = 4, batch: Int = 2048) {
        var start = 0
        while start < ids.count {
            let slice = Array(ids[start..<min(ids.count, start + batch)])
            let results = ReadAhead(count: slice.count)
            parallelFor(slice.count, threads: threads) { [engine] index in
                results.store(index, Result { () throws(ChatFlowError) in try engine.freshSummaryWithText(slice[index]) })
            }
            serial.withLock { _ in reconcileSerially(slice, initial: true) { index in results.take(index) } }
            start += batch
        }
    }

    private func reconcileSerially(
        _ ids: [String], initial: Bool,
        read: ((Int) -> Result<(summary: InstanceSummary, text: [UInt8])?, ChatFlowError>)? = nil
    ) {
        var hookless: [(id: String, next: Int)] = []
        var migrating: [String] = []
        // Rewritten in this format once scheduled, so that another write in the old layout is
        // read against a current open entry (through the engine, under the instance lock).
        defer {
            for id in migrating {
                do {
                    try engine.migrate(id)
                } catch {
                    logger.warning("cannot migrate a state file", metadata: ["instance.id": "\(id)", "error": "\(error)"])
                }
            }
        }
        for (index, id) in ids.enumerated() {
            guard let key = InstanceKey(id) else { continue }
            let summary: InstanceSummary
            let stateText: [UInt8]
            do {
                let found = try read.map { try $0(index).get() } ?? engine.freshSummaryWithText(id, waitingForWriter: false)
                guard let found else { continue }
                (summary, stateText) = found
            } catch {
                reportOnce(id, "skipping an unreadable state file", "\(error)")
                continue
            }
            reported.withLock { $0[id] = nil }
            if let foreign = summary.foreignLayout {
                logger.warning(
                    "state written in another writer's layout; running its transitions from current_phase and migrating it",
                    metadata: ["instance.id": "\(id)", "layout": "\(foreign)", "phase": "\(summary.currentPhase)"])
                migrating.append(id)
            }
            let end = TransitionDetector.end(of: summary)
            if initial && fromNow {
                // Skip the backlog: record where each instance is now and run nothing old.
                if scheduler.recordedPosition(id) != end { hookless.append((id, end)) }
                continue
            }
            let next = scheduler.nextPosition(id, key)
            if next > end {
                logger.warning(
                    "instance history went backwards; resuming from its current state",
                    metadata: ["instance.id": "\(id)", "recorded": "\(next)", "now": "\(end)"])
                scheduler.rewind(id, key, to: end)
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
            let recorded = scheduler.recordedPosition(id)
            let jobs = transitions.map { transition in
                let found = catalog.hooks(for: [transition.event, "@any"])
                var hooks = found.hooks
                // A stop or crash between two hooks of this transition: the finished ones are done.
                if transition.position == recorded {
                    for name in scheduler.hooksDone(id, at: transition.position) {
                        if let index = hooks.firstIndex(where: { $0.name == name }) { hooks.remove(at: index) }
                    }
                }
                return TransitionJob(
                    transition: transition, stateText: stateText, hooks: hooks, refused: found.refused, started: nil)
            }
            let idle = scheduler.isIdle(id)
            if idle && jobs.allSatisfy({ $0.hooks.isEmpty && $0.refused.isEmpty }) {
                for transition in transitions { logTransition(transition, hooks: 0, logger: logger) }
                hookless.append((id, end))
                continue
            }
            scheduler.schedule(id, key, end: end, jobs: jobs, startHere: !initial && idle) { dispatcher.startFirst($0) }
        }
        scheduler.recordWithoutHooks(hookless)
    }

    /// Queues every waiting `chatflow rerun` request not yet taken, in the order they were made.
    func takeReruns() {
        for request in RerunRequest.pending(engine.layout) where takenReruns.withLock({ $0.insert(request.path).inserted }) {
            serial.withLock { _ in rerun(request) }
        }
    }

    /// A rerun: the transition's hooks (or the one named), looked up now, queued behind the
    /// instance's other work; the request goes once they have run.
    private func rerun(_ request: RerunRequest) {
        let id = request.instanceID
        func refuse(_ reason: String) {
            logger.warning("cannot rerun: \(reason)", metadata: ["instance.id": "\(id)", "request": "\(request.path)"])
            request.remove()
        }
        guard let (summary, stateText) = (try? engine.freshSummaryWithText(id)) ?? nil else { return refuse("no such instance") }
        let end = TransitionDetector.end(of: summary)
        let position = request.transition ?? end - 1
        guard position >= 0, position < end else { return refuse("it has transitions 0 to \(end - 1), not \(position)") }
        let (transitions, _) = TransitionDetector.transitions(of: summary, from: position) { [engine] start in
            try? engine.history(of: summary, from: start)
        }
        guard let transition = transitions.first(where: { $0.position == position }) else {
            return refuse("its history does not say which phase transition \(position) entered")
        }
        let found = catalog.hooks(for: [transition.event, "@any"])
        var hooks = found.hooks
        var refused = found.refused
        if let name = request.hook {
            hooks = hooks.filter { $0.name == name }
            refused = refused.filter { $0.path.hasSuffix("/" + name) }
            guard !hooks.isEmpty || !refused.isEmpty else { return refuse("transition \(position) (\(transition.event)) has no hook \(name)") }
        }
        logger.info(
            "rerun of \(id) #\(position) (\(transition.event)): \(hooks.map(\.name).joined(separator: ", "))",
            metadata: ["instance.id": "\(id)", "transition": "\(position)"])
        scheduler.enqueue(
            id,
            TransitionJob(transition: transition, stateText: stateText, hooks: hooks, refused: refused, started: nil, rerun: request))
    }

    private func reportOnce(_ key: String, _ message: Logger.Message, _ detail: String?) {
        let text = detail ?? "\(message)"
        let isNew = reported.withLock { reported in
            defer { reported[key] = text }
            return reported[key] != text
        }
        if isNew { logger.warning(message, metadata: ["file": "\(key)", "reason": "\(detail ?? "")"]) }
    }
}
