/// The fields of an instance's state that say where it stands, read without building the rest
/// (variables, meta, the schema and the open entry's snapshot can be large). The watcher reads
/// this on every change: the whole file is still checked to be valid JSON, and these fields
/// are checked as strictly as `InstanceState` checks them, except against the schema.
public struct InstanceSummary: Sendable, Hashable {
    public var instanceID: String
    public var featureID: String
    public var workflowName: String
    public var currentPhase: String
    public var previousPhase: String?
    public var status: InstanceStatus
    public var historyLength: Int

    public init(
        instanceID: String, featureID: String, workflowName: String, currentPhase: String, previousPhase: String?,
        status: InstanceStatus, historyLength: Int
    ) {
        self.instanceID = instanceID
        self.featureID = featureID
        self.workflowName = workflowName
        self.currentPhase = currentPhase
        self.previousPhase = previousPhase
        self.status = status
        self.historyLength = historyLength
    }

    /// The summary of a full state.
    public init(_ state: InstanceState) {
        self.init(
            instanceID: state.instanceID, featureID: state.featureID, workflowName: state.workflowName,
            currentPhase: state.currentPhase, previousPhase: state.previousPhase, status: state.status,
            historyLength: state.historyLength)
    }

    static let keys: Set<String> = [
        "instance_id", "feature_id", "workflow_name", "current_phase", "previous_phase", "status", "history_length",
    ]

    init(members: [String: JSONValue]) throws(StateDecodingError) {
        let reader = try JSONObjectReader(.object(members), context: "the state")
        let statusText = try reader.string("status")
        guard let status = InstanceStatus(rawValue: statusText) else {
            throw StateDecodingError(reason: "status '\(statusText)' is not created, running, completed or failed")
        }
        self.init(
            instanceID: try reader.string("instance_id"), featureID: try reader.string("feature_id"),
            workflowName: try reader.string("workflow_name"), currentPhase: try reader.string("current_phase"),
            previousPhase: try reader.optionalString("previous_phase"), status: status,
            historyLength: try reader.int("history_length"))
        guard Identifiers.isInstanceID(instanceID) else {
            throw StateDecodingError(reason: "instance_id '\(instanceID)' is not a valid instance id")
        }
        if let problem = Identifiers.nameProblem(featureID) {
            throw StateDecodingError(reason: "feature_id: \(problem)")
        }
        for (key, phase) in [("current_phase", currentPhase), ("previous_phase", previousPhase ?? currentPhase)] {
            if let problem = Identifiers.nameProblem(phase) { throw StateDecodingError(reason: "\(key): \(problem)") }
        }
        guard historyLength >= 1 else {
            throw StateDecodingError(reason: "history_length \(historyLength) must be at least 1")
        }
    }
}
