import ArgumentParser
import ChatFlow

struct Trigger: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Close the current phase and enter the next one (or --to PHASE); completes at the last phase.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The instance id (wfi_ and 12 hex digits).")
    var id: String

    @Option(help: ArgumentHelp("Trigger data (any JSON); an object is merged into the variables.", valueName: "JSON"))
    var data: String?

    @Option(help: ArgumentHelp("Metadata to merge, a JSON object.", valueName: "JSON"))
    var meta: String?

    @Option(help: ArgumentHelp("Enter this phase instead of the next one (e.g. send a review back).", valueName: "PHASE"))
    var to: String?

    @Option(help: ArgumentHelp(
        "Trigger only if the last phase entered is still history index N (hooks pass $CHATFLOW_TRANSITION); else exit 4.",
        valueName: "N"))
    var expectTransition: Int?

    @Option(help: "The claim token, when the instance is claimed (chatflow claim); a wrong or expired one: exit 4.")
    var token: String?

    @Flag(help: "Trigger a claimed instance without its token.")
    var force = false

    @Flag(help: "Print the new state as JSON.")
    var json = false

    func run() throws {
        let engine = try global.makeEngine()
        let state = try engine.trigger(
            id, data: try data.map { try JSONValue(argument: $0, name: "--data") } ?? .emptyObject,
            meta: try meta.map { try JSONValue.object(argument: $0, name: "--meta") } ?? [:], to: to,
            expectedTransition: expectTransition, token: token, force: force)
        if json {
            Output.json(state.report)
        } else {
            // The state records the phase just left; completing stays in the last phase.
            let left = state.status == .completed ? state.currentPhase : state.previousPhase ?? "-"
            let to = state.status == .completed ? "completed" : "\(state.currentPhase) (\(state.status.rawValue))"
            print("\(state.instanceID): \(left) → \(to)")
        }
    }
}

struct Fail: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Mark an instance failed.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The instance id.")
    var id: String

    @Option(help: "Why it failed (stored in the history snapshot).")
    var reason: String?

    @Option(help: "The claim token, when the instance is claimed.")
    var token: String?

    @Flag(help: "Fail a claimed instance without its token.")
    var force = false

    @Flag(help: "Print the new state as JSON.")
    var json = false

    func run() throws {
        let engine = try global.makeEngine()
        let state = try engine.fail(id, reason: reason, token: token, force: force)
        if json {
            Output.json(state.report)
        } else {
            print("\(state.instanceID): failed at \(state.currentPhase)")
        }
    }
}
