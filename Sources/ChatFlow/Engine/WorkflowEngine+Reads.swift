/// Reads: served from the cache when fresh, or read fresh from the store.
extension WorkflowEngine {
    /// The instance's state, or `nil` if it does not exist; served from the cache when fresh.
    /// The original's `get_workflow_instance_status`.
    public func status(_ id: String) throws(ChatFlowError) -> InstanceState? {
        try Identifiers.validateInstanceID(id)
        let backend = backend
        if let cached = backend.cache.state(id) { return cached }
        let generation = backend.cache.generation
        guard let state = try backend.store.read(id) else { return nil }
        backend.cache.insert(state, readAt: generation)
        return state
    }

    /// The state read fresh from disk, bypassing and not filling the cache.
    public func freshStatus(_ id: String) throws(ChatFlowError) -> InstanceState? {
        try Identifiers.validateInstanceID(id)
        return try backend.store.read(id)
    }

    /// Where an instance stands and the state file's bytes, read fresh without building the
    /// whole state (see `InstanceSummary`); `nil` if it does not exist.
    /// With `waitingForWriter` false, a commit in progress is not waited for (its view, when it
    /// lands, is a change of its own): for the watcher.
    package func freshSummaryWithText(
        _ id: String, waitingForWriter: Bool = true
    ) throws(ChatFlowError) -> (summary: InstanceSummary, text: [UInt8])? {
        try Identifiers.validateInstanceID(id)
        return try backend.store.readWithText(id, skipping: InstanceSummary.unbuilt, waitingForWriter: waitingForWriter)
            .map { (InstanceSummary($0.state), $0.text) }
    }

    /// The whole history of an instance, oldest first, the open entry last.
    public func history(_ id: String) throws(ChatFlowError) -> [HistoryEntry] {
        guard let state = try freshStatus(id) else { throw .notFound(instanceID: id, root: storeDescription) }
        return try backend.store.history(of: state, from: 0)
    }

    /// Every history entry of `state` as compact JSON text, in order (for `status --json`: the
    /// stored lines are passed through, not rebuilt).
    package func historyText(of state: InstanceState) throws(ChatFlowError) -> [[UInt8]] {
        try backend.store.historyText(of: state)
    }

    /// History entries of `state` from index `start` on (the watcher's way to recover every
    /// phase entered since it last looked).
    public func history(of state: InstanceState, from start: Int) throws(ChatFlowError) -> [HistoryEntry] {
        try backend.store.history(of: state, from: start)
    }

    /// The same from a summary (`freshSummaryWithText`), which locates the history as well.
    public func history(of summary: InstanceSummary, from start: Int) throws(ChatFlowError) -> [HistoryEntry] {
        try backend.store.history(of: summary, from: start)
    }
}
