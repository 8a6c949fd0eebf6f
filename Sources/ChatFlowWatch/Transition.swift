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
}

/// Recovers every transition of an instance since the last one dispatched, from its history.
public enum TransitionDetector {
    /// The position after the last transition `state` contains.
    public static func end(of state: InstanceState) -> Int {
        state.historyLength + (state.status.isFinished ? 1 : 0)
    }

    /// Transitions of `state` from position `next` on, in order. When the history file cannot
    /// explain intermediate phases (written by another implementation, damaged), only the
    /// current phase and the terminal event are returned and `usedFallback` is set.
    public static func transitions(
        of state: InstanceState, from next: Int, engine: WorkflowEngine
    ) -> (transitions: [Transition], usedFallback: Bool) {
        let end = end(of: state)
        guard next < end else { return ([], false) }
        let last = state.historyLength - 1
        var phases: [Int: String] = [last: state.currentPhase]
        var usedFallback = false
        var first = next
        if next < last {
            if let entries = try? engine.history(of: state, from: max(0, next - 1)), entries.count == state.historyLength - max(0, next - 1) {
                for (offset, entry) in entries.enumerated() { phases[max(0, next - 1) + offset] = entry.phase }
            } else {
                usedFallback = true
                first = last
            }
        }
        var result: [Transition] = []
        for position in first..<end {
            let base = Transition(
                instanceID: state.instanceID, featureID: state.featureID, workflow: state.workflowName,
                position: position, phase: state.currentPhase, previousPhase: state.previousPhase,
                status: state.status.rawValue, event: state.currentPhase)
            var transition = base
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
