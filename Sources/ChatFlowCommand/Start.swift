import ArgumentParser
import ChatFlow

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a workflow instance in its first phase; prints the instance id.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "The feature this instance belongs to.")
    var feature: String

    @Option(help: ArgumentHelp("Comma-separated phase names, in order.", valueName: "a,b,c"))
    var phases: String?

    @Option(help: ArgumentHelp("A JSON schema file: {\"name\": …, \"phases\": [{\"name\": …, \"task\": …}]}.", valueName: "FILE.json"))
    var schema: String?

    @Option(help: "Workflow name (default: the schema's name, or 'default').")
    var workflow: String?

    @Option(help: ArgumentHelp("Initial variables, a JSON object.", valueName: "JSON"))
    var context: String?

    @Option(help: ArgumentHelp("Metadata, a JSON object.", valueName: "JSON"))
    var meta: String?

    @Flag(help: "Print the new state as JSON.")
    var json = false

    func validate() throws {
        guard (phases == nil) != (schema == nil) else {
            throw ValidationError("give exactly one of --phases a,b,c or --schema FILE.json")
        }
    }

    func run() throws {
        var arguments = ArgumentValues()
        arguments["feature"] = feature
        arguments["workflow"] = workflow
        if let schema {
            arguments.set("schema", try WorkflowSchema(contentsOfFile: schema).json)
        } else if let phases {
            arguments.set("phases", .array(phases.split(separator: ",", omittingEmptySubsequences: false).map { .string(String($0)) }))
        }
        arguments.set("context", try context.map { .object(try JSONValue.object(argument: $0, name: "--context")) })
        arguments.set("meta", try meta.map { .object(try JSONValue.object(argument: $0, name: "--meta")) })
        let result = try global.call("start", arguments.values)
        // The id alone: `id=$(chatflow start …)`.
        print(json ? result.printed.prettyText : result.document["instance_id"]?.stringValue ?? "")
    }
}
