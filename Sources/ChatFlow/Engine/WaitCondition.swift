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

extension WorkflowEngine {
    /// The wait until `condition` holds for instance `id` (`wait ID`): an unknown id is
    /// `notFound`, and what `WaitCondition.impossibility` names is thrown at once.
    public func waitPlan(for id: String, until condition: WaitCondition, timeout: Double?) throws(ChatFlowError) -> WaitPlan<InstanceState> {
        try Identifiers.validateInstanceID(id)
        if case .phase(let phase) = condition { try Identifiers.validateName(phase, kind: .phaseName) }
        try prepare()
        return WaitPlan(timeout: timeout, condition: "\(id) \(condition.description)") { [self] (change) throws(ChatFlowError) -> InstanceState? in
            if case .instance(let other) = change, other != id { return nil }
            guard let state = try freshStatus(id) else { throw .notFound(instanceID: id, root: storeDescription) }
            if condition.holds(for: state) { return state }
            if let impossible = condition.impossibility(for: state) { throw impossible }
            return nil
        }
    }

    /// The wait until any instance (of `feature`) is in `phase` (`wait --phase P`); one already
    /// there counts. A phase no instance's workflow has yet is waited for too, with a warning.
    public func waitPlan(anyIn phase: String, feature: String?, timeout: Double?) throws(ChatFlowError) -> WaitPlan<InstanceState> {
        try Identifiers.validateName(phase, kind: .phaseName)
        if let feature { try Identifiers.validateName(feature, kind: .featureID) }
        try prepare()
        let scope = feature.map { " of feature \(IdentifierKind.quote($0))" } ?? ""
        var plan = WaitPlan(timeout: timeout, condition: "an instance\(scope) in phase \(IdentifierKind.quote(phase))") {
            [self] (change) throws(ChatFlowError) -> InstanceState? in
            guard case .instance(let id) = change else {
                // Armed, or events were lost: look at every instance.
                invalidateAll()
                return try list(feature: feature, phase: phase, unreadable: { _, _ in }).first
            }
            guard let state = try? freshStatus(id), state.currentPhase == phase, feature == nil || state.featureID == feature else { return nil }
            return state
        }
        plan.warning = try unknownPhaseWarning(phase, feature: feature)
        return plan
    }

    /// `claim`, and when nothing is claimable either `nothingClaimable` or (`waiting`) the wait
    /// until something is. A lease that runs out changes no file, so a waiting claim also looks
    /// again every `recheck` seconds.
    public func claimPlan(
        phase: String, owner: String, feature: String?, ttl: Double, waiting: Bool, timeout: Double?, recheck: Double = 5
    ) throws(ChatFlowError) -> WaitPlan<ClaimGrant> {
        try prepare()
        if let grant = try claim(phase: phase, owner: owner, feature: feature, ttl: ttl) { return .done(grant) }
        // Nothing to take: a phase no workflow has may be a typo (looked at only here, off the
        // path of a claim that wins).
        let warning = try unknownPhaseWarning(phase, feature: feature)
        guard waiting else {
            throw .nothingClaimable(phase: phase, hint: warning.map { "; " + $0 } ?? " (claim with wait to wait for it)")
        }
        var plan = WaitPlan(timeout: timeout, recheckEvery: recheck, condition: "something in phase \(IdentifierKind.quote(phase)) claimable") {
            [self] (_) throws(ChatFlowError) -> ClaimGrant? in
            try claim(phase: phase, owner: owner, feature: feature, ttl: ttl)
        }
        plan.warning = warning
        return plan
    }
}
