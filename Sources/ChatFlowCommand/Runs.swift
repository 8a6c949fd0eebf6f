import ArgumentParser
import ChatFlow

struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List hook runs recorded by chatflow-watch: finished ones, then those running (pid, elapsed).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Only this instance's runs.")
    var id: String?

    @Flag(help: "Print a JSON array: run records, then running hooks (\"running\": true, \"pid\", \"elapsed\").")
    var json = false

    func run() throws {
        let engine = try global.makeEngine()
        let (ended, running) = try engine.runs(of: id)
        let now = Timestamps.unix()
        if json {
            Output.json(.array(ended.map(\.json) + running.map { $0.report(now: now) }))
            return
        }
        for record in ended {
            let took = HookOutcome.seconds(record.endedAt - record.startedAt)
            let lost = record.logError.map { "  (log incomplete: \($0))" } ?? ""
            print("\(record.instanceID)  #\(record.transition) \(record.phase)  \(record.hook)  \(record.outcome.summary)  \(took)  \(Output.time(record.startedAt))  \(record.logPath)\(lost)")
        }
        for hook in running {
            print("\(hook.instanceID)  #\(hook.transition) \(hook.phase)  \(hook.hook)  running (pid \(hook.pid), \(HookOutcome.seconds(now - hook.startedAt)))  \(Output.time(hook.startedAt))  \(hook.logPath)")
        }
    }
}
