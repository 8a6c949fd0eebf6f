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
        var arguments = ArgumentValues()
        arguments["id"] = id
        Output.result(try global.call("runs", arguments.values), json: json)
    }
}
