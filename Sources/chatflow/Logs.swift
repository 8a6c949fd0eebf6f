import ArgumentParser
import ChatFlow

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a hook run's output (the latest run, or the one chosen); --follow follows a running hook until it ends.",
        discussion: "Exit 3 when no run matches.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The instance id.")
    var id: String

    @Option(help: ArgumentHelp("Only runs of this transition (as `chatflow runs` shows it, #N).", valueName: "N"))
    var transition: Int?

    @Option(help: ArgumentHelp("Only runs of this hook (its path in the hooks directory).", valueName: "NAME"))
    var hook: String?

    @Flag(help: "Keep printing what a running hook writes until it ends (event-driven).")
    var follow = false

    func run() throws {
        let engine = try global.makeEngine()
        try Identifiers.validateInstanceID(id)
        guard try engine.status(id) != nil else { throw ChatFlowError.notFound(instanceID: id, root: engine.root) }
        let journal = RunJournal(layout: engine.layout)
        let all = try journal.records(running: true)
        func matches(_ transition: Int, _ hook: String) -> Bool {
            (self.transition == nil || self.transition == transition) && (self.hook == nil || self.hook == hook)
        }
        let running = all.running.filter { $0.instanceID == id && matches($0.transition, $0.hook) }.last
        let ended = all.ended.filter { $0.instanceID == id && matches($0.transition, $0.hook) }.last
        let choice: (path: String, start: Double, pid: Int32?)
        if let running, running.startedAt >= ended?.startedAt ?? 0 {
            choice = (running.logPath, running.startedAt, running.pid)
        } else if let ended, !ended.logPath.isEmpty {
            choice = (ended.logPath, ended.startedAt, nil)
        } else {
            throw ChatFlowError.runNotFound(instanceID: id, detail: describeFilter())
        }
        let follower = RunLogFollower(logPath: choice.path, journalPath: journal.path, pid: choice.pid) {
            // The run has ended once its end record is in the journal.
            ((try? journal.records(running: false, lastBytes: RunJournal.recentBytes).ended) ?? []).contains {
                $0.instanceID == id && $0.startedAt == choice.start
            }
        }
        try follower.run(follow: follow && choice.pid != nil)
    }

    private func describeFilter() -> String {
        [transition.map { "transition \($0)" }, hook.map { "hook \($0)" }].compactMap { $0 }.joined(separator: ", ")
    }
}
