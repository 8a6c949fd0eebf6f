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
        let engine = try global.makeEngine()
        var workflowSchema: WorkflowSchema
        if let schema {
            workflowSchema = try WorkflowSchema(contentsOfFile: schema)
        } else {
            let names = phases!.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            workflowSchema = WorkflowSchema(name: workflow ?? "default", phaseNames: names)
        }
        if let workflow { workflowSchema.name = workflow }
        let id = try engine.start(
            schema: workflowSchema, featureID: feature,
            context: try context.map { try JSONValue.object(argument: $0, name: "--context") } ?? [:],
            meta: try meta.map { try JSONValue.object(argument: $0, name: "--meta") } ?? [:])
        if json, let state = try engine.status(id) {
            Output.json(state.report)
        } else {
            print(id)
        }
    }
}
