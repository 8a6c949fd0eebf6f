/// Where an instance stands, read without building the members that hold user data
/// (`variables`, `meta`), which can be large: what the watcher reads on every change. Everything
/// is checked exactly as `InstanceState` checks it (the skipped members too, as strict JSON
/// objects), so a file one refuses, the other refuses.
public struct InstanceSummary: Sendable, Hashable {
    public var instanceID: String
    public var featureID: String
    public var workflowName: String
    public var currentPhase: String
    public var previousPhase: String?
    public var status: InstanceStatus
    public var historyLength: Int
    /// Committed length of `history.ndjson`, and the open entry: where the history is.
    public var historyBytes: Int
    public var currentEntry: HistoryEntry?
    /// See `InstanceState.foreignEntries`.
    public var foreignEntries: [HistoryEntry]
    /// See `InstanceState.foreignLayout`.
    public var foreignLayout: String?

    /// The summary of a state.
    public init(_ state: InstanceState) {
        instanceID = state.instanceID
        featureID = state.featureID
        workflowName = state.workflowName
        currentPhase = state.currentPhase
        previousPhase = state.previousPhase
        status = state.status
        historyLength = state.historyLength
        historyBytes = state.historyBytes
        currentEntry = state.currentEntry
        foreignEntries = state.foreignEntries
        foreignLayout = state.foreignLayout
    }

    /// Members not built, only checked (see `JSONParser.parseMembers`).
    static let unbuilt: Set<String> = ["variables", "meta"]
}
