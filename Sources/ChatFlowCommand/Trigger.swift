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
        var arguments = ArgumentValues()
        arguments["id"] = id
        arguments["to"] = to
        arguments["token"] = token
        arguments.set("expect_transition", expectTransition)
        arguments.set("force", force)
        arguments.set("data", try data.map { try JSONValue(argument: $0, name: "--data") })
        arguments.set("meta", try meta.map { .object(try JSONValue.object(argument: $0, name: "--meta")) })
        Output.result(try global.call("trigger", arguments.values), json: json)
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
        var arguments = ArgumentValues()
        arguments["id"] = id
        arguments["reason"] = reason
        arguments["token"] = token
        arguments.set("force", force)
        Output.result(try global.call("fail", arguments.values), json: json)
    }
}
