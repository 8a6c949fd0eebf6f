import ChatFlow

/// What the board shows of each instance: a card. One read of the run journal serves them all.
struct Board {
    let engine: WorkflowEngine

    /// Cards of every instance (of `feature`, in `status`), with the runs they need.
    func cards(feature: String? = nil, status: InstanceStatus? = nil, only id: String? = nil) throws(ChatFlowError) -> [JSONValue] {
        let now = Timestamps.unix()
        let states: [InstanceState]
        if let id {
            guard let state = try engine.freshStatus(id) else { throw .notFound(instanceID: id, root: engine.storeDescription) }
            states = [state]
        } else {
            states = try engine.list(feature: feature, status: status, unreadable: { _, _ in })
        }
        let journal = (try? RunJournal(layout: engine.layout).records(running: true, lastBytes: RunJournal.recentBytes)) ?? (ended: [], running: [])
        var ended: [String: [RunRecord]] = [:]
        for record in journal.ended { ended[record.instanceID, default: []].append(record) }
        var running: [String: [RunningHook]] = [:]
        for hook in journal.running { running[hook.instanceID, default: []].append(hook) }
        return states.map { card($0, ended: ended[$0.instanceID] ?? [], running: running[$0.instanceID] ?? [], now: now) }
    }

    private func card(_ state: InstanceState, ended: [RunRecord], running: [RunningHook], now: Double) -> JSONValue {
        var members: [String: JSONValue] = [
            "instance_id": .string(state.instanceID), "feature_id": .string(state.featureID),
            "workflow_name": .string(state.workflowName), "phases": .array(state.schema.phaseNames.map(JSONValue.string)),
            "current_phase": .string(state.currentPhase), "status": .string(state.status.rawValue),
            "transition": .number(JSONNumber(state.lastTransition)),
            "created_at": .number(JSONNumber(state.createdAt)), "updated_at": .number(JSONNumber(state.updatedAt)),
            "phase_started_at": .number(JSONNumber(state.currentEntry?.startedAt ?? state.updatedAt)),
            "running_hooks": .array(running.map { $0.report(now: now) }),
        ]
        if let claim = state.currentEntry?.claim, claim.isLive(at: now) {
            members["claim"] = ["owner": .string(claim.owner), "expires_at": .number(JSONNumber(claim.expiresAt))]
        }
        // The latest attempt of each hook of each transition; a later success clears a failure.
        var latest: [String: RunRecord] = [:]
        for record in ended { latest["\(record.transition) \(record.hook)"] = record }
        let problems = latest.values.filter { !$0.outcome.succeeded }.sorted { $0.startedAt < $1.startedAt }
        members["problems"] = .array(problems.map { record in
            [
                "hook": .string(record.hook), "transition": .number(JSONNumber(record.transition)),
                "outcome": .string(record.outcome.summary), "kind": .string(Self.kind(record.outcome)),
            ]
        })
        return .object(members)
    }

    static func kind(_ outcome: HookOutcome) -> String {
        switch outcome {
        case .timedOut: "timed_out"
        case .refused: "refused"
        default: "failed"
        }
    }
}
