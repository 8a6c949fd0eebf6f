import ArgumentParser
import ChatFlow
import Foundation

/// `chatflow-bench`: the benchmark, plus the writer processes its scenarios (and the tests) spawn.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatflow-bench",
        abstract: "Measure ChatFlow's figures (see docs/BENCHMARKS.md).",
        subcommands: [Run.self, Writer.self, Claimer.self, SQLiteWriter.self],
        defaultSubcommand: Run.self)
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the scenarios (the default).")

    @Flag(help: "Small sizes: every scenario in well under a minute (CI).")
    var quick = false

    @Flag(help: "Print one JSON object per scenario instead of a table.")
    var json = false

    @Flag(inversion: .prefixedNo, help: "Compare hook latency with a bash `inotifywait -m | while read` loop when installed.")
    var compare = true

    @Option(parsing: .upToNextOption, help: "Only these scenarios (hook_latency burst sustained staleness live_log wait claims mcp ui trigger status start cli catchup postgres).")
    var only: [String] = []

    @Option(help: ArgumentHelp(
        "Also measure the PostgreSQL store beside the files (scenario `postgres`; the role must be able to create a database).",
        valueName: "postgres://…"))
    var store: String?

    func run() throws {
        let bench = try Bench(quick: quick, json: json)
        defer { bench.cleanUp() }
        let scenarios: [(String, () throws -> Void)] = [
            ("trigger", bench.trigger), ("status", bench.status), ("start", bench.start), ("cli", bench.cli),
            ("hook_latency", { try bench.hookLatency(compare: compare) }), ("burst", bench.burst),
            ("sustained", bench.sustained), ("staleness", bench.staleness), ("live_log", bench.liveLog), ("wait", bench.wait), ("claims", bench.claims), ("mcp", bench.mcp), ("ui", bench.ui),
            ("catchup", bench.catchup),
        ] + (store.map { url in [("postgres", { try bench.postgres(url) })] } ?? [])
        for (name, scenario) in scenarios where only.isEmpty || only.contains(name) {
            // Each scenario starts on a settled machine: the previous one's writeback (thousands
            // of fsynced files) otherwise lands in the next one's figures.
            sync()
            usleep(300_000)
            try scenario()
        }
        if !json { bench.printTable() }
    }
}
