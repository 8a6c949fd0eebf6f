/// Reads over many instances: a feature's aggregate, lists.
extension WorkflowEngine {
    /// Aggregate status of a feature, from its `.link` index (no directory scan).
    /// The original's `get_feature_status`.
    public func featureStatus(_ featureID: String) throws(ChatFlowError) -> FeatureStatus {
        try Identifiers.validateName(featureID, kind: .featureID)
        var result = FeatureStatus(
            featureID: featureID, totalInstances: 0, runningCount: 0, completedCount: 0, failedCount: 0,
            latestInstanceID: nil, status: "empty")
        var latestCreated = -Double.infinity
        for id in try backend.store.instanceIDs(feature: featureID) {
            guard let state = try status(id) else { continue }
            result.totalInstances += 1
            switch state.status {
            case .created, .running: result.runningCount += 1
            case .completed: result.completedCount += 1
            case .failed: result.failedCount += 1
            }
            if state.createdAt > latestCreated || (state.createdAt == latestCreated && id > result.latestInstanceID ?? "") {
                latestCreated = state.createdAt
                result.latestInstanceID = id
            }
        }
        if result.totalInstances > 0 {
            result.status =
                result.failedCount > 0 ? "failed" : result.completedCount == result.totalInstances ? "completed" : "running"
        }
        return result
    }

    /// Instances, optionally of one feature (through its link), in one status (`running`
    /// includes `created`) and/or in one phase, by id. With `unreadable`, a state that cannot be
    /// read is passed to it and skipped; without, the first one throws.
    public func list(
        feature: String? = nil, status wanted: InstanceStatus? = nil, phase: String? = nil,
        unreadable: ((String, ChatFlowError) -> Void)? = nil
    ) throws(ChatFlowError) -> [InstanceState] {
        if let feature { try Identifiers.validateName(feature, kind: .featureID) }
        let ids = try backend.store.instanceIDs(feature: feature)
        var states: [InstanceState] = []
        for id in ids {
            let state: InstanceState
            do {
                guard let read = try status(id) else { continue }
                state = read
            } catch {
                guard let unreadable else { throw error }
                unreadable(id, error)
                continue
            }
            if let wanted, !(state.status == wanted || (wanted == .running && state.status == .created)) { continue }
            if let phase, state.currentPhase != phase { continue }
            states.append(state)
        }
        return states
    }

    /// Ids of every state file in `instances/` (by file name; contents unchecked).
    public func instanceIDs() throws(ChatFlowError) -> [String] {
        try backend.store.instanceIDs(feature: nil)
    }
}
