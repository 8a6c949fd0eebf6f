import ArgumentParser
import ChatFlow

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy every instance, its history and its hooks' progress between a state directory and a PostgreSQL store.",
        discussion: """
            One side is a state directory, the other a postgres://… URL (either way round). Stop \
            chatflow-watch on both first. Nothing is written when an instance is unreadable or \
            already exists at the destination (exit 4). Transitions whose hooks had not run are \
            left for the destination's watcher; the source is not changed.
            """)

    @Option(name: .long, help: ArgumentHelp("Where to copy from: a state directory or postgres://…", valueName: "DIR|URL"))
    var from: String

    @Option(name: .long, help: ArgumentHelp("Where to copy to: a postgres://… URL or a state directory", valueName: "URL|DIR"))
    var to: String

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    func run() throws {
        guard let migrate = CommandMain.driver.withLock({ $0?.migrate }) else {
            throw StoreSelection.unsupported(StoreSelection.isPostgres(from) ? to : from, by: "chatflow")
        }
        let report = try migrate(from, to)
        if json {
            Output.json(report)
        } else {
            let count = { (key: String) in report[key]?.intValue ?? 0 }
            print(
                "copied \(count("instances")) instances (\(count("history_entries")) history entries; "
                    + "\(count("pending_transitions")) transitions' hooks still to run) from \(report["from"]?.stringValue ?? from) to \(report["to"]?.stringValue ?? to)")
        }
    }
}
