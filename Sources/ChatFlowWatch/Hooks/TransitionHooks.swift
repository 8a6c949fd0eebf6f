import ChatFlow
import Logging

/// A transition's hooks run as the watcher runs them (lookup, order, retries, `@hook-failed`,
/// run records and logs under `root`), for a watcher whose transitions come from elsewhere
/// (the PostgreSQL store's dispatch table).
///
/// Like the file watcher it holds `root`'s watcher lock (one watcher per host and state
/// directory), and before it runs anything it ends the hooks a watcher of `root` that died left
/// running (`OrphanRuns`).
package final class TransitionHooks: Sendable {
    private let dispatcher: HookDispatcher
    private let catalog: HookLookupCache
    private let lock: LockFile

    package init(root: String, configuration: WatchConfiguration, logger: Logger) throws(ChatFlowError) {
        let layout = Layout(root: root)
        let hooksDirectory = FileSystem.absolute(configuration.hooksDirectory ?? layout.hooksDirectory)
        let catalog = HookLookupCache(catalog: HookCatalog(directory: hooksDirectory))
        self.catalog = catalog
        try FileSystem.createDirectory(layout.instancesDirectory)
        try FileSystem.createDirectory(layout.locksDirectory)
        do {
            lock = try WatcherLock.acquire(layout)
        } catch {
            throw .store(operation: "watch", store: root, reason: "\(error)")
        }
        dispatcher = try HookDispatcher(layout: layout, hooksDirectory: hooksDirectory, configuration: configuration, catalog: catalog, logger: logger)
        dispatcher.settleOrphans()
    }

    /// Ends the running hooks' process groups (TERM, then KILL after `grace` or the kill
    /// grace); they are recorded as interrupted. How many there were.
    @discardableResult
    package func terminateAll(grace: Double? = nil) -> Int { dispatcher.terminateAll(grace: grace) }

    /// The names of the hooks `transition` runs (the event's, then `@any`'s).
    package func hookNames(for transition: Transition) -> [String] {
        catalog.hooks(for: [transition.event, "@any"]).hooks.map(\.name)
    }

    /// Runs every hook of `transition` to its end, with `stateText` on their stdin; `false` when
    /// `stopping` said to start no more, or shutdown interrupted one (the transition is not done).
    package func run(_ transition: Transition, stateText: [UInt8], stopping: @escaping @Sendable () -> Bool) async -> Bool {
        let (hooks, refused) = catalog.hooks(for: [transition.event, "@any"])
        let job = TransitionJob(transition: transition, stateText: stateText, hooks: hooks, refused: refused, started: nil)
        return await dispatcher.run(job, stopping: stopping)
    }
}

extension HookDispatcher {
    /// The dispatcher of a watcher with `configuration`, recording runs under `layout`.
    convenience init(
        layout: Layout, hooksDirectory: String, configuration: WatchConfiguration, catalog: HookLookupCache, logger: Logger
    ) throws(ChatFlowError) {
        self.init(
            settings: .init(
                root: layout.root, hooksDirectory: hooksDirectory, timeout: configuration.timeout, killGrace: configuration.killGrace,
                outputLimit: configuration.outputLimit, retry: configuration.retry),
            recorder: try RunRecorder(layout: layout, logger: logger), logger: logger,
            lookUp: { catalog.hooks(for: [$0]).hooks })
    }
}
