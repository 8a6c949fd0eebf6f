import ArgumentParser
import ChatFlow

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show an instance's state (exit 3 if it does not exist).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The instance id.")
    var id: String

    @Flag(help: "Print the state as JSON, with its whole `history` and its `transition` (docs/FORMAT.md).")
    var json = false

    func run() throws {
        let engine = try global.makeEngine()
        guard let state = try engine.status(id) else {
            throw ChatFlowError.notFound(instanceID: id, root: engine.storeDescription)
        }
        let running = engine.hookRuns.runningHooks(of: id)
        let now = Timestamps.unix()
        if json {
            Output.printDocument(
                state, history: try engine.historyText(of: state), extra: ["running_hooks": .array(running.map { $0.report(now: now) })])
        } else {
            print(state.statusText(running: running, now: now))
        }
    }
}

struct Feature: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a feature's aggregate status.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The feature id.")
    var feature: String

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        Output.result(try global.call("feature", ["feature": .string(feature)]), json: json)
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List instances, optionally of one feature, status and/or phase.",
        discussion: """
            An unreadable state file is reported on stderr and skipped; the others are listed, and \
            the exit status is then 1. `--status running` includes `created` (instances not yet triggered).
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Only this feature's instances.")
    var feature: String?

    @Option(help: "Only instances in this status: created, running (created included), completed or failed.")
    var status: String?

    @Option(help: "Only instances whose current phase is this.")
    var phase: String?

    @Flag(help: "With --phase: only those that `chatflow claim` could take now (unclaimed or lease expired), oldest first.")
    var claimable = false

    @Flag(help: "Print a JSON array of states.")
    var json = false

    func run() throws {
        if claimable && phase == nil { throw ValidationError("--claimable goes with --phase P") }
        var arguments = ArgumentValues()
        arguments["feature"] = feature
        arguments["status"] = status
        arguments["phase"] = phase
        arguments.set("claimable", claimable)
        let result = try global.call("list", arguments.values)
        let unreadable = result.document["unreadable"]?.arrayValue ?? []
        for entry in unreadable {
            Output.error(entry["error"]?["message"]?.stringValue ?? "", code: entry["error"]?["code"]?.stringValue ?? "corrupt", json: json)
        }
        Output.result(result, json: json)
        if !unreadable.isEmpty { throw ExitCode(ExitStatus.failure) }
    }
}

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show every phase an instance entered, oldest first.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The instance id.")
    var id: String

    @Flag(help: "Print a JSON array of history entries.")
    var json = false

    func run() throws {
        Output.result(try global.call("history", ["id": .string(id)]), json: json)
    }
}
