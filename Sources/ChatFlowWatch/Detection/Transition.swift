import ChatFlow

/// One thing hooks react to: a phase entered (including the first), or the instance finishing.
public struct Transition: Sendable, Hashable {
    public var instanceID: String
    public var featureID: String
    public var workflow: String
    /// Per instance: `k` for entering `history[k]`; `history_length` for completed/failed.
    /// With the instance id it is an idempotency key (`CHATFLOW_TRANSITION`).
    public var position: Int
    public var phase: String
    public var previousPhase: String?
    /// The instance's status right after this transition.
    public var status: String
    /// The hook event: the phase name, `@completed` or `@failed`.
    public var event: String

    public init(
        instanceID: String, featureID: String, workflow: String, position: Int, phase: String,
        previousPhase: String?, status: String, event: String
    ) {
        self.instanceID = instanceID
        self.featureID = featureID
        self.workflow = workflow
        self.position = position
        self.phase = phase
        self.previousPhase = previousPhase
        self.status = status
        self.event = event
    }
}

/// Recovers every transition of an instance since the last one dispatched, from its history.
public enum TransitionDetector {
    /// The position after the last transition `state` contains.
    public static func end(of state: InstanceSummary) -> Int {
        state.historyLength + (state.status.isFinished ? 1 : 0)
    }

    /// Transitions of `state` from position `next` on, in order. Positions before the current
    /// phase need the history: `history(start)` returns the entries from index `start` on. When
    /// it cannot explain the intermediate phases (written by another implementation, damaged),
    /// only the current phase and the terminal event are returned and `usedFallback` is set.
    public static func transitions(
        of state: InstanceSummary, from next: Int, history: (Int) -> [HistoryEntry]?
    ) -> (transitions: [Transition], usedFallback: Bool) {
        let end = end(of: state)
        guard next < end else { return ([], false) }
        let last = state.historyLength - 1
        var phases: [Int: String] = [last: state.currentPhase]
        var usedFallback = false
        var first = next
        if next < last {
            let start = max(0, next - 1)
            if let entries = history(start), entries.count == state.historyLength - start {
                for (offset, entry) in entries.enumerated() { phases[start + offset] = entry.phase }
            } else {
                usedFallback = true
                first = last
            }
        }
        var result: [Transition] = []
        for position in first..<end {
            var transition = Transition(
                instanceID: state.instanceID, featureID: state.featureID, workflow: state.workflowName,
                position: position, phase: state.currentPhase, previousPhase: state.previousPhase,
                status: state.status.rawValue, event: state.currentPhase)
            if position < state.historyLength {
                transition.phase = phases[position] ?? state.currentPhase
                transition.previousPhase = position == last ? state.previousPhase : position > 0 ? phases[position - 1] : nil
                transition.status = position == 0 ? InstanceStatus.created.rawValue : InstanceStatus.running.rawValue
                transition.event = transition.phase
            } else {
                transition.event = "@" + state.status.rawValue
                transition.previousPhase = state.currentPhase
            }
            result.append(transition)
        }
        return (result, usedFallback)
    }
}
