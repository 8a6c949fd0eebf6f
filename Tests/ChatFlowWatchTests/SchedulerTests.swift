import ChatFlow
import ChatFlowTestSupport
import Logging
import Synchronization
import Testing
@testable import ChatFlowWatch

/// What dispatches looked like from the inside: order, overlap, concurrency.
private final class DispatchLog: Sendable {
    private struct State {
        var order: [String: [Int]] = [:]
        var active: Set<String> = []
        var running = 0
        var maxRunning = 0
        var overlaps = 0
    }

    private let state = Mutex(State())

    func begin(_ job: TransitionJob) {
        state.withLock { state in
            if !state.active.insert(job.transition.instanceID).inserted { state.overlaps += 1 }
            state.order[job.transition.instanceID, default: []].append(job.transition.position)
            state.running += 1
            state.maxRunning = max(state.maxRunning, state.running)
        }
    }

    func end(_ job: TransitionJob) {
        state.withLock { state in
            state.active.remove(job.transition.instanceID)
            state.running -= 1
        }
    }

    var order: [String: [Int]] { state.withLock { $0.order } }
    var maxRunning: Int { state.withLock { $0.maxRunning } }
    var overlaps: Int { state.withLock { $0.overlaps } }
}

private func job(_ id: String, _ position: Int) -> TransitionJob {
    TransitionJob(
        transition: Transition(
            instanceID: id, featureID: "f", workflow: "w", position: position, phase: "p\(position)", previousPhase: nil,
            status: "running", event: "p\(position)"),
        stateText: [], hooks: [], refused: [], started: nil)
}

private func instance(_ number: Int) -> String {
    let hex = String(number, radix: 16)
    return "wfi_" + String(repeating: "0", count: 12 - hex.count) + hex
}

@Suite("Scheduler")
struct SchedulerTests {
    @Test("several job slots: each instance's transitions in order and never two at once; at most `jobs` run; all are recorded",
        .timeLimit(.minutes(1)))
    func orderAndSlots() async throws {
        let directory = TemporaryDirectory()
        let ledger = try Ledger(layout: Layout(root: directory.root))
        let scheduler = Scheduler(ledger: ledger, logger: Logger(label: "test"))
        let log = DispatchLog()
        let ids = (1...8).map(instance)
        // More instances queued than slots: the queue holds the rest until a worker is free.
        for id in ids {
            scheduler.schedule(id, InstanceKey(id)!, end: 6, jobs: (0..<6).map { job(id, $0) }, startHere: false) { _ in nil }
        }
        scheduler.finishQueue()
        await scheduler.runWorkers(3) { job, _ in
            log.begin(job)
            for _ in 0..<3 { await Task.yield() }
            log.end(job)
            return true
        }
        #expect(log.overlaps == 0)
        #expect(log.maxRunning <= 3)
        for id in ids {
            #expect(log.order[id] == [0, 1, 2, 3, 4, 5])
            #expect(ledger.next(id) == 6)
            #expect(scheduler.nextPosition(id, InstanceKey(id)!) == 6)
            #expect(scheduler.isIdle(id))
        }
    }

    @Test("shutdown with queued work: the running transition finishes and is recorded, the queued ones do not start",
        .timeLimit(.minutes(1)))
    func shutdownWithQueuedWork() async throws {
        let directory = TemporaryDirectory()
        let ledger = try Ledger(layout: Layout(root: directory.root))
        let scheduler = Scheduler(ledger: ledger, logger: Logger(label: "test"))
        let id = instance(1)
        let log = DispatchLog()
        let started = Mutex(false)
        let release = Mutex(false)
        scheduler.schedule(id, InstanceKey(id)!, end: 3, jobs: (0..<3).map { job(id, $0) }, startHere: false) { _ in nil }
        let workers = Task {
            await scheduler.runWorkers(2) { job, _ in
                log.begin(job)
                started.withLock { $0 = true }
                while !release.withLock({ $0 }) { await Task.yield() }
                log.end(job)
                return true
            }
        }
        #expect(await eventually(timeout: 10) { started.withLock { $0 } })
        scheduler.stop()
        #expect(scheduler.isStopping)
        release.withLock { $0 = true }
        await workers.value
        #expect(log.order[id] == [0])
        #expect(ledger.next(id) == 1, "the finished transition is recorded; the two queued ones run at the next start")
    }

    @Test("a rewind is refused while the instance has work queued, and taken once it is idle")
    func rewind() throws {
        let directory = TemporaryDirectory()
        let ledger = try Ledger(layout: Layout(root: directory.root))
        let scheduler = Scheduler(ledger: ledger, logger: Logger(label: "test"))
        let id = instance(7)
        let key = InstanceKey(id)!
        try ledger.record([(id, 5)])
        scheduler.schedule(id, key, end: 7, jobs: [job(id, 5), job(id, 6)], startHere: false) { _ in nil }
        scheduler.rewind(id, key, to: 2)
        #expect(scheduler.nextPosition(id, key) == 7, "busy: left alone")
        let idle = Scheduler(ledger: ledger, logger: Logger(label: "test"))
        idle.rewind(id, key, to: 2)
        #expect(idle.nextPosition(id, key) == 2)
        #expect(ledger.next(id) == 2)
    }
}
