import ChatFlow
import ChatFlowWatch

/// What a long-running process opens for `--store URL` (else `$CHATFLOW_STORE`, else the files
/// under the state directory): the engine, and the change source that goes with its store.
public struct OpenedStore: Sendable {
    public let engine: WorkflowEngine
    /// inotify on `instances/` for the files, LISTEN for PostgreSQL.
    public let changes: any InstanceChangeSource
    /// The store's URL when it is a database.
    public let url: String?

    /// `root` as `--root` gives it; with a database store this host's part of the state
    /// directory (hooks, runs, artifacts) is created when missing. `program` names the
    /// executable in the error for a store it cannot open.
    public init(store: String?, root: String?, program: String) throws(ChatFlowError) {
        guard let url = StoreSelection.url(explicit: store) else {
            engine = WorkflowEngine(root: try StateDirectory.find(explicit: root))
            changes = FileChangeSource(layout: engine.layout)
            self.url = nil
            return
        }
        guard StoreSelection.isPostgres(url) else { throw StoreSelection.unsupported(url, by: program) }
        engine = try WorkflowEngine.postgres(url: url, root: try StateDirectory.forDatabaseStore(explicit: root))
        changes = try PostgresChangeSource(url: url)
        self.url = url
    }
}
