import ArgumentParser
import ChatFlow

struct Rerun: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the watcher to run a transition's hooks again (a refused hook once fixed, a failed, timed-out or interrupted one).",
        discussion: """
            The running chatflow-watch, or the next one to start, runs them in order with the instance's \
            other work, never at the same time; each run is recorded with its attempt number and its own log.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The instance id.")
    var id: String

    @Option(help: ArgumentHelp("The transition (default: the latest), as `chatflow runs` shows it (#N).", valueName: "N"))
    var transition: Int?

    @Option(help: ArgumentHelp("Only this hook (its path in the hooks directory).", valueName: "NAME"))
    var hook: String?

    @Flag(help: "Print JSON: {instance_id, transition, hook, requested, watcher_running}.")
    var json = false

    func run() throws {
        var arguments = ArgumentValues()
        arguments["id"] = id
        arguments["hook"] = hook
        arguments.set("transition", transition)
        Output.result(try global.call("rerun", arguments.values), json: json)
    }
}
