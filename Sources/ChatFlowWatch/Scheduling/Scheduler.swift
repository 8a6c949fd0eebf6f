import ChatFlow
import Logging
import Synchronization

/// Per-instance order and job slots, and the bookkeeping between a transition being seen and
/// its hooks being done.
///
/// Invariants, all kept here: an instance's position in `scheduled` is set while it has jobs
/// queued or running and runs ahead of the ledger, which moves only when a transition's hooks
/// have all finished; an instance's jobs sit in its mailbox and are taken by one worker at a
/// time; at most `count` workers (`--jobs`) run at once.
final class Scheduler: Sendable {
    private let ledger: Ledger
    private let logger: Logger
    private let scheduled = Mutex<[InstanceKey: Int]>([:])
    private let mailboxes = Mailboxes()
    private let ready = WorkQueue()
    private let stopping = Mutex(false)

    init(ledger: Ledger, logger: Logger) {
        self.ledger = ledger
        self.logger = logger
    }

    /// True once shutdown was requested: start no new hook.
    var isStopping: Bool { stopping.withLock { $0 } }

    /// Where detection resumes for an instance: past what is queued, else past what the ledger
    /// says was dispatched, else 0.
    func nextPosition(_ id: String, _ key: InstanceKey) -> Int {
        scheduled.withLock { $0[key] } ?? ledger.next(id) ?? 0
    }

    /// What the ledger records for an instance (nothing queued counted).
    func recordedPosition(_ id: String) -> Int? { ledger.next(id) }

    /// Hooks of transition `position` that already finished (a stop or crash between two hooks).
    func hooksDone(_ id: String, at position: Int) -> [String] { ledger.hooksDone(id, at: position) }

    /// Whether the instance has nothing queued or running.
    func isIdle(_ id: String) -> Bool { mailboxes.isIdle(id) }

    /// The instance's history is now shorter than what was dispatched: resume from `end`.
    /// Skipped while its work is queued or running (it is tried again at its next change).
    func rewind(_ id: String, _ key: InstanceKey, to end: Int) {
        guard mailboxes.isIdle(id) else { return }
        scheduled.withLock { $0[key] = nil }
        do {
            try ledger.reset(id, to: end)
        } catch {
            logger.error("cannot record the ledger", metadata: ["error": "\(error)"])
        }
    }

    /// Queues an instance's new transitions, up to position `end`. With `startHere` and a
    /// worker idle (and nothing queued before it), `start` starts the first hook on the calling
    /// thread and that worker is handed the instance once the hook has ended: no thread
    /// hand-off between reading a change and its hook's start.
    func schedule(
        _ id: String, _ key: InstanceKey, end: Int, jobs: [TransitionJob], startHere: Bool,
        start: (TransitionJob) -> StartedRun?
    ) {
        scheduled.withLock { $0[key] = end }
        var jobs = jobs
        if startHere, !isStopping, let worker = ready.takeIdleWorker() {
            let launch = start(jobs[0])
            jobs[0].started = launch
            _ = mailboxes.enqueue(id, jobs)
            // The worker is not needed (and not woken) until that hook has ended.
            if let launch {
                launch.launch.whenFinished { worker.hand(id) }
            } else {
                worker.hand(id)
            }
        } else if mailboxes.enqueue(id, jobs) {
            ready.push(id)
        }
    }

    /// Queues one job behind the instance's other work (a rerun), leaving its position alone.
    func enqueue(_ id: String, _ job: TransitionJob) {
        if mailboxes.enqueue(id, [job]) { ready.push(id) }
    }

    /// Records positions reached with nothing to run (one fdatasync for the batch).
    func recordWithoutHooks(_ updates: [(id: String, next: Int)]) {
        do {
            try ledger.record(updates)
        } catch {
            logger.error("cannot record the ledger", metadata: ["error": "\(error)"])
        }
    }

    /// Runs `count` workers until the queue is finished and drained. Each takes an instance and
    /// runs its jobs in order through `dispatch`, recording each in the ledger once done.
    func runWorkers(_ count: Int, dispatch: @escaping @Sendable (TransitionJob, _ hookFinished: (Hook) -> Void) async -> Bool) async {
        await withDiscardingTaskGroup { group in
            for _ in 0..<max(1, count) {
                group.addTask {
                    while let id = await self.ready.next() { await self.work(id, dispatch) }
                }
            }
        }
    }

    private func work(_ id: String, _ dispatch: @Sendable (TransitionJob, _ hookFinished: (Hook) -> Void) async -> Bool) async {
        while let job = mailboxes.next(id, stopping: isStopping) {
            let position = job.transition.position
            let completed = await dispatch(job) { hook in
                do {
                    try ledger.recordHook(id, position: position, hook: hook.name)
                } catch {
                    logger.error("cannot record the ledger", metadata: ["error": "\(error)"])
                }
            }
            // A rerun moves no position; its request goes once its hooks have run.
            if let rerun = job.rerun {
                if completed { rerun.remove() }
                continue
            }
            guard completed else { continue }
            let next = job.transition.position + 1
            do {
                try ledger.record([(id, next)])
                // Caught up with what was scheduled: the ledger alone holds the position again.
                if let key = InstanceKey(id) {
                    scheduled.withLock { if $0[key] == next { $0[key] = nil } }
                }
            } catch {
                logger.error("cannot record the ledger", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The backlog is all there is (`--once`): workers end once it is done.
    func finishQueue() { ready.finish() }

    /// Shutdown: no new hook starts; workers end once the hooks already running have ended.
    func stop() {
        stopping.withLock { $0 = true }
        ready.finish()
    }
}
