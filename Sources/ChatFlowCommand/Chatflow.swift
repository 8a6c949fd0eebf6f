import ArgumentParser
import ChatFlow

import Glibc

/// `chatflow`: the engine's operations from a shell, for hooks and agents in other languages.
struct Chatflow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatflow",
        abstract: "Shared, lock-safe workflow state for local AI agents.",
        discussion: """
            State lives in --root DIR, else $CHATFLOW_ROOT, else the nearest .chatflow from the current \
            directory upward (create one with `chatflow init`). Exit codes: 0 ok, 1 error (I/O, corrupt \
            state), 2 usage or invalid input, 3 not found, 4 conflict (the instance moved on), 5 timed out \
            (wait). With --json, \
            stdout carries only JSON and an error is one JSON object on stderr.
            """,
        version: ChatFlow.version,
        subcommands: [
            Init.self, Start.self, Trigger.self, Fail.self, Status.self, Feature.self, List.self, History.self,
            Wait.self, ClaimCommand.self, Heartbeat.self, Release.self, Runs.self, Logs.self, Rerun.self, SaveArtifact.self, Artifacts.self, Artifact.self, Hooks.self, Doctor.self, Migrate.self, UI.self, Call.self,
        ])
}

extension Chatflow {
    /// Every subcommand's name, `help` included.
    static var commandNames: [String] { configuration.subcommands.map { $0._commandName } + ["help"] }

    /// The subcommand a mistyped name most likely meant: within two edits (one for short names).
    static func nearestCommand(to typed: String) -> String? {
        let scored = commandNames.map { ($0, editDistance(Array(typed), Array($0))) }.min { $0.1 < $1.1 }
        guard let (name, distance) = scored, distance <= (typed.count <= 4 ? 1 : 2) else { return nil }
        return name
    }

    /// Levenshtein distance, transpositions counted as one edit ("statsu" is one from "status").
    private static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1) }
            }
        }
        return table[a.count][b.count]
    }
}

/// Options every subcommand accepts, before or after its name.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The state directory (default: $CHATFLOW_ROOT, else the nearest .chatflow upward).", valueName: "DIR"))
    var root: String?

    @Option(name: .long, help: ArgumentHelp(StoreSelection.optionHelp, valueName: "URL"))
    var store: String?

    /// `chatflow --root DIR status ID` → `chatflow status ID --root DIR`: the documented form puts
    /// `--root` before the subcommand, where ArgumentParser only looks for the root command's
    /// options; at the end (before a `--`) it reaches the innermost subcommand.
    static func movingLeadingOptions(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var rest = arguments[...]
        while let first = rest.first {
            if first == "--root" || first == "--store", rest.count >= 2 {
                leading += rest.prefix(2)
                rest = rest.dropFirst(2)
            } else if first.hasPrefix("--root=") || first.hasPrefix("--store=") {
                leading.append(first)
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        guard !leading.isEmpty, !rest.isEmpty else { return arguments }
        var moved = Array(rest)
        moved.insert(contentsOf: leading, at: moved.firstIndex(of: "--") ?? moved.count)
        return moved
    }

    /// The engine on the state directory, built once per command: `--root`, else
    /// `$CHATFLOW_ROOT`, else the nearest `.chatflow` upward. Only `init` creates one; for every
    /// other command a missing one is an error naming where it looked.
    /// With a database store (`--store`, else `$CHATFLOW_STORE`), the state directory keeps only
    /// this host's hooks, runs and artifacts, so it need not exist yet.
    func makeEngine() throws(ChatFlowError) -> WorkflowEngine {
        if let url = storeURL {
            return try GlobalOptions.openStore(url, root: try StateDirectory.forDatabaseStore(explicit: root))
        }
        return WorkflowEngine(root: try StateDirectory.find(explicit: root))
    }

    /// `--store`, else a non-empty `$CHATFLOW_STORE`.
    var storeURL: String? { StoreSelection.url(explicit: store) }

    static func openStore(_ url: String, root: String) throws(ChatFlowError) -> WorkflowEngine {
        guard StoreSelection.isPostgres(url), let open = CommandMain.driver.withLock({ $0?.open }) else {
            throw StoreSelection.unsupported(url, by: "chatflow")
        }
        return try open(url, root)
    }

    /// What `wait` and `claim --wait` block on: inotify on `instances/`, or the database
    /// store's notifications.
    func changes(of engine: WorkflowEngine) throws(ChatFlowError) -> any InstanceChangeWaiting {
        guard let url = storeURL else { return try InstanceWatch(layout: engine.layout) }
        guard let changes = CommandMain.driver.withLock({ $0?.changes }) else { throw StoreSelection.unsupported(url, by: "chatflow") }
        return try changes(url)
    }
}

enum ExitStatus {
    static let failure: Int32 = 1
    static let usage: Int32 = 2
    static let notFound: Int32 = 3
    static let conflict: Int32 = 4
    static let timeout: Int32 = 5

    static func code(for error: ChatFlowError) -> Int32 {
        switch error.code {
        case "not_found": notFound
        case "conflict": conflict
        case "invalid_input": usage
        case "timeout": timeout
        default: failure
        }
    }
}
