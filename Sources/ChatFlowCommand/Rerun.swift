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

    func run() throws {
        let engine = try global.makeEngine()
        guard let state = try engine.status(id) else { throw ChatFlowError.notFound(instanceID: id, root: engine.storeDescription) }
        let end = state.historyLength + (state.status.isFinished ? 1 : 0)
        if let transition, transition < 0 || transition >= end {
            throw ValidationError("\(id) has transitions 0 to \(end - 1); --transition \(transition) is not one of them")
        }
        if let hook { try checkHook(hook, of: state, transition: transition ?? end - 1, engine) }
        _ = try RerunRequest.submit(engine.layout, instanceID: id, transition: transition, hook: hook)
        let which = "transition \(transition ?? end - 1)" + (hook.map { ", hook \($0)" } ?? "")
        if LockFile.isHeld(engine.layout.watchLockFile) {
            print("rerun of \(id) \(which) requested; the watcher runs it (follow it: chatflow logs \(id) --follow)")
        } else {
            print("rerun of \(id) \(which) requested; no watcher is running: the next chatflow-watch runs it")
        }
    }

    /// Refuses a hook the transition does not have: not in the hooks directory for its event (or
    /// `@any`), and never run for it (a watcher with `--hooks DIR` records what it ran). The
    /// watcher would refuse it anyway, but only on its own console.
    private func checkHook(_ hook: String, of state: InstanceState, transition: Int, _ engine: WorkflowEngine) throws {
        let event: String
        if transition == state.historyLength {
            event = state.status == .completed ? "@completed" : "@failed"
        } else if transition == state.historyLength - 1 {
            event = state.currentPhase
        } else {
            event = try engine.history(of: state, from: transition).first?.phase ?? state.currentPhase
        }
        let catalog = HookCatalog(directory: engine.layout.hooksDirectory)
        var names: [String] = []
        for lookup in [catalog.hooks(for: event), catalog.hooks(for: "@any")] {
            names += lookup.hooks.map(\.name) + lookup.refused.map { catalog.name(of: $0.path) }
        }
        names += try engine.runs(of: state.instanceID).ended.filter { $0.transition == transition }.map(\.hook)
        guard !names.contains(hook) else { return }
        var known: [String] = []
        for name in names where !known.contains(name) { known.append(name) }
        let listed = known.isEmpty ? "it has none" : "its hooks: " + known.joined(separator: ", ")
        throw ChatFlowError.invalidJSON(
            what: "--hook \(IdentifierKind.quote(hook))",
            reason: "transition \(transition) of \(state.instanceID) (\(event)) has no such hook; \(listed)")
    }
}
