import ChatFlow
import ChatFlowPostgres
import ChatFlowWatch
import ChatFlowWatchCommand
import Dispatch
import Synchronization

// `chatflow-watch` with the PostgreSQL store linked: `chatflow-watch --store postgres://…` execs
// this. One of the watchers sharing the database's dispatch table.
WatchMain.run(shared: .init(
    open: { (url, root) throws(ChatFlowError) in
        try OpenedStore(store: url, root: root, program: "chatflow-watch").engine
    },
    run: { url, root, command, configuration, shutdown, logger in
        var settings = PostgresWatcher.Settings()
        settings.lease = command.lease
        settings.poll = command.poll
        settings.listen = !command.noListen
        settings.once = command.once
        let watcher = try PostgresWatcher(
            store: try PostgresStore(url: url), root: root, configuration: configuration, settings: settings, logger: logger)
        let outcome = Mutex<ChatFlowError?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do throws(ChatFlowError) {
                try await watcher.run(shutdown: shutdown) {
                    writeStandardError("watching \(url.split(separator: "@").last.map { "postgres://…@" + $0 } ?? url) as \(watcher.owner)\n")
                    SystemdNotify.send("READY=1")
                }
            } catch {
                outcome.withLock { $0 = error }
            }
            done.signal()
        }
        done.wait()
        if let error = outcome.withLock({ $0 }) { throw error }
    }))
