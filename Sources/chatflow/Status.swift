import ArgumentParser
import ChatFlow

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show an instance's state (exit 3 if it does not exist).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The instance id.")
    var id: String

    @Flag(help: "Print the state file's JSON.")
    var json = false

    func run() throws {
        let engine = global.makeEngine()
        guard let state = try engine.status(id) else {
            throw ChatFlowError.notFound(instanceID: id, root: engine.root)
        }
        if json { Output.json(state.json) } else { print(Output.summary(state)) }
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
        let engine = global.makeEngine()
        let status = try engine.featureStatus(feature)
        if json {
            Output.json(status.json)
        } else {
            print("""
                feature    \(status.featureID)
                status     \(status.status)
                instances  \(status.totalInstances) (\(status.runningCount) running, \(status.completedCount) completed, \(status.failedCount) failed)
                latest     \(status.latestInstanceID ?? "-")
                """)
        }
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List instances, optionally of one feature and/or status.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Only this feature's instances.")
    var feature: String?

    @Option(help: "Only instances in this status: created, running, completed or failed.")
    var status: String?

    @Flag(help: "Print a JSON array of states.")
    var json = false

    func run() throws {
        let engine = global.makeEngine()
        var wanted: InstanceStatus?
        if let status {
            guard let parsed = InstanceStatus(rawValue: status) else {
                throw ValidationError("--status must be created, running, completed or failed, not \(IdentifierKind.quote(status))")
            }
            wanted = parsed
        }
        let states = try engine.list(feature: feature, status: wanted)
        if json {
            Output.json(.array(states.map(\.json)))
        } else {
            for state in states { print(Output.line(state)) }
        }
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
        let engine = global.makeEngine()
        let entries = try engine.history(id)
        if json {
            Output.json(.array(entries.map(\.json)))
        } else {
            for (index, entry) in entries.enumerated() {
                let data = entry.triggerDataSnapshot.isNull ? "" : "  " + entry.triggerDataSnapshot.compactText
                print("\(index)  \(entry.phase)  \(entry.status.rawValue)  \(Output.time(entry.startedAt)) → \(Output.time(entry.endedAt))\(data)")
            }
        }
    }
}
