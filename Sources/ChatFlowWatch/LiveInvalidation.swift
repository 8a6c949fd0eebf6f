import ChatFlow

/// Live cache invalidation for any long-running process that uses the engine.
public enum LiveInvalidation {
    /// Drops `engine`'s cached state of an instance the moment any process changes it, through
    /// the process's single inotify source, so reads are current within milliseconds instead of
    /// up to the 30 s TTL. Returns a token for `disable`.
    @discardableResult
    public static func enable(for engine: WorkflowEngine = ChatFlow.engine) async throws(WatchError) -> Int {
        do {
            try engine.prepare()
        } catch {
            throw .state(ChatFlowErrorDescription(text: error.description))
        }
        return try await FileEventSource.shared.subscribe(directory: engine.layout.instancesDirectory) { event in
            switch event {
            case .changed(let name):
                if let id = Layout.instanceID(fromStateFileName: name) { engine.invalidate(id) }
            case .rescan:
                engine.invalidateAll()
            }
        }
    }

    /// Stops live invalidation started with `enable`.
    public static func disable(_ token: Int) async {
        await FileEventSource.shared.unsubscribe(token)
    }
}
