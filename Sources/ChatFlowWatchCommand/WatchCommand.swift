import ArgumentParser
import CChatFlowShims
import ChatFlow
import ChatFlowCommand
import ChatFlowWatch
import Dispatch
import Logging
import Synchronization

import Glibc

/// `chatflow-watch`: the background process of a dev session. Shared by `chatflow-watch` (the
/// files) and `chatflow-watch-pg` (`--store postgres://…`, which it execs): the file watcher
/// links no database driver, so it loads neither Foundation nor NIO (RSS, docs/BENCHMARKS.md).
package struct WatchCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "chatflow-watch",
        abstract: "Watch ChatFlow state and run per-phase hooks (see docs/HOOKS.md).",
        discussion: """
            Prints 'watching <root>/instances' to stderr once armed. The state directory is --root, else \
            $CHATFLOW_ROOT, else the nearest .chatflow upward; it must exist (`chatflow init`). Exit codes: \
            0 after SIGINT/SIGTERM or --once, 1 on error (another watcher on the same root, unreadable \
            root), 2 on bad usage, 3 when there is no state directory.
            """,
        version: ChatFlow.version)

    @Option(help: ArgumentHelp(
        "The state directory (default: $CHATFLOW_ROOT, else the nearest .chatflow upward).", valueName: "DIR"))
    package var root: String?

    @Option(help: ArgumentHelp(
        "Take transitions from a PostgreSQL store shared with other watchers (default: $CHATFLOW_STORE, else the files under the state directory).",
        valueName: "postgres://…"))
    package var store: String?

    @Option(help: "With --store: seconds a taken transition is held without renewal before another watcher may take it over.")
    package var lease: Double = 30

    @Option(help: "With --store: seconds between polls of the dispatch table (what finds expired leases, and every change where LISTEN is unavailable).")
    package var poll: Double = 2

    @Flag(help: "With --store: do not LISTEN (behind a transaction-pooling proxy); poll only.")
    package var noListen = false

    @Option(help: ArgumentHelp("Hooks directory (default: <root>/hooks).", valueName: "DIR"))
    var hooks: String?

    @Option(help: "Hooks running at once across instances (default: number of cores).")
    var jobs: Int?

    @Option(help: "Default per-hook timeout in seconds.")
    var timeout: Double = 600

    @Option(help: "Seconds running hooks get to finish after SIGINT/SIGTERM.")
    var shutdownGrace: Double = 30

    @Option(help: "Retries of a failed hook (attempts after the first), unless its '# chatflow-retries:' line says otherwise.")
    var retries: Int = 0

    @Option(help: "Seconds before the first retry; doubled each time with jitter (a hook's '# chatflow-retry-delay:').")
    var retryDelay: Double = 1

    @Option(help: "Longest wait between retries, in seconds.")
    var retryMaxDelay: Double = 300

    @Option(help: ArgumentHelp("Exit codes never retried, comma-separated (a hook's '# chatflow-no-retry-exit:').", valueName: "CODES"))
    var noRetryExit: String?

    @Flag(help: "Skip transitions made while the watcher was down.")
    var fromNow = false

    @Flag(help: "Process the backlog, then exit.")
    package var once = false

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(help: "text or json.")
    var logFormat: String = "text"

    package init() {}

    package func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard logFormat == "text" || logFormat == "json" else { throw ValidationError("--log-format must be text or json") }
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        guard timeout > 0, shutdownGrace >= 0 else { throw ValidationError("--timeout must be positive") }
        guard retries >= 0, retries <= 100 else { throw ValidationError("--retries must be between 0 and 100") }
        guard retryDelay >= 0, retryMaxDelay >= retryDelay else { throw ValidationError("--retry-delay must be ≥ 0 and ≤ --retry-max-delay") }
        guard lease >= 1, poll > 0, poll <= lease else { throw ValidationError("--lease must be at least 1 and --poll between 0 and --lease") }
        if let noRetryExit, noRetryExit.split(separator: ",").contains(where: { Int32($0) == nil }) {
            throw ValidationError("--no-retry-exit must be exit codes separated by commas, like 2,64")
        }
    }

    package func run() throws {
        // Before any thread starts: the catch-up reads states on several threads, and one arena
        // keeps their freed memory reusable (RSS at 100,000 instances 37.7 → 28.5 MB, same speed).
        chatflow_single_malloc_arena()
        let level = Logger.Level(rawValue: logLevel)!
        let json = logFormat == "json"
        LoggingSystem.bootstrap { label in
            if json {
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = TextLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "chatflow-watch")
        // A hook that closes its stdout early must not kill the watcher; an ignored SIGCHLD
        // inherited from the parent would have the kernel reap hooks before their status is read.
        signal(SIGPIPE, SIG_IGN)
        signal(SIGCHLD, SIG_DFL)

        // A database store is `chatflow-watch-pg`'s (`WatchMain` hands it over before parsing).
        let engine: WorkflowEngine
        var databaseURL: String?
        do throws(ChatFlowError) {
            if let url = StoreSelection.url(explicit: store) {
                guard StoreSelection.isPostgres(url), let shared = WatchMain.shared.withLock({ $0 }) else {
                    throw StoreSelection.unsupported(url, by: "chatflow-watch")
                }
                engine = try shared.open(url, root)
                databaseURL = url
            } else {
                engine = WorkflowEngine(root: try StateDirectory.find(explicit: root))
            }
        } catch {
            writeStandardError("chatflow-watch: error: \(error)\n")
            throw ExitCode(error.code == "invalid_input" ? 2 : 3)
        }
        var configuration = WatchConfiguration(jobs: jobs ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        configuration.hooksDirectory = hooks
        configuration.timeout = timeout
        configuration.shutdownGrace = shutdownGrace
        configuration.fromNow = fromNow
        configuration.once = once
        configuration.retries = retries
        configuration.retryDelay = retryDelay
        configuration.retryMaxDelay = retryMaxDelay
        configuration.noRetryExitCodes = (noRetryExit ?? "").split(separator: ",").compactMap { Int32($0) }

        let shutdown = ShutdownSignal()
        // On a thread of its own, started now: a signal then needs no new thread.
        let handled = SignalThread.start([SIGINT, SIGTERM]) { number in
            logger.info("signal received", metadata: ["signal": "\(number)"])
            SystemdNotify.send("STOPPING=1")
            shutdown.request()
        }
        if !handled { logger.warning("no thread for signals: SIGINT and SIGTERM end the watcher at once, without its grace") }

        if let databaseURL, let shared = WatchMain.shared.withLock({ $0 }) {
            do {
                try shared.run(databaseURL, engine.root, self, configuration, shutdown, logger)
            } catch {
                writeStandardError("chatflow-watch: error: \(error)\n")
                throw ExitCode(1)
            }
            return
        }
        let service = WatchService(engine: engine, configuration: configuration, logger: logger)
        do {
            // Blocking, on the watcher's own threads: this process then has no thread pool of
            // Swift concurrency, whose monitor would wake it every second.
            try service.runBlocking(shutdown: shutdown) { directory in
                writeStandardError("watching \(directory)\n")
                SystemdNotify.send("READY=1\nSTATUS=watching \(directory)")
            }
        } catch {
            writeStandardError("chatflow-watch: error: \(error)\n")
            throw ExitCode(1)
        }
    }
}
