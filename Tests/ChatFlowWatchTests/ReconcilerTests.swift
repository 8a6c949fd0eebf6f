import ChatFlow
import ChatFlowTestSupport
import Logging
import Testing
@testable import ChatFlowWatch

import Glibc

/// The watcher's parts that decide what runs, on a real state directory: `Reconciler` (what a
/// change means) and `RetryPolicy` (what is tried again, and when).
@Suite("Reconciler and retry policy")
struct ReconcilerTests {
    /// A reconciler wired as the watcher wires it, on a fresh state directory with a hooks folder.
    private struct Rig {
        let directory = TemporaryDirectory()
        let engine: WorkflowEngine
        let scheduler: Scheduler
        let reconciler: Reconciler
        var hooks: String { engine.layout.hooksDirectory }

        init(fromNow: Bool = false, hooks: [String: String] = [:]) throws {
            engine = WorkflowEngine(root: directory.root)
            try engine.prepare()
            let layout = engine.layout
            mkdir(layout.hooksDirectory, 0o755)
            chmod(layout.root, 0o755)
            for (name, body) in hooks {
                let path = layout.hooksDirectory + "/" + name
                try FileDescriptor(opening: path, flags: O_WRONLY | O_CREAT, mode: 0o755).write(Array(("#!/bin/sh\n" + body + "\n").utf8), at: 0)
                chmod(path, 0o755)
            }
            let logger = Logger(label: "test")
            let catalog = HookLookupCache(catalog: HookCatalog(directory: layout.hooksDirectory))
            scheduler = Scheduler(ledger: try Ledger(layout: layout), logger: logger)
            let dispatcher = try HookDispatcher(
                layout: layout, hooksDirectory: layout.hooksDirectory, configuration: WatchConfiguration(jobs: 1), catalog: catalog, logger: logger)
            reconciler = Reconciler(engine: engine, catalog: catalog, scheduler: scheduler, dispatcher: dispatcher, logger: logger, fromNow: fromNow)
        }

        /// An instance started and triggered `triggers` times, then reconciled at start.
        func instance(triggers: Int) throws -> String {
            let id = try engine.start(schema: fourPhasesSchema, featureID: "f")
            for _ in 0..<triggers { _ = try engine.trigger(id) }
            reconciler.reconcile([id], initial: true)
            return id
        }
    }

    @Test("transitions with no hook are recorded at once; a later change schedules only what is new")
    func hookless() throws {
        let rig = try Rig()
        let id = try rig.instance(triggers: 2)
        #expect(rig.scheduler.recordedPosition(id) == 3, "start and two triggers: positions 0, 1, 2 done")
        #expect(rig.scheduler.isIdle(id))
        _ = try rig.engine.trigger(id)
        rig.reconciler.reconcile([id], initial: false)
        #expect(rig.scheduler.recordedPosition(id) == 4)
    }

    @Test("a transition with a hook is scheduled, not recorded, until its hook has run")
    func withHook() throws {
        let rig = try Rig(hooks: ["implement": "exit 0"])
        let id = try rig.engine.start(schema: fourPhasesSchema, featureID: "f")
        rig.reconciler.reconcile([id], initial: true)
        #expect(rig.scheduler.recordedPosition(id) == 1, "entering design has no hook")
        _ = try rig.engine.trigger(id)
        rig.reconciler.reconcile([id], initial: true)
        #expect(!rig.scheduler.isIdle(id), "the implement hook's job is queued")
        #expect(rig.scheduler.recordedPosition(id) == 1, "not recorded before it runs")
    }

    @Test("from now: the backlog is recorded where each instance stands and nothing old runs")
    func fromNow() throws {
        let rig = try Rig(fromNow: true, hooks: ["implement": "exit 0"])
        let id = try rig.instance(triggers: 1)
        #expect(rig.scheduler.recordedPosition(id) == 2)
        #expect(rig.scheduler.isIdle(id), "the implement hook of the backlog is not run")
    }

    @Test("a history that went backwards (restored from a backup) resumes from the current state")
    func backwards() throws {
        let rig = try Rig()
        let id = try rig.instance(triggers: 2)
        #expect(rig.scheduler.recordedPosition(id) == 3)
        // The instance restored to an earlier copy: start again with one trigger.
        let copy = try WorkflowEngine(root: rig.directory.path + "/other").start(schema: fourPhasesSchema, featureID: "f")
        let other = WorkflowEngine(root: rig.directory.path + "/other")
        _ = try other.trigger(copy)
        let layout = rig.engine.layout
        for (from, to) in [(other.layout.stateFile(copy), layout.stateFile(id)), (other.layout.historyFile(copy), layout.historyFile(id))] {
            let text = String(decoding: try FileDescriptor(opening: from, flags: O_RDONLY).readAll(limit: 1 << 20), as: UTF8.self)
            let bytes = Array(text.replacingOccurrences(of: copy, with: id).utf8)
            let file = try FileDescriptor(opening: to, flags: O_WRONLY | O_TRUNC)
            try file.write(bytes, at: 0)
        }
        rig.reconciler.reconcile([id], initial: false)
        #expect(rig.scheduler.recordedPosition(id) == 2, "rewound to where the instance now is")
    }

    @Test("only wfi_<12 hex>.json files are instances; an unreadable one is skipped and the others reconciled")
    func scanAndSkip() throws {
        let rig = try Rig()
        let good = try rig.engine.start(schema: fourPhasesSchema, featureID: "f")
        let bad = try rig.engine.start(schema: fourPhasesSchema, featureID: "f")
        for stray in ["notes.txt", "wfi_xyz.json", ".wfi_0123456789ab.json.tmp"] {
            _ = try FileDescriptor(opening: rig.engine.layout.instancesDirectory + "/" + stray, flags: O_WRONLY | O_CREAT)
        }
        try FileDescriptor(opening: rig.engine.layout.stateFile(bad), flags: O_WRONLY | O_TRUNC).write(Array("{not json".utf8), at: 0)
        #expect(rig.reconciler.scanInstances() == [good, bad].sorted())
        rig.reconciler.reconcile([bad, good], initial: true)
        #expect(rig.scheduler.recordedPosition(good) == 1)
        #expect(rig.scheduler.recordedPosition(bad) == nil)
    }

    @Test("retry policy: what is tried again, the hook's header over the watcher's defaults, backoff doubling to its cap with equal jitter")
    func retryPolicy() {
        let defaults = RetryPolicy.Defaults(retries: 2, delay: 1, maxDelay: 10, noRetryExitCodes: [3])
        let plain = RetryPolicy(hook: Hook(path: "/h", name: "h"), defaults: defaults)
        #expect(plain.retries == 2 && plain.noRetryExitCodes == [3])
        #expect(plain.retries(.exited(code: 1)))
        #expect(!plain.retries(.exited(code: 0)), "success")
        #expect(!plain.retries(.exited(code: 3)), "a never-retried code")
        #expect(plain.retries(.signaled(signal: 9)) && plain.retries(.timedOut(after: 5)) && plain.retries(.statusLost(reason: "gone")))
        #expect(plain.retries(.failedToLaunch(reason: "ENOEXEC")))
        #expect(!plain.retries(.refused(reason: "world-writable")) && !plain.retries(.interrupted(signal: nil)), "fix it, or the watcher stopped")
        #expect(plain.delay(beforeRetry: 1, random: 1) == 1 && plain.delay(beforeRetry: 1, random: 0) == 0.5)
        #expect(plain.delay(beforeRetry: 3, random: 1) == 4)
        #expect(plain.delay(beforeRetry: 10, random: 1) == 10, "capped")
        #expect(plain.delay(beforeRetry: 200, random: 1) == 10, "no overflow far out")
        var own = Hook(path: "/h", name: "h")
        own.retries = 5
        own.retryDelay = 60
        own.noRetryExitCodes = []
        let header = RetryPolicy(hook: own, defaults: defaults)
        #expect(header.retries == 5 && header.retries(.exited(code: 3)), "the header's settings win")
        #expect(header.delay(beforeRetry: 1, random: 1) == 60, "a hook's own delay above the watcher's cap is kept")
    }
}

private let fourPhasesSchema = WorkflowSchema(name: "dev", phaseNames: ["design", "implement", "testing", "review"])
