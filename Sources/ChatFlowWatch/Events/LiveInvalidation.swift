import ChatFlow

/// Live cache invalidation for any long-running process that uses the engine.
public enum LiveInvalidation {
    /// Drops `engine`'s cached state of an instance the moment any process changes it, through
    /// `changes` (by default the process's single inotify source on the engine's state
    /// directory), so reads are current within milliseconds instead of up to the 30 s TTL.
    /// Returns a token for `disable`.
    @discardableResult
    public static func enable(
        for engine: WorkflowEngine = ChatFlow.engine, changes: (any InstanceChangeSource)? = nil
    ) async throws(WatchError) -> Int {
        do {
            try engine.prepare()
        } catch {
            throw .state(ChatFlowErrorDescription(text: error.description))
        }
        let source = changes ?? FileChangeSource(layout: engine.layout)
        return try await source.subscribe(invalidating(engine))
    }

    /// A change handler that drops `engine`'s cached state of what changed, then calls `next`:
    /// for a server that reacts to changes, so a read its reaction makes is of the new state.
    public static func invalidating(
        _ engine: WorkflowEngine, then next: @escaping @Sendable (InstanceChange) -> Void = { _ in }
    ) -> @Sendable (InstanceChange) -> Void {
        { change in
            switch change {
            case .instance(let id): engine.invalidate(id)
            case .rescanAll: engine.invalidateAll()
            }
            next(change)
        }
    }

    /// Stops live invalidation started with `enable` (pass the same `changes`).
    public static func disable(_ token: Int, changes: (any InstanceChangeSource)? = nil) async {
        if let changes {
            await changes.unsubscribe(token)
        } else {
            await FileEventSource.shared.unsubscribe(token)
        }
    }
}
