import ArgumentParser
import ChatFlow
import Synchronization

import Glibc

/// The `chatflow` program, shared by `chatflow` and `chatflow-pg`: which binary runs decides
/// which stores it can open (`chatflow` links no database driver, so a hook's call stays cheap).
package enum CommandMain {
    /// What a binary that links a database store gives the subcommands: how to open it, copy
    /// to and from it, and wait for its changes.
    package struct StoreDriver: Sendable {
        package var open: @Sendable (_ url: String, _ root: String) throws(ChatFlowError) -> WorkflowEngine
        /// `chatflow migrate`; returns the JSON report.
        package var migrate: @Sendable (_ from: String, _ to: String) throws(ChatFlowError) -> JSONValue
        /// Armed when it returns, as `InstanceWatch` is.
        package var changes: @Sendable (_ url: String) throws(ChatFlowError) -> any InstanceChangeWaiting

        package init(
            open: @escaping @Sendable (_ url: String, _ root: String) throws(ChatFlowError) -> WorkflowEngine,
            migrate: @escaping @Sendable (_ from: String, _ to: String) throws(ChatFlowError) -> JSONValue,
            changes: @escaping @Sendable (_ url: String) throws(ChatFlowError) -> any InstanceChangeWaiting
        ) {
            self.open = open
            self.migrate = migrate
            self.changes = changes
        }
    }

    /// Set by `run` in a binary that links a database store (`chatflow-pg`).
    static let driver = Mutex<StoreDriver?>(nil)

    /// Whether this command line needs the database driver (`chatflow-pg`): a `postgres://`
    /// store, or `migrate`, whose one side is always a database.
    package static func needsDatabaseDriver(_ arguments: [String]) -> Bool {
        if let url = StoreSelection.url(inArguments: arguments), StoreSelection.isPostgres(url) { return true }
        return GlobalOptions.movingLeadingOptions(arguments).first == "migrate"
    }

    /// Parses and runs the command line; exits with the documented codes (README).
    package static func run(driver: StoreDriver? = nil) -> Never {
        self.driver.withLock { $0 = driver }
        // Exit codes (README): 0 ok, 1 error, 2 usage or invalid input, 3 not found, 4 conflict.
        // ArgumentParser's own usage code is 64, so parsing and running are separated here to map each
        // failure to its code; help and --version go to stdout with exit 0.
        let arguments = GlobalOptions.movingLeadingOptions(Array(CommandLine.arguments.dropFirst()))
        let wantsJSON = arguments.contains("--json") || arguments.first == "call"

        // `chatflow ui …` is chatflow-ui's, --help included: handed over before parsing.
        if arguments.first == "ui" {
            do {
                try UI.exec(Array(arguments.dropFirst()))
            } catch {
                Output.error("\(error)", code: "io", json: false)
                exit(ExitStatus.failure)
            }
        }

        func finish(_ error: Error) -> Never {
            if Chatflow.exitCode(for: error) == .success {
                print(Chatflow.fullMessage(for: error))
                exit(0)
            }
            if let error = error as? ExitCode { exit(error.rawValue) }
            let (code, kind, message): (Int32, String, String)
            if let error = error as? ChatFlowError {
                (code, kind, message) = (ExitStatus.code(for: error), error.code, error.description)
            } else if error is ValidationError {
                (code, kind, message) = (ExitStatus.usage, "invalid_input", Chatflow.message(for: error))
            } else {
                (code, kind, message) = (ExitStatus.failure, "error", Chatflow.message(for: error))
            }
            Output.error(message, code: kind, json: wantsJSON)
            exit(code)
        }

        let command: ParsableCommand
        do {
            command = try Chatflow.parseAsRoot(arguments)
        } catch {
            if Chatflow.exitCode(for: error) == .success { finish(error) }
            if let typed = arguments.first, !typed.hasPrefix("-"), !Chatflow.commandNames.contains(typed) {
                let guess = Chatflow.nearestCommand(to: typed).map { "; did you mean '\($0)'?" } ?? ""
                Output.error("unknown command \(IdentifierKind.quote(typed))\(guess) (see `chatflow help`)", code: "usage", json: wantsJSON)
                exit(ExitStatus.usage)
            }
            Output.error(Chatflow.message(for: error) + " (see `chatflow help`)", code: "usage", json: wantsJSON)
            exit(ExitStatus.usage)
        }
        do {
            var runnable = command
            try runnable.run()
        } catch {
            finish(error)
        }
        exit(0)
    }

    /// Replaces this process with `program` (beside this binary first, then `$PATH`) and the
    /// same arguments; returns only by throwing.
    package static func exec(
        _ program: String, _ arguments: [String], purpose: String, beside caller: String = "chatflow"
    ) throws(ChatFlowError) -> Never {
        let sibling = FileSystem.parent(FileSystem.executablePath() ?? "") + "/" + program
        let path = access(sibling, X_OK) == 0 ? sibling : program
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        execvp(path, argv)
        throw ChatFlowError.io(operation: "run \(program) (\(purpose); install it beside \(caller): scripts/install.sh)", path: path, errno: errno)
    }
}
