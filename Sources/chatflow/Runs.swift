import ArgumentParser
import ChatFlow

struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List hook runs recorded by chatflow-watch.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Only this instance's runs.")
    var id: String?

    @Flag(help: "Print a JSON array of run records.")
    var json = false

    func run() throws {
        let engine = try global.makeEngine()
        if let id {
            try Identifiers.validateInstanceID(id)
            guard try engine.status(id) != nil else { throw ChatFlowError.notFound(instanceID: id, root: engine.root) }
        }
        let records = try RunJournal(layout: engine.layout).records().filter { id == nil || $0.instanceID == id }
        if json {
            Output.json(.array(records.map(\.json)))
        } else {
            for record in records {
                print("\(record.instanceID)  #\(record.transition) \(record.phase)  \(record.hook)  \(record.outcome.summary)  \(Output.time(record.startedAt))  \(record.logPath)")
            }
        }
    }
}
