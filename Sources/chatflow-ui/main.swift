import ArgumentParser
import ChatFlow
import ChatFlowPostgres
import ChatFlowUI
import Dispatch
import Glibc
import Logging

/// The entry: on the files store every task runs on the server's event-loop threads, and the
/// main thread only waits. An async `main` would run on the main actor, which Dispatch serves
/// with a thread it starts on demand: under a thread limit the server could then never finish
/// its shutdown. The PostgreSQL store keeps the default pool: its client blocks on futures,
/// which must not happen on an event loop.
@main
enum Entry {
    static func main() {
        if !(StoreSelection.url(inArguments: CommandLine.arguments).map(StoreSelection.isPostgres) ?? false) {
            UIServer.runConcurrencyOnEventLoops()
        }
        let done = DispatchSemaphore(value: 0)
        // Detached: `main` is the main actor's, which this thread, waiting, does not serve.
        Task.detached {
            await ChatflowUI.main()
            done.signal()
        }
        done.wait()
    }
}

/// `chatflow-ui` (also `chatflow ui`): the live web view and its JSON API.
struct ChatflowUI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatflow-ui",
        abstract: "Serve ChatFlow's live web view and JSON API (read-only unless --actions).",
        discussion: """
            Binds 127.0.0.1 by default. Any other address needs an access token (--token-file FILE \
            or $CHATFLOW_UI_TOKEN); so do --actions (trigger, release a claim, rerun a hook from the \
            page). It prints the URL to open on stderr. Exit codes: 0 stopped (SIGINT, SIGTERM), \
            1 error, 2 usage (a refused bind too), 3 no state directory.
            """,
        version: ChatFlow.version)

    @Option(help: ArgumentHelp("The state directory (default: $CHATFLOW_ROOT, else the nearest .chatflow upward).", valueName: "DIR"))
    var root: String?

    @Option(help: ArgumentHelp(StoreSelection.optionHelp, valueName: "URL"))
    var store: String?

    @Option(help: "The address to listen on.")
    var bind: String = "127.0.0.1"

    @Option(help: "The port (0: any free one; the URL printed says which).")
    var port: Int = 8750

    @Option(help: ArgumentHelp("A file whose first line is the access token (else $CHATFLOW_UI_TOKEN).", valueName: "FILE"))
    var tokenFile: String?

    @Flag(help: "Allow actions from the page: trigger, release a claim, rerun a hook (needs a token).")
    var actions = false

    @Option(help: "Seconds a connection may stay silent outside a request before it is closed.")
    var idleTimeout: Double = 60

    @Option(help: "Log level on stderr: trace, debug, info, notice, warning, error.")
    var logLevel: String = "notice"

    static func main() async {
        do {
            var command = try parseAsRoot()
            if let server = command as? ChatflowUI { try await server.run() } else { try command.run() }
        } catch let code as ExitCode {
            Glibc.exit(code.rawValue)
        } catch let error as UIError {
            writeStandardError("chatflow-ui: error: \(error.message)\n")
            Glibc.exit(error.code == "invalid_input" ? 2 : 1)
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            writeStandardError(fullMessage(for: error) + "\n")
            Glibc.exit(2)
        }
    }

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: \(IdentifierKind.quote(logLevel)) is not a level") }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let level = Logger.Level(rawValue: logLevel) ?? .notice
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var token = getenv("CHATFLOW_UI_TOKEN").map { String(cString: $0) }
        if let tokenFile {
            let bytes: [UInt8]
            do {
                let file = try FileDescriptor(opening: tokenFile, flags: O_RDONLY)
                bytes = try file.readAll(limit: 4096)
            } catch {
                throw ValidationError("--token-file \(tokenFile): \(error)")
            }
            token = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first.map(String.init)
        }
        if let value = token, value.count < 16 { throw ValidationError("the access token must be at least 16 characters") }
        guard idleTimeout > 0 else { throw ValidationError("--idle-timeout must be a positive number of seconds") }
        let configuration = {
            var configuration = UIConfiguration(bind: bind, port: port, token: token?.isEmpty == false ? token : nil, actions: actions)
            configuration.idleTimeout = idleTimeout
            return configuration
        }()
        do { try configuration.validate() } catch { throw error }
        let opened: OpenedStore
        do {
            opened = try OpenedStore(store: store, root: root, program: "chatflow-ui")
        } catch {
            writeStandardError("chatflow-ui: error: \(error.description)\n")
            throw ExitCode(error.code == "not_found" ? 3 : error.code == "invalid_input" ? 2 : 1)
        }
        let server = UIServer(engine: opened.engine, configuration: configuration, changes: opened.changes, logger: Logger(label: "chatflow-ui"))
        let host = bind.contains(":") ? "[\(bind)]" : bind
        try await server.run { port in
            let suffix = configuration.token.map { "?token=\($0)" } ?? ""
            writeStandardError("chatflow-ui: serving \(opened.url == nil ? opened.engine.root : opened.engine.storeDescription) on http://\(host):\(port)/\(suffix)\n")
        }
    }
}
