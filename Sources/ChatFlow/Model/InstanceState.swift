/// An instance's lifecycle status.
public enum InstanceStatus: String, Sendable, Hashable, CaseIterable {
    case created, running, completed, failed

    /// Completed and failed instances accept no further triggers.
    public var isFinished: Bool { self == .completed || self == .failed }
}

/// The status of one history entry.
public enum EntryStatus: String, Sendable, Hashable {
    case running, completed, failed
}

/// One phase entered by an instance, with the data that closed it.
public struct HistoryEntry: Sendable, Hashable {
    public var phase: String
    public var task: String?
    public var startedAt: Double
    public var endedAt: Double?
    public var status: EntryStatus
    /// The trigger data that ended this phase (`null` while the phase is open).
    public var triggerDataSnapshot: JSONValue
    /// Who works on the open phase, with a lease (`chatflow claim`); a transition clears it.
    public var claim: Claim? = nil

    public init(
        phase: String, task: String?, startedAt: Double, endedAt: Double? = nil,
        status: EntryStatus = .running, triggerDataSnapshot: JSONValue = .null
    ) {
        self.phase = phase
        self.task = task
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.status = status
        self.triggerDataSnapshot = triggerDataSnapshot
    }
}

/// A lease on an instance's open phase: its owner, the token that proves it, until when.
public struct Claim: Sendable, Hashable {
    public var owner: String
    public var token: String
    public var expiresAt: Double

    public init(owner: String, token: String, expiresAt: Double) {
        self.owner = owner
        self.token = token
        self.expiresAt = expiresAt
    }

    /// Still held at `now` (Unix seconds).
    public func isLive(at now: Double) -> Bool { expiresAt > now }
}

/// The state of one workflow instance as stored in `instances/wfi_<id>.json`.
///
/// The closed history entries live in `instances/wfi_<id>/history.ndjson` (see docs/FORMAT.md):
/// the state file carries how many there are (`historyLength`), how many bytes of that file are
/// committed (`historyBytes`) and the open entry (`currentEntry`), so reading and writing the state
/// costs the same at history 10 and 10,000.
public struct InstanceState: Sendable, Hashable {
    /// 2: the history's last commit line, not the state file, is the commit point (docs/FORMAT.md).
    public static let formatVersion = 2

    public var instanceID: String
    public var featureID: String
    public var workflowName: String
    public var schema: WorkflowSchema
    public var currentPhase: String
    /// The phase entered before `currentPhase` (`nil` for the first), so a reader needs no history.
    public var previousPhase: String?
    public var status: InstanceStatus
    public var variables: [String: JSONValue]
    public var meta: [String: JSONValue]
    public var createdAt: Double
    public var updatedAt: Double
    /// Entries in the whole history: the closed ones in `history.ndjson` plus the open one.
    public var historyLength: Int
    /// Committed length in bytes of `history.ndjson`; bytes past it are an uncommitted tail.
    public var historyBytes: Int
    /// The open entry of the current phase; `nil` once the instance is completed or failed.
    public var currentEntry: HistoryEntry?
    /// Closed entries that another writer left in the state file itself (the original v1.0
    /// layout, or a phase moved without a history entry), after those in `history.ndjson`. The
    /// engine's next write moves them there; this format never writes them.
    public var foreignEntries: [HistoryEntry] = []
    /// Why the file was read as another writer's layout (`nil` for this format's own files).
    public var foreignLayout: String?

    /// The index in history of the phase entered last: the transition number hooks see.
    public var lastTransition: Int { historyLength - 1 }

    public init(
        instanceID: String, featureID: String, workflowName: String, schema: WorkflowSchema,
        currentPhase: String, previousPhase: String? = nil, status: InstanceStatus, variables: [String: JSONValue],
        meta: [String: JSONValue], createdAt: Double, updatedAt: Double, historyLength: Int,
        historyBytes: Int, currentEntry: HistoryEntry?
    ) {
        self.instanceID = instanceID
        self.featureID = featureID
        self.workflowName = workflowName
        self.schema = schema
        self.currentPhase = currentPhase
        self.previousPhase = previousPhase
        self.status = status
        self.variables = variables
        self.meta = meta
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.historyLength = historyLength
        self.historyBytes = historyBytes
        self.currentEntry = currentEntry
    }
}

/// Aggregate status of a feature's instances, read through the `.link` index.
public struct FeatureStatus: Sendable, Hashable {
    public var featureID: String
    public var totalInstances: Int
    public var runningCount: Int
    public var completedCount: Int
    public var failedCount: Int
    /// The most recently created instance.
    public var latestInstanceID: String?
    /// `empty` with no instances, `failed` if any failed, `completed` if all completed, else `running`.
    public var status: String
}
