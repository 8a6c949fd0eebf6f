import ArgumentParser
import ChatFlow

/// `chatflow`: the engine's operations from a shell, for hooks and agents in other languages.
struct Chatflow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatflow",
        abstract: "Shared, lock-safe workflow state for local AI agents.",
        discussion: """
            State lives in --root (default $CHATFLOW_ROOT or ./.chatflow). Exit codes: 0 ok, 1 error, \
            2 usage, 3 not found, 4 moved on (--expect-transition). With --json, stdout carries only JSON.
            """,
        subcommands: [
            Init.self, Start.self, Trigger.self, Fail.self, Status.self, Feature.self, List.self, History.self,
            Runs.self, SaveArtifact.self, Artifacts.self, Doctor.self,
        ])
}

/// Options every subcommand accepts, before or after its name.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The state directory (default: $CHATFLOW_ROOT or ./.chatflow).", valueName: "DIR"))
    var root: String?

    /// `chatflow --root DIR status ID` → `chatflow status --root DIR ID`: the documented form puts
    /// `--root` before the subcommand, where ArgumentParser only looks for the root command's options.
    static func movingLeadingOptions(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var rest = arguments[...]
        while let first = rest.first {
            if first == "--root", rest.count >= 2 {
                leading += rest.prefix(2)
                rest = rest.dropFirst(2)
            } else if first.hasPrefix("--root=") {
                leading.append(first)
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        guard !leading.isEmpty, let subcommand = rest.first else { return arguments }
        return [subcommand] + leading + rest.dropFirst()
    }

    /// The engine on the chosen root, built once per command (`--root`, else the zero-config
    /// engine on `$CHATFLOW_ROOT` or `./.chatflow`).
    func makeEngine() -> WorkflowEngine {
        root.map { WorkflowEngine(root: $0) } ?? ChatFlow.engine
    }
}

enum ExitStatus {
    static let failure: Int32 = 1
    static let usage: Int32 = 2
    static let notFound: Int32 = 3
    static let conflict: Int32 = 4

    static func code(for error: ChatFlowError) -> Int32 {
        switch error {
        case .notFound: notFound
        case .transitionMismatch: conflict
        case .invalidIdentifier, .invalidJSON, .invalidSchema: usage
        default: failure
        }
    }
}
