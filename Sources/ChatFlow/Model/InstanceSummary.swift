/// The fields of an instance's state that say where it stands, read without building the
/// members that hold user data (`variables`, `meta`), which can be large. The watcher reads this
/// on every change. Everything else is checked exactly as `InstanceState` checks it (the skipped
/// members too are checked to be strict JSON objects), so a file one refuses, the other refuses.
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

    /// Members not built, only checked (see `JSONParser.parseMembers`).
    static let unbuilt: Set<String> = ["variables", "meta"]

    /// Validates `members` as a state (with the unbuilt members standing in as empty values of their kind).
    init(members: [String: JSONValue]) throws(StateDecodingError) {
        self.init(try InstanceState(json: .object(members)))
    }
}
