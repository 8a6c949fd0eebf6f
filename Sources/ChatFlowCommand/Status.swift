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
        let running = engine.runningHooks(of: id)
        let now = Timestamps.unix()
        if json {
            Output.printDocument(
                state, history: try engine.historyText(of: state), extra: ["running_hooks": .array(running.map { $0.report(now: now) })])
        } else {
            print(Output.summary(state))
            for hook in running {
                print("hook      \(hook.hook) running for #\(hook.transition) (pid \(hook.pid), \(HookOutcome.seconds(now - hook.startedAt)))")
            }
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
        let engine = try global.makeEngine()
        let status = try engine.featureStatus(feature)
        guard status.totalInstances > 0 else { throw ChatFlowError.featureNotFound(featureID: feature, root: engine.storeDescription) }
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
        let engine = try global.makeEngine()
        var wanted: InstanceStatus?
        if let status {
            guard let parsed = InstanceStatus(rawValue: status) else {
                throw ValidationError("--status must be created, running, completed or failed, not \(IdentifierKind.quote(status))")
            }
            wanted = parsed
        }
        if let phase { try Identifiers.validateName(phase, kind: .phaseName) }
        var unreadable = 0
        if claimable && phase == nil { throw ValidationError("--claimable goes with --phase P") }
        let states = claimable
            ? try engine.claimable(phase: phase!, feature: feature)
            : try engine.list(feature: feature, status: wanted, phase: phase) { _, error in
                unreadable += 1
                Output.error(error.description, code: error.code, json: json)
            }
        if json {
            Output.json(.array(states.map(\.report)))
        } else {
            for state in states { print(Output.line(state)) }
        }
        if unreadable > 0 { throw ExitCode(ExitStatus.failure) }
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
        let engine = try global.makeEngine()
        let entries = try engine.history(id)
        if json {
            Output.json(.array(entries.map(\.report)))
        } else {
            for (index, entry) in entries.enumerated() {
                let data = entry.triggerDataSnapshot.isNull ? "" : "  " + entry.triggerDataSnapshot.compactText
                print("\(index)  \(entry.phase)  \(entry.status.rawValue)  \(Output.time(entry.startedAt)) → \(Output.time(entry.endedAt))\(data)")
            }
        }
    }
}
