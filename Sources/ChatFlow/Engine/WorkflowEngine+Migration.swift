extension WorkflowEngine {
    /// An instance as `chatflow migrate` moves it: its state and every closed entry (the open
    /// one is in the state).
    package struct StoredInstance: Sendable {
        package var state: InstanceState
        package var entries: [HistoryEntry]

        package init(state: InstanceState, entries: [HistoryEntry]) {
            self.state = state
            self.entries = entries
        }
    }

    /// Every instance with its closed entries, each read under its lock (so a file store's
    /// crashed writer is recovered first), in id order.
    package func storedInstances() throws(ChatFlowError) -> [StoredInstance] {
        let store = backend.store
        var instances: [StoredInstance] = []
        for id in try store.instanceIDs(feature: nil) {
            let found = try store.withInstanceLock(id) { () throws(ChatFlowError) -> StoredInstance? in
                guard var (state, _) = try store.readLocked(id, skipping: []) else { return nil }
                let entries = Array(try store.history(of: state, from: 0).prefix(state.closedEntryCount))
                // Entries another writer left inline are stored apart from now on, as the
                // engine's next commit of the instance would store them.
                state.foreignEntries = []
                state.foreignLayout = nil
                return StoredInstance(state: state, entries: entries)
            }
            if let found { instances.append(found) }
        }
        return instances
    }

    /// Whether this engine's store has the instance.
    package func hasInstance(_ id: String) -> Bool { backend.store.exists(id) }

    /// Writes an instance copied from another store into this engine's state directory (the
    /// file store; see `StateStore.importInstance`).
    package func importInstance(_ instance: StoredInstance) throws(ChatFlowError) {
        try backend.store.importInstance(instance.state, closing: instance.entries)
        invalidate(instance.state.instanceID)
    }
}
