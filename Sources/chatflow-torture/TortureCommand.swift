import ArgumentParser
import ChatFlowHarness
import Foundation

/// `chatflow-torture`: faults, crashes and hostile input, counted (docs/TORTURE.md).
struct TortureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatflow-torture",
        abstract: "Run the torture suite: per scenario, cases tried and cases that went wrong.",
        subcommands: [Run.self, Worker.self],
        defaultSubcommand: Run.self)
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the scenarios (the default).")

    @Flag(help: "Bounded sizes for CI (about a minute).")
    var quick = false

    @Option(parsing: .upToNextOption, help: "Only these scenarios.")
    var only: [String] = []

    func run() throws {
        let torture = try Torture(quick: quick)
        defer { torture.cleanUp() }
        let scenarios: [(String, () throws -> Void)] = [
            ("hostile_arguments", torture.hostileArguments), ("hostile_state", torture.hostileState),
            ("writer_crashes", torture.writerCrashes), ("contention", torture.contention), ("claims", torture.claims),
            ("watcher_crashes", torture.watcherCrashes), ("overflow", torture.overflow),
            ("hostile_hooks", torture.hostileHooks), ("disk_trouble", torture.diskTrouble), ("doctor", torture.doctor),
            ("acknowledged", torture.acknowledged), ("other_writers", torture.otherWriters), ("orphans", torture.orphans),
            ("containment", torture.containment), ("hostile_clients", torture.hostileClients),
            ("other_users", torture.otherUsers),
        ]
        for (name, scenario) in scenarios where only.isEmpty || only.contains(name) {
            FileHandle.standardError.write(Data("\(name)…\n".utf8))
            do {
                try scenario()
            } catch {
                torture.tally(name, tried: 1, wrong: 1, note: "scenario failed: \(error)")
            }
        }
        let failed = torture.tallies.filter { $0.wrong > 0 }.count
        print("\(torture.tallies.count - failed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode(1) }
    }
}
