import ArgumentParser
import ChatFlow
import ChatFlowCommand
import ChatFlowWatch
import Logging
import Synchronization

import Glibc

/// The `chatflow-watch` program, shared by `chatflow-watch` and `chatflow-watch-pg`: which binary
/// runs decides whether a database store can be opened here or is handed over by `exec`.
package enum WatchMain {
    /// What a binary that links a database store (`chatflow-watch-pg`) provides.
    package struct SharedWatcher: Sendable {
        /// Opens the engine on the store at the URL, with this host's state directory (`--root`).
        package var open: @Sendable (_ url: String, _ root: String?) throws(ChatFlowError) -> WorkflowEngine
        /// Runs one of the watchers sharing the store's dispatch table until `shutdown`.
        package var run: @Sendable (
            _ url: String, _ root: String, _ command: WatchCommand, _ configuration: WatchConfiguration,
            _ shutdown: ShutdownSignal, _ logger: Logger
        ) throws -> Void

        package init(
            open: @escaping @Sendable (String, String?) throws(ChatFlowError) -> WorkflowEngine,
            run: @escaping @Sendable (String, String, WatchCommand, WatchConfiguration, ShutdownSignal, Logger) throws -> Void
        ) {
            self.open = open
            self.run = run
        }
    }

    /// Set by `run` in `chatflow-watch-pg`.
    static let shared = Mutex<SharedWatcher?>(nil)

    // Exit codes: 0 stopped or done, 1 error, 2 bad usage (ArgumentParser's own is 64), 3 no state
    // directory; help and --version go to stdout with exit 0.
    package static func run(shared: SharedWatcher? = nil) -> Never {
        self.shared.withLock { $0 = shared }
        let arguments = Array(CommandLine.arguments.dropFirst())
        // A PostgreSQL store is chatflow-watch-pg's: it links postgres-nio, NIO and Foundation,
        // which the file watcher does not load. Handed over before anything else.
        if shared == nil, let url = StoreSelection.url(inArguments: arguments), StoreSelection.isPostgres(url) {
            do {
                try CommandMain.exec("chatflow-watch-pg", arguments, purpose: "the PostgreSQL store", beside: "chatflow-watch")
            } catch {
                writeStandardError("chatflow-watch: error: \(error)\n")
                exit(1)
            }
        }
        do {
            var command = try WatchCommand.parseAsRoot(arguments)
            try command.run()
        } catch let error as ExitCode {
            exit(error.rawValue)
        } catch {
            if WatchCommand.exitCode(for: error) == .success {
                print(WatchCommand.fullMessage(for: error))
                exit(0)
            }
            writeStandardError("chatflow-watch: error: \(WatchCommand.message(for: error)) (see `chatflow-watch --help`)\n")
            exit(2)
        }
        exit(0)
    }
}
