/// Failures of the watcher.
public enum WatchError: Error, Sendable, CustomStringConvertible {
    case watchFailed(path: String, reason: String)
    case alreadyWatching(root: String, pid: String)
    case state(ChatFlowErrorDescription)

    public var description: String {
        switch self {
        case .watchFailed(let path, let reason):
            // No inotify instance at all is the per-user instance limit, not the watch limit.
            reason.hasPrefix(FileEventSource.initialisationFailure)
                ? "cannot watch \(path): \(reason) (this user's inotify instances are used up: raise fs.inotify.max_user_instances, or end the processes holding them)"
                : "cannot watch \(path): \(reason) (check that it exists; raise fs.inotify.max_user_watches if the limit is reached)"
        case .alreadyWatching(let root, let pid):
            "another chatflow-watch\(pid.isEmpty ? "" : " (pid \(pid))") is already watching \(root); stop it first"
        case .state(let error):
            error.text
        }
    }
}

/// A `ChatFlowError`'s text, so `WatchError` stays independent of its cases.
public struct ChatFlowErrorDescription: Sendable {
    public let text: String
}
