import ArgumentParser
import ChatFlow
import ChatFlowPostgres

import Glibc

/// A writer process: triggers instances in a loop and reports each committed trigger on stdout
/// (`<id> <seq> <returned> <called>` per line, unix times of the trigger call's return and start,
/// written after it returned). Used by benchmarks and tests.
struct Writer: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Trigger instances in a loop (a benchmark/test helper).")

    @Option(help: "The state directory.")
    var root: String

    @Option(help: "Comma-separated instance ids to trigger, round robin.")
    var ids: String

    @Option(help: "Triggers to make in all (0: until killed).")
    var count: Int = 0

    @Option(help: "Milliseconds to sleep between triggers.")
    var intervalMs: Double = 0

    @Flag(help: "Cycle through the schema with --to so the instance never completes.")
    var cycle = false

    @Option(help: "Go round the harness schema's N phases (p0 … pN-1) with --to, without reading the state first.")
    var roundPhases: Int = 0

    @Option(help: "A PostgreSQL store (postgres://…) instead of the files under --root.")
    var store: String?

    @Flag(help: "Print a line per committed trigger.")
    var report = false

    func run() throws {
        let engine = try store.map { try WorkflowEngine.postgres(url: $0, root: root) } ?? WorkflowEngine(root: root)
        let instances = ids.split(separator: ",").map(String.init)
        var sequence = 0
        while count == 0 || sequence < count {
            let id = instances[sequence % instances.count]
            var target: String?
            if cycle, let state = try engine.freshStatus(id) {
                let names = state.schema.phaseNames
                target = names[(names.firstIndex(of: state.currentPhase)! + 1) % names.count]
            }
            if roundPhases > 0 { target = "p\((sequence + 1) % roundPhases)" }
            let called = Self.now()
            try engine.trigger(id, data: ["seq": .number(JSONNumber(sequence)), "pid": .number(JSONNumber(Int(getpid())))], to: target)
            if report {
                let line = Array("\(id) \(sequence) \(Self.now()) \(called)\n".utf8)
                _ = line.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
            }
            sequence += 1
            if intervalMs > 0 { usleep(useconds_t(intervalMs * 1000)) }
        }
    }

    /// Unix time, as the hooks stamp it (`$EPOCHREALTIME`).
    private static func now() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
