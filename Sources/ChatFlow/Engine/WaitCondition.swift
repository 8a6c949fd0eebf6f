/// What a wait waits for (`chatflow wait`, `WorkflowEngine.wait`, the MCP `wait`).
public enum WaitCondition: Sendable, Hashable {
    /// The instance's current phase is this.
    case phase(String)
    case status(InstanceStatus)
    /// The instance has moved past transition N (or finished).
    case afterTransition(Int)

    public func holds(for state: InstanceState) -> Bool {
        switch self {
        case .phase(let phase): state.currentPhase == phase
        case .status(let status): state.status == status
        case .afterTransition(let transition): state.lastTransition > transition || state.status.isFinished
        }
    }

    /// Why the condition can never hold for this instance, or nil while it still may: a phase
    /// its workflow does not have (`invalid_input`), or an instance that finished without
    /// meeting it (`finished`: completed and failed are final).
    public func impossibility(for state: InstanceState) -> ChatFlowError? {
        if case .phase(let phase) = self, !state.schema.phases.contains(where: { $0.name == phase }) {
            return .unknownPhase(phase: phase, instanceID: state.instanceID, known: state.schema.phases.map(\.name))
        }
        guard state.status.isFinished, !holds(for: state) else { return nil }
        return .cannotHold(instanceID: state.instanceID, status: state.status, phase: state.currentPhase, wanted: description)
    }

    /// The condition in words: "in phase 'review'", "completed", "past transition 3".
    public var description: String {
        switch self {
        case .phase(let phase): "in phase \(IdentifierKind.quote(phase))"
        case .status(let status): status.rawValue
        case .afterTransition(let transition): "past transition \(transition)"
        }
    }
}

extension WorkflowEngine {
    /// A warning when no instance (of `feature`) has `phase` in its workflow, naming the
    /// phases they have; nil when one has it, or when there are no instances. A wait for any
    /// instance in a phase is not refused for it: an instance of a workflow not started yet may
    /// bring the phase. But a typo would wait forever, so the command says so.
    public func unknownPhaseWarning(_ phase: String, feature: String?) throws(ChatFlowError) -> String? {
        try Identifiers.validateName(phase, kind: .phaseName)
        var known: [String] = []
        for state in try list(feature: feature, phase: nil, unreadable: { _, _ in }) {
            let names = state.schema.phases.map(\.name)
            if names.contains(phase) { return nil }
            for name in names where !known.contains(name) { known.append(name) }
        }
        guard !known.isEmpty else { return nil }
        let scope = feature.map { "no instance of feature \(IdentifierKind.quote($0))" } ?? "no instance"
        return "\(scope) has phase \(IdentifierKind.quote(phase)) in its workflow (known phases: \(known.joined(separator: ", ")))"
    }
}
