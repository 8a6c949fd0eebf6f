import ArgumentParser
import ChatFlow

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a hook run's output (the latest run, @any hooks only when nothing else ran, or the one chosen); --follow follows a running hook until it ends.",
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

    @Flag(help: "Print JSON: {instance_id, transition, hook, running, outcome, text, offset, next_offset, size, log_path} (the last 64 KiB).")
    var json = false

    func run() throws {
        if json {
            var arguments = ArgumentValues()
            arguments["id"] = id
            arguments["hook"] = hook
            arguments.set("transition", transition)
            return Output.result(try global.call("logs", arguments.values), json: true)
        }
        let engine = try global.makeEngine()
        let run = try engine.hookRuns.latestRun(of: id, transition: transition, hook: hook)
        let follower = RunLogFollower(logPath: run.logPath, root: engine.layout.root, journalPath: engine.layout.runJournalFile, pid: run.running?.pid) {
            engine.hookRuns.runHasEnded(id, startedAt: run.startedAt)
        }
        try follower.run(follow: follow && run.running != nil)
    }
}
