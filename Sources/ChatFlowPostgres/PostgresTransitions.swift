import ChatFlow
import ChatFlowWatch

/// A transition as the dispatch table stores it: compact JSON of the `Transition` fields.
enum PostgresTransitions {
    static func text(_ transition: Transition) -> String {
        var members: [String: JSONValue] = [
            "instance_id": .string(transition.instanceID), "feature_id": .string(transition.featureID),
            "workflow": .string(transition.workflow), "position": JSONValue(transition.position),
            "phase": .string(transition.phase), "status": .string(transition.status), "event": .string(transition.event),
        ]
        members["previous_phase"] = transition.previousPhase.map(JSONValue.string) ?? .null
        return JSONValue.object(members).compactText
    }

    static func transition(_ text: String) -> Transition? {
        guard let members = (try? JSONValue(parsing: Array(text.utf8)))?.objectValue,
              case .string(let id)? = members["instance_id"], case .string(let feature)? = members["feature_id"],
              case .string(let workflow)? = members["workflow"], let position = members["position"]?.intValue,
              case .string(let phase)? = members["phase"], case .string(let status)? = members["status"],
              case .string(let event)? = members["event"]
        else { return nil }
        var previous: String?
        if case .string(let value)? = members["previous_phase"] { previous = value }
        return Transition(
            instanceID: id, featureID: feature, workflow: workflow, position: position, phase: phase,
            previousPhase: previous, status: status, event: event)
    }
}
