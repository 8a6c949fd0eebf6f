import ArgumentParser
import ChatFlow

struct Wait: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Block until an instance reaches a phase, a status or a transition, or any instance is in a phase.",
        discussion: """
            chatflow wait ID (--phase P | --status S | --after-transition N): prints the state when the \
            condition holds. chatflow wait [--feature F] --phase P: prints the id of an instance in P (one \
            already there counts). Event-driven (inotify, checked again after the watch is armed, so a \
            change in between is not missed). What cannot happen is refused at once: a phase the \
            workflow does not have (exit 2, naming its phases), an instance that finished without \
            meeting the condition, or finishes while waited for (exit 1, code finished, its state \
            printed). Without an id, a phase no instance's workflow has yet is waited for (a new one \
            may bring it), with a warning naming the known phases. Exit 0 met, 1 finished, 2 unknown \
            phase, 3 unknown id, 5 timed out.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The instance id (omit to wait for any instance in --phase).")
    var id: String?

    @Option(help: "Until the instance's current phase is this.")
    var phase: String?

    @Option(help: "Until the instance's status is this: created, running, completed or failed.")
    var status: String?

    @Option(help: ArgumentHelp("Until the instance has moved past transition N (its transition is > N, or it finished).", valueName: "N"))
    var afterTransition: Int?

    @Option(help: "With no id: only this feature's instances.")
    var feature: String?

    @Option(help: ArgumentHelp("Give up after this many seconds (exit 5).", valueName: "SECONDS"))
    var timeout: Double?

    @Flag(help: "Print JSON: the state, or {\"instance_id\": …} for the second form.")
    var json = false

    func validate() throws {
        if let timeout, !(timeout >= 0) { throw ValidationError("--timeout must be a number of seconds ≥ 0") }
    }

    func run() throws {
        var arguments = ArgumentValues()
        arguments["id"] = id
        arguments["phase"] = phase
        arguments["status"] = status
        arguments["feature"] = feature
        arguments.set("after_transition", afterTransition)
        arguments.set("timeout_seconds", timeout)
        let engine = try global.makeEngine()
        do {
            try global.call("wait", arguments.values, engine: engine, warn: !json) { result in
                // Without an id, the id alone: `id=$(chatflow wait --phase review)`.
                Output.now(json ? result.document.prettyText : id == nil ? result.document["instance_id"]?.stringValue ?? "" : result.text)
            }
        } catch let error as ChatFlowError {
            // An instance that finished without meeting the condition: the state it ended in, then the error.
            if case .cannotHold(let instance, _, _, _) = error, let state = try engine.freshStatus(instance) {
                Output.now(json ? state.report.prettyText : state.line)
            }
            throw error
        }
    }
}
