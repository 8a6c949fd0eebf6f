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
    /// Refuses a wait or a claim for a phase that no instance (of `feature`) has in its
    /// workflow: a typo would otherwise wait forever. With no instance at all, anything may
    /// still come, so nothing is refused.
    public func checkPhaseKnown(_ phase: String, feature: String?) throws(ChatFlowError) {
        try Identifiers.validateName(phase, kind: .phaseName)
        var known: [String] = []
        for state in try list(feature: feature, phase: nil, unreadable: { _, _ in }) {
            let names = state.schema.phases.map(\.name)
            if names.contains(phase) { return }
            for name in names where !known.contains(name) { known.append(name) }
        }
        guard !known.isEmpty else { return }
        throw .unknownPhase(phase: phase, instanceID: feature.map { "any instance of feature \(IdentifierKind.quote($0))" } ?? "any instance", known: known)
    }
}
