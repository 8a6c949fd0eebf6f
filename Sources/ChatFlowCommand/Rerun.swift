import ArgumentParser
import ChatFlow

struct Rerun: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the watcher to run a transition's hooks again (a refused hook once fixed, a failed, timed-out or interrupted one).",
        discussion: """
            The running chatflow-watch, or the next one to start, runs them in order with the instance's \\
            other work, never at the same time; each run is recorded with its attempt number and its own log.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The instance id.")
    var id: String

    @Option(help: ArgumentHelp("The transition (default: the latest), as `chatflow runs` shows it (#N).", valueName: "N"))
    var transition: Int?

    @Option(help: ArgumentHelp("Only this hook (its path in the hooks directory).", valueName: "NAME"))
    var hook: String?

    func run() throws {
        let engine = try global.makeEngine()
        guard let state = try engine.status(id) else { throw ChatFlowError.notFound(instanceID: id, root: engine.storeDescription) }
        let end = state.historyLength + (state.status.isFinished ? 1 : 0)
        if let transition, transition < 0 || transition >= end {
            throw ValidationError("\(id) has transitions 0 to \(end - 1); --transition \(transition) is not one of them")
        }
        _ = try RerunRequest.submit(engine.layout, instanceID: id, transition: transition, hook: hook)
        let which = "transition \(transition ?? end - 1)" + (hook.map { ", hook \($0)" } ?? "")
        if LockFile.isHeld(engine.layout.watchLockFile) {
            print("rerun of \(id) \(which) requested; the watcher runs it (follow it: chatflow logs \(id) --follow)")
        } else {
            print("rerun of \(id) \(which) requested; no watcher is running: the next chatflow-watch runs it")
        }
    }
}
