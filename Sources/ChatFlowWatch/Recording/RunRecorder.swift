import ChatFlow
import Glibc
import Logging

/// Where a finished hook run goes: its log under `instances/<id>/runs/` (appended, so a re-run
/// keeps both), a record in the run journal, and a line on the console.
final class RunRecorder: Sendable {
    let layout: Layout
    private let logger: Logger
    private let journal: AppendLog

    /// Opens (creating) the run journal.
    init(layout: Layout, logger: Logger) throws(ChatFlowError) {
        self.layout = layout
        self.logger = logger
        journal = try AppendLog(path: layout.runJournalFile)
    }

    func record(_ result: HookResult, hook: Hook, transition: Transition) {
        let logPath = layout.runLogFile(transition.instanceID, transition: transition.position, hook: hook.name)
        var header = "== \(hook.name) for transition \(transition.position) (\(transition.event)), \(result.outcome.summary)"
        if result.droppedBytes > 0 { header += ", first \(result.droppedBytes) bytes of output dropped" }
        header += " ==\n"
        writeLog(logPath, Array(header.utf8) + result.output)
        let record = RunRecord(
            instanceID: transition.instanceID, transition: transition.position, phase: transition.phase,
            event: transition.event, hook: hook.name, startedAt: result.startedAt, endedAt: result.endedAt,
            outcome: result.outcome, logPath: logPath, droppedOutputBytes: result.droppedBytes)
        do {
            try journal.append([record.json])
        } catch {
            logger.error("cannot append to the run journal", metadata: ["error": "\(error)"])
        }
        logger.log(
            level: result.outcome.succeeded ? .info : .warning, "hook run",
            metadata: [
                "instance.id": "\(transition.instanceID)", "transition": "\(transition.position)",
                "hook.name": "\(hook.name)", "hook.exit": "\(result.outcome.summary)",
                "hook.duration": "\(format3(result.endedAt - result.startedAt))", "log": "\(logPath)",
            ])
    }

    /// A hook file that was not run: a run record saying why (no log), and a warning.
    func recordRefused(_ hook: RefusedHook, name: String, transition: Transition) {
        let now = Timestamps.unix()
        let record = RunRecord(
            instanceID: transition.instanceID, transition: transition.position, phase: transition.phase,
            event: transition.event, hook: name, startedAt: now, endedAt: now, outcome: .refused(reason: hook.reason),
            logPath: "", droppedOutputBytes: 0)
        do {
            try journal.append([record.json])
        } catch {
            logger.error("cannot append to the run journal", metadata: ["error": "\(error)"])
        }
        logger.warning(
            "hook refused",
            metadata: [
                "instance.id": "\(transition.instanceID)", "transition": "\(transition.position)",
                "hook.path": "\(hook.path)", "reason": "\(hook.reason)",
            ])
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
