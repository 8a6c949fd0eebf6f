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
        if id == nil {
            guard phase != nil, status == nil, afterTransition == nil else {
                throw ValidationError("without an id, give --phase P (and optionally --feature F)")
            }
        } else {
            guard [phase != nil, status != nil, afterTransition != nil].filter({ $0 }).count == 1 else {
                throw ValidationError("give exactly one of --phase, --status or --after-transition")
            }
            guard feature == nil else { throw ValidationError("--feature goes with the form without an id") }
        }
        if let status, InstanceStatus(rawValue: status) == nil {
            throw ValidationError("--status must be created, running, completed or failed, not \(IdentifierKind.quote(status))")
        }
        if let timeout, !(timeout >= 0) { throw ValidationError("--timeout must be a number of seconds ≥ 0") }
    }

    func run() throws {
        let engine = try global.makeEngine()
        if let phase { try Identifiers.validateName(phase, kind: .phaseName) }
        if let feature { try Identifiers.validateName(feature, kind: .featureID) }
        try engine.prepare()
        if id == nil, let phase, !json, let warning = try engine.unknownPhaseWarning(phase, feature: feature) {
            writeStandardError("chatflow: warning: \(warning); waiting for one that has\n")
        }
        let watch = try global.changes(of: engine)
        let deadline = timeout.map { Timestamps.unix() + $0 }
        func timedOut() -> ExitCode {
            Output.error("the condition did not hold within \(HookOutcome.seconds(timeout ?? 0))", code: "timeout", json: json)
            return ExitCode(ExitStatus.timeout)
        }
        if let id {
            try Identifiers.validateInstanceID(id)
            // Armed, then checked: a commit in between is either seen here or reported by the watch.
            var state = try engine.freshStatus(id)
            guard state != nil else { throw ChatFlowError.notFound(instanceID: id, root: engine.storeDescription) }
            while true {
                if let current = state {
                    if condition.holds(for: current) {
                        Output.now(json ? current.json.prettyText : Output.line(current))
                        return
                    }
                    if let impossible = condition.impossibility(for: current) {
                        if case .cannotHold = impossible { Output.now(json ? current.json.prettyText : Output.line(current)) }
                        throw impossible
                    }
                }
                guard let changed = try watch.nextChange(deadline: deadline, wakeAtLeastEvery: nil) else { throw timedOut() }
                if changed.isEmpty || changed.contains(id) { state = try engine.freshStatus(id) }
            }
        }
        func report(_ state: InstanceState) {
            Output.now(json ? JSONValue.object(["instance_id": .string(state.instanceID)]).prettyText : state.instanceID)
        }
        // Every instance once (after the watch is armed), then only those that changed.
        if let found = try engine.list(feature: feature, phase: phase, unreadable: { _, _ in }).first { return report(found) }
        while true {
            guard let changed = try watch.nextChange(deadline: deadline, wakeAtLeastEvery: nil) else { throw timedOut() }
            if changed.isEmpty {
                engine.invalidateAll()
                if let found = try engine.list(feature: feature, phase: phase, unreadable: { _, _ in }).first { return report(found) }
                continue
            }
            for id in changed {
                guard let state = try? engine.freshStatus(id), state.currentPhase == phase,
                    feature == nil || state.featureID == feature
                else { continue }
                return report(state)
            }
        }
    }

    /// The one condition `validate` allows with an id.
    private var condition: WaitCondition {
        if let phase { return .phase(phase) }
        if let status, let parsed = InstanceStatus(rawValue: status) { return .status(parsed) }
        return .afterTransition(afterTransition ?? 0)
    }
}
