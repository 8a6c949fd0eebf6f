import ArgumentParser

/// `chatflow-bench`: the benchmark, plus the writer processes its scenarios (and the tests) spawn.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatflow-bench",
        abstract: "Measure ChatFlow's figures (see docs/BENCHMARKS.md).",
        subcommands: [Writer.self],
        defaultSubcommand: nil)
}
