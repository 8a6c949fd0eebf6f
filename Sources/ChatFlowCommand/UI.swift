import ArgumentParser
import ChatFlow

import Glibc

/// `chatflow ui …` runs `chatflow-ui …` (as git runs `git-foo`): the web view links Hummingbird
/// and NIO, which `chatflow`, called by every hook, must not load.
struct UI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ui",
        abstract: "Serve the live web view and JSON API (runs chatflow-ui; `chatflow ui --help` shows its options).",
        shouldDisplay: true)

    @Argument(parsing: .allUnrecognized, help: "Options for chatflow-ui: [--port P] [--bind ADDR] [--token-file FILE] [--actions] [--root DIR].")
    var options: [String] = []

    func run() throws { try Self.exec(options) }

    /// Replaces this process with chatflow-ui; returns only by throwing.
    static func exec(_ options: [String]) throws {
        // Next to this binary first (an install puts them together), then $PATH.
        let sibling = FileSystem.parent(FileSystem.executablePath() ?? "") + "/chatflow-ui"
        let program = access(sibling, X_OK) == 0 ? sibling : "chatflow-ui"
        let argv: [UnsafeMutablePointer<CChar>?] = ([program] + options).map { strdup($0) } + [nil]
        execvp(program, argv)
        throw ChatFlowError.io(operation: "run chatflow-ui (install it beside chatflow: scripts/install.sh)", path: program, errno: errno)
    }
}
