import ArgumentParser
import ChatFlow
import ChatFlowPostgres
import ChatFlowMCP
import Glibc
import Logging
import MCP

/// `chatflow-mcp`: the MCP server over stdio. stdout carries only JSON-RPC; logs go to stderr.
@main
struct ChatflowMCP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatflow-mcp",
        abstract: "ChatFlow's operations as Model Context Protocol tools, over stdio.",
        discussion: """
            Start it from an MCP client (docs/AGENTS.md; --print-config CLIENT prints the snippet). \
            State lives in --root DIR, else $CHATFLOW_ROOT, else the nearest .chatflow upward from \
            the directory the client starts it in. Exit codes: 0 when the client closes stdin, \
            1 error, 2 usage, 3 no state directory.
            """,
        version: ChatFlow.version)

    @Option(help: ArgumentHelp("The state directory (default: $CHATFLOW_ROOT, else the nearest .chatflow upward).", valueName: "DIR"))
    var root: String?

    @Option(help: ArgumentHelp(StoreSelection.optionHelp, valueName: "URL"))
    var store: String?

    @Option(help: ArgumentHelp(
        "Print the configuration snippet for CLIENT (\(ClientConfiguration.allCases.map(\.rawValue).joined(separator: ", "))) and exit.",
        valueName: "CLIENT"))
    var printConfig: String?

    @Option(help: "Log level on stderr: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "notice"

    /// Usage errors exit 2, as `chatflow`'s do (ArgumentParser's own is 64).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if let server = command as? ChatflowMCP { try await server.run() } else { try command.run() }
        } catch let code as ExitCode {
            Glibc.exit(code.rawValue)
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            writeStandardError(fullMessage(for: error) + "\n")
            Glibc.exit(2)
        }
    }

    func validate() throws {
        if let printConfig, ClientConfiguration(rawValue: printConfig) == nil {
            throw ValidationError(
                "--print-config takes one of \(ClientConfiguration.allCases.map(\.rawValue).joined(separator: ", ")), not \(IdentifierKind.quote(printConfig))")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: \(IdentifierKind.quote(logLevel)) is not a level") }
        if printConfig != nil, let root, (try? StateDirectory.find(explicit: root)) == nil {
            throw ValidationError("--root \(IdentifierKind.quote(root)) is not a state directory (run chatflow init there)")
        }
    }

    func run() async throws {
        if let client = printConfig.flatMap(ClientConfiguration.init(rawValue:)) {
            // stdout is the snippet alone, so `--print-config vscode > .vscode/mcp.json` works.
            writeStandardError("chatflow-mcp: for \(client.file):\n")
            print(client.snippet(command: Self.executablePath(), arguments: Self.serverArguments(root: root, store: store)))
            return
        }
        let level = Logger.Level(rawValue: logLevel) ?? .notice
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        // A client that goes away must end the server with an error on write, not a signal.
        signal(SIGPIPE, SIG_IGN)
        let opened: OpenedStore
        do {
            opened = try OpenedStore(store: store, root: root, program: "chatflow-mcp")
        } catch {
            writeStandardError("chatflow-mcp: error: \(error.description)\n")
            throw ExitCode(error.code == "not_found" ? 3 : error.code == "invalid_input" ? 2 : 1)
        }
        let server = ChatFlowMCPServer(engine: opened.engine, changes: opened.changes, logger: Logger(label: "chatflow-mcp"))
        try await server.run(transport: StandardIOTransport(logger: Logger(label: "chatflow-mcp.stdio")))
    }

    /// This binary's absolute path, so the snippet works whatever the client's PATH.
    static func executablePath() -> String { FileSystem.executablePath() ?? "chatflow-mcp" }

    /// `--root` with the state directory's absolute path when one is given or found; none
    /// otherwise (the server then looks upward from where the client starts it).
    /// A `--store` given on the command line is passed on as given.
    static func serverArguments(root: String?, store: String?) -> [String] {
        let storeArguments = store.map { ["--store", $0] } ?? []
        guard let found = try? StateDirectory.find(explicit: root) else { return storeArguments }
        return ["--root", FileSystem.absolute(found)] + storeArguments
    }
}
