import Glibc

/// One hook run chosen for its log: the newest of an instance's runs (optionally of one
/// transition and hook), running or ended.
package struct RunSelection: Sendable {
    package var logPath: String
    package var startedAt: Double
    package var transition: Int
    package var hook: String
    /// Set while the hook runs.
    package var running: RunningHook?
    /// Set once it has ended.
    package var ended: RunRecord?
}

/// The hook runs the watcher recorded (its run journal and run logs, in the host's state
/// directory whatever the store): what runs, what ran, and their logs, for `runs`, `logs` and
/// `status`. The watcher writes them; this only reads.
package struct HookRuns: Sendable {
    let engine: WorkflowEngine
    var layout: Layout { engine.layout }

    /// The hooks running for an instance: none without a watcher, else from the run journal's tail.
    package func runningHooks(of id: String) -> [RunningHook] {
        guard LockFile.isHeld(layout.watchLockFile) else { return [] }
        let running = (try? RunJournal(layout: layout).records(running: true, lastBytes: RunJournal.recentBytes).running) ?? []
        return running.filter { $0.instanceID == id }
    }

    /// The newest run of instance `id` (of `transition` and `hook`, where given) with a log;
    /// `ChatFlowError.runNotFound` when there is none. With no hook named, the transition's own
    /// hooks come first: an `@any` hook (an audit on every transition) is taken only when
    /// nothing else ran, or it would hide the run one asks about.
    package func latestRun(of id: String, transition: Int? = nil, hook: String? = nil) throws(ChatFlowError) -> RunSelection {
        try Identifiers.validateInstanceID(id)
        guard try engine.status(id) != nil else { throw .notFound(instanceID: id, root: engine.storeDescription) }
        let all = try RunJournal(layout: layout).records(of: id, running: true)
        func matches(_ runTransition: Int, _ runHook: String) -> Bool {
            (transition == nil || transition == runTransition) && (hook == nil || hook == runHook)
        }
        var runningRuns = all.running.filter { $0.instanceID == id && matches($0.transition, $0.hook) }
        var endedRuns = all.ended.filter { $0.instanceID == id && matches($0.transition, $0.hook) }
        func audit(_ name: String) -> Bool { name == "@any" || name.hasPrefix("@any.d/") }
        if hook == nil, runningRuns.contains(where: { !audit($0.hook) }) || endedRuns.contains(where: { !audit($0.hook) }) {
            runningRuns.removeAll { audit($0.hook) }
            endedRuns.removeAll { audit($0.hook) }
        }
        let running = runningRuns.last, ended = endedRuns.last
        // The log's path is derived from what the run was, never read from the record: a record
        // is text anyone who can write the journal controls, and may name any file.
        if let running, running.startedAt >= ended?.startedAt ?? 0 {
            let path = layout.runLogFile(id, transition: running.transition, hook: running.hook, attempt: running.attempt)
            return RunSelection(logPath: path, startedAt: running.startedAt, transition: running.transition, hook: running.hook, running: running)
        }
        if let ended, !ended.logPath.isEmpty {
            let path = layout.runLogFile(id, transition: ended.transition, hook: ended.hook, attempt: ended.attempt)
            return RunSelection(logPath: path, startedAt: ended.startedAt, transition: ended.transition, hook: ended.hook, ended: ended)
        }
        let detail = [transition.map { "transition \($0)" }, hook.map { "hook \($0)" }].compactMap { $0 }.joined(separator: ", ")
        throw .runNotFound(instanceID: id, detail: detail)
    }

    /// The recorded hook runs (of instance `id`, which must exist, where given): ended, then running.
    package func runs(of id: String?) throws(ChatFlowError) -> (ended: [RunRecord], running: [RunningHook]) {
        if let id {
            try Identifiers.validateInstanceID(id)
            guard try engine.status(id) != nil else { throw .notFound(instanceID: id, root: engine.storeDescription) }
        }
        if let id { return try RunJournal(layout: layout).records(of: id, running: true) }
        let journal = RunJournal(layout: layout)
        let current = try journal.records(running: true)
        return (try journal.archived() + current.ended, current.running)
    }

    /// Up to `maxBytes` of a run log from byte `offset` (`nil`: its last `maxBytes`), and the
    /// log's size; a log not written yet reads as empty.
    /// The log must lie in the state directory, reached without following a link.
    package func readLog(_ path: String, from offset: Int?, maxBytes: Int) throws(ChatFlowError) -> (bytes: [UInt8], start: Int, size: Int) {
        guard path.hasPrefix(layout.root + "/") else {
            throw .corruptState(path: path, reason: "a run log outside the state directory \(layout.root) is never read")
        }
        let components = path.dropFirst(layout.root.count + 1).split(separator: "/").map(String.init)
        let opened: Int32
        do {
            opened = try FileDescriptor(beneath: layout.root, components, flags: O_RDONLY | O_NONBLOCK).release()
        } catch {
            guard case .io(_, _, let code) = error else { throw error }
            if code == ENOENT { return ([], 0, 0) }
            if code == ELOOP || code == ENOTDIR {
                throw .corruptState(path: path, reason: "a symbolic link stands on its way, which could lead out of the state directory; it was not followed")
            }
            throw error
        }
        let file = FileDescriptor(adopting: opened, path: path)
        var info = stat()
        guard fstat(file.rawValue, &info) == 0 else { throw .io(operation: "stat", path: path, errno: errno) }
        let size = Int(info.st_size)
        let start = min(size, offset ?? max(0, size - maxBytes))
        var bytes = [UInt8](repeating: 0, count: min(maxBytes, size - start))
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { pread(file.rawValue, $0.baseAddress! + filled, $0.count - filled, off_t(start + filled)) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw .io(operation: "read", path: path, errno: errno) }
            if count == 0 { break }
            filled += count
        }
        return (Array(bytes.prefix(filled)), start, size)
    }

    /// A run's log as the MCP `logs` tool and the web view's `/api/…/logs` return it: the newest
    /// matching run, up to `maxBytes` from `offset` (`nil`: the tail), where it stands and how it ended.
    package func logReport(
        of id: String, transition: Int?, hook: String?, offset: Int?, maxBytes: Int
    ) throws(ChatFlowError) -> (report: JSONValue, run: RunSelection, text: String) {
        let run = try latestRun(of: id, transition: transition, hook: hook)
        let log = try readLog(run.logPath, from: offset, maxBytes: maxBytes)
        let text = String(decoding: log.bytes, as: UTF8.self)
        var members: [String: JSONValue] = [
            "instance_id": .string(id), "transition": .number(JSONNumber(run.transition)), "hook": .string(run.hook),
            "running": .bool(run.running != nil), "log_path": .string(run.logPath), "offset": .number(JSONNumber(log.start)),
            "next_offset": .number(JSONNumber(log.start + log.bytes.count)), "size": .number(JSONNumber(log.size)),
            "text": .string(text),
        ]
        if let ended = run.ended { members["outcome"] = .string(ended.outcome.summary) }
        return (.object(members), run, text)
    }

    /// Whether the run that started at `startedAt` has its end record in the journal's tail.
    package func runHasEnded(_ id: String, startedAt: Double) -> Bool {
        ((try? RunJournal(layout: layout).records(running: false, lastBytes: RunJournal.recentBytes).ended) ?? []).contains {
            $0.instanceID == id && $0.startedAt == startedAt
        }
    }
}
