import ChatFlow
import Glibc
import Logging
import Synchronization

/// Where hook runs go: a start record in the run journal when a hook starts (so `chatflow runs`
/// and `status` show it running); when it ends, its log under `instances/<id>/runs/` (appended,
/// so a re-run keeps both), its record in the journal, and one line on the console saying what
/// happened and, when it did not succeed, what to do.
final class RunRecorder: Sendable {
    let layout: Layout
    private let logger: Logger
    private let journal: AppendLog
    /// Runs so far per instance, transition and hook (from the journal at start, and from an
    /// instance's own run file the first time it is seen), for attempt numbers.
    private let attempts: Mutex<(counts: [String: Int], loaded: Set<String>)>

    /// Opens (creating) the run journal and counts the runs it records.
    init(layout: Layout, logger: Logger) throws(ChatFlowError) {
        self.layout = layout
        self.logger = logger
        var counts: [String: Int] = [:]
        // Starts count too: a run whose watcher died before its end still used its attempt.
        let (ended, unended) = try RunJournal(layout: layout).scan(archive: true)
        for (id, position, hook, attempt) in ended.map({ ($0.instanceID, $0.transition, $0.hook, $0.attempt) })
            + unended.map({ ($0.instanceID, $0.transition, $0.hook, $0.attempt) })
        {
            let key = RunRecorder.key(id, position, hook)
            counts[key] = max(counts[key] ?? 0, attempt)
        }
        attempts = Mutex((counts, []))
        journal = try AppendLog(path: layout.runJournalFile)
    }

    private static func key(_ id: String, _ position: Int, _ hook: String) -> String { "\(id) \(position) \(hook)" }

    /// The attempt number of a run about to start.
    func nextAttempt(_ transition: Transition, hook: String) -> Int {
        let id = transition.instanceID
        if !attempts.withLock({ $0.loaded.contains(id) }) {
            // Runs the journal has rotated away are still in the instance's own file (the journal's
            // two generations were counted at start): one small file, on a hook's start path.
            let earlier = (try? RunJournal(layout: layout).instanceRecords(of: id)) ?? []
            attempts.withLock { state in
                state.loaded.insert(id)
                for record in earlier {
                    let key = RunRecorder.key(id, record.transition, record.hook)
                    state.counts[key] = max(state.counts[key] ?? 0, record.attempt)
                }
            }
        }
        return attempts.withLock { state in
            let key = RunRecorder.key(id, transition.position, hook)
            let next = (state.counts[key] ?? 0) + 1
            state.counts[key] = next
            return next
        }
    }

    /// Appends an ended run to the journal and to its instance's own run file, and rotates the
    /// journal once it passes `RunJournal.rotateBytes`.
    private func appendEnded(_ record: RunRecord) {
        do {
            try journal.append([record.json])
        } catch {
            logger.error("cannot append to the run journal", metadata: ["error": "\(error)"])
        }
        do {
            // Not synced: the journal's copy is durable, and readers take the union.
            let id = record.instanceID
            try FileSystem.createDirectory(layout.runsDirectory(id))
            let file = try FileDescriptor(
                beneath: layout.root, ["instances", id, "runs", "runs.ndjson"], flags: O_WRONLY | O_CREAT | O_APPEND)
            try file.append(AppendLog.lines([record.json]))
        } catch {
            logger.error("cannot append to the instance's run file", metadata: ["instance.id": "\(record.instanceID)", "error": "\(error)"])
        }
        rotateIfNeeded()
    }

    /// Past `RunJournal.rotateBytes`: the journal becomes `runs.1.ndjson` (linked there first,
    /// so readers always find one or the other whole) and a new one starts with the runs still
    /// going. Only the watcher (holding the watcher lock) writes the journal.
    private func rotateIfNeeded() {
        let path = layout.runJournalFile
        var info = stat()
        guard stat(path, &info) == 0, Int(info.st_size) > RunJournal.rotateBytes else { return }
        do {
            let unended = try RunJournal(layout: layout).scan().unended
            let temp = layout.runArchiveFile + ".tmp"
            unlink(temp)
            guard link(path, temp) == 0 else { throw ChatFlowError.io(operation: "link", path: temp, errno: errno) }
            guard rename(temp, layout.runArchiveFile) == 0 else { throw ChatFlowError.io(operation: "rename", path: temp, errno: errno) }
            try journal.rewrite(raw: AppendLog.lines(unended.map(\.json)))
            logger.info("run journal rotated", metadata: ["running": "\(unended.count)", "archive": "\(layout.runArchiveFile)"])
        } catch {
            logger.error("cannot rotate the run journal", metadata: ["error": "\(error)"])
        }
    }

    func record(_ result: HookResult, hook: Hook, transition: Transition, attempt: Int = 1) {
        let logPath = layout.runLogFile(transition.instanceID, transition: transition.position, hook: hook.name, attempt: attempt)
        // The supervisor wrote the log as the hook ran; a hook that never started has only this line.
        if case .failedToLaunch = result.outcome {
            writeLog(logPath, Array("== \(hook.name) for transition \(transition.position) (\(transition.event)), \(result.outcome.summary) ==\n".utf8))
        }
        var record = RunRecord(
            instanceID: transition.instanceID, transition: transition.position, phase: transition.phase,
            event: transition.event, hook: hook.name, startedAt: result.startedAt, endedAt: result.endedAt,
            outcome: result.outcome, logPath: logPath, droppedOutputBytes: result.droppedBytes)
        record.attempt = attempt
        record.logError = result.logProblem
        appendEnded(record)
        if let problem = result.logProblem {
            logger.error(
                "hook output not saved", metadata: ["instance.id": "\(transition.instanceID)", "hook.name": "\(hook.name)", "log": "\(logPath)", "reason": "\(problem)"])
        }
        var metadata: Logger.Metadata = [
            "instance.id": "\(transition.instanceID)", "transition": "\(transition.position)",
            "hook.name": "\(hook.name)", "hook.exit": "\(result.outcome.summary)",
            "hook.duration": "\(HookOutcome.seconds(result.endedAt - result.startedAt))", "log": "\(logPath)",
        ]
        if let last = RunRecorder.lastLine(of: result.output) { metadata["output.last"] = "\(last)" }
        if let advice = RunRecorder.advice(for: result.outcome, hook: hook, transition: transition, log: logPath) {
            metadata["todo"] = "\(advice)"
        }
        logger.log(
            level: result.outcome.succeeded ? .info : .warning,
            "hook \(hook.name) for \(transition.instanceID) #\(transition.position): \(result.outcome.summary) after \(HookOutcome.seconds(result.endedAt - result.startedAt))\(attempt > 1 ? " (attempt \(attempt))" : "")",
            metadata: metadata)
    }

    /// The end of a run another watcher started and never ended (`OrphanRuns`); its attempt
    /// counts as used.
    func recordEnd(of start: RunningHook, outcome: HookOutcome) {
        attempts.withLock { state in
            let key = RunRecorder.key(start.instanceID, start.transition, start.hook)
            state.counts[key] = max(state.counts[key] ?? 0, start.attempt)
        }
        var record = RunRecord(
            instanceID: start.instanceID, transition: start.transition, phase: start.phase, event: start.event,
            hook: start.hook, startedAt: start.startedAt, endedAt: Timestamps.unix(), outcome: outcome,
            logPath: layout.runLogFile(start.instanceID, transition: start.transition, hook: start.hook, attempt: start.attempt),
            droppedOutputBytes: 0)
        record.attempt = start.attempt
        appendEnded(record)
    }

    /// The start of a run, in the journal (not synced: losing it in a power cut loses nothing).
    func recordStart(hook: Hook, transition: Transition, attempt: Int, pid: Int32, startedAt: Double) {
        var start = RunningHook(
            instanceID: transition.instanceID, transition: transition.position, phase: transition.phase,
            event: transition.event, hook: hook.name, pid: pid, startedAt: startedAt,
            logPath: layout.runLogFile(transition.instanceID, transition: transition.position, hook: hook.name, attempt: attempt))
        start.attempt = attempt
        do {
            try journal.append([start.json], durable: false)
        } catch {
            logger.error("cannot append to the run journal", metadata: ["error": "\(error)"])
        }
    }

    /// The last non-empty line a hook wrote, shortened for a console line.
    static func lastLine(of output: [UInt8]) -> String? {
        let text = String(decoding: output.suffix(4096), as: UTF8.self)
        guard let line = text.split(whereSeparator: \.isNewline).last(where: { !$0.allSatisfy(\.isWhitespace) }) else { return nil }
        return line.count > 200 ? String(line.prefix(200)) + "…" : String(line)
    }

    /// What a person does about a run that did not succeed.
    static func advice(for outcome: HookOutcome, hook: Hook, transition: Transition, log: String) -> String? {
        let show = "see its output: chatflow logs \(transition.instanceID) --transition \(transition.position) --hook \(hook.name) (or \(log))"
        switch outcome {
        case .exited(0): return nil
        case .exited, .signaled, .statusLost: return show
        case .timedOut: return "it ran longer than its timeout; raise '# chatflow-timeout: SECONDS' in the hook or --timeout; " + show
        case .failedToLaunch: return "check that \(hook.path) is a valid executable (its #! line)"
        case .refused(let reason): return reason
        case .interrupted: return "it runs again when the watcher next starts"
        }
    }

    /// A hook file that was not run: a warning, and a run record saying why (no log).
    func recordRefused(_ hook: RefusedHook, name: String, transition: Transition) {
        logger.warning(
            "hook refused",
            metadata: [
                "instance.id": "\(transition.instanceID)", "transition": "\(transition.position)",
                "hook.path": "\(hook.path)", "reason": "\(hook.reason)",
            ])
        let now = Timestamps.unix()
        let record = RunRecord(
            instanceID: transition.instanceID, transition: transition.position, phase: transition.phase,
            event: transition.event, hook: name, startedAt: now, endedAt: now, outcome: .refused(reason: hook.reason),
            logPath: "", droppedOutputBytes: 0)
        appendEnded(record)
    }

    private func writeLog(_ path: String, _ bytes: [UInt8]) {
        do {
            let directory = FileSystem.parent(path)
            if !FileSystem.isDirectory(directory) { try FileSystem.createDirectory(directory) }
            let file = try FileDescriptor(opening: path, flags: O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW)
            try file.append(bytes)
        } catch {
            logger.error("cannot write a hook log", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}

/// Seconds with millisecond precision, for log metadata.
func format3(_ value: Double) -> String {
    let scaled = (value * 1000).rounded() / 1000
    return "\(scaled)"
}
