import ArgumentParser
import ChatFlow

/// `chatflow call NAME [JSON]`: any operation of the catalogue by name, its arguments one JSON
/// object, its document printed; the same call as the MCP tool and `/api/call/NAME`.
struct Call: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run any operation by name with a JSON object of arguments; prints its JSON document.",
        discussion: """
            The operations and their arguments are the MCP server's tools (`chatflow call --list`). \
            Waits have no time limit unless timeout_seconds is given. Errors are one JSON object on \
            stderr, with the exit codes of every command.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The operation (start, trigger, status, wait, claim, …).")
    var operation: String?

    @Argument(help: ArgumentHelp("Its arguments, a JSON object (default {}).", valueName: "JSON"))
    var arguments: String?

    @Flag(help: "List the operations with their arguments' JSON Schema.")
    var list = false

    func run() throws {
        if list {
            Output.json(.array(Operations.all.map { ["name": .string($0.name), "summary": .string($0.summary), "read_only": .bool($0.readOnly), "input_schema": $0.inputSchema] }))
            return
        }
        guard let operation else { throw ValidationError("name the operation (see `chatflow call --list`)") }
        let values = try arguments.map { try JSONValue.object(argument: $0, name: "the arguments of \(operation)") } ?? [:]
        try global.call(operation, values) { Output.now($0.document.prettyText) }
    }
}

extension GlobalOptions {
    /// Runs operation `name` on this command's store; a wait blocks on `changes(of:)`, which is
    /// armed before the first check. `warn` prints a wait's warning on stderr first.
    func call(_ name: String, _ values: [String: JSONValue], engine: WorkflowEngine? = nil, warn: Bool = false) throws -> OperationResult {
        var result: OperationResult?
        try call(name, values, engine: engine, warn: warn) { result = $0 }
        return result!
    }

    /// `call`, handing the result to `deliver` while a wait's watch is still open: closing an
    /// inotify descriptor waits for an RCU grace period (about 15 ms here), which a waiter's
    /// answer must not wait for (`chatflow-bench --only wait`).
    func call(
        _ name: String, _ values: [String: JSONValue], engine: WorkflowEngine? = nil, warn: Bool = false,
        deliver: (OperationResult) throws -> Void
    ) throws {
        let engine = try engine ?? makeEngine()
        let plan = try Operations.require(name).prepare(values, engine: engine)
        if warn, let warning = plan.warning, plan.immediate == nil { writeStandardError("chatflow: warning: \(warning); waiting for one that has\n") }
        var watch: (any InstanceChangeWaiting)?
        let result = try plan.run { () throws(ChatFlowError) in
            let opened = try changes(of: engine)
            watch = opened
            return opened
        }
        try withExtendedLifetime(watch) { try deliver(result) }
    }
}

/// An operation's arguments from a command's options: given ones only.
struct ArgumentValues {
    var values: [String: JSONValue] = [:]

    subscript(_ key: String) -> String? {
        get { values[key]?.stringValue }
        set { values[key] = newValue.map(JSONValue.string) }
    }

    mutating func set(_ key: String, _ value: Int?) { values[key] = value.map { .number(JSONNumber($0)) } }
    mutating func set(_ key: String, _ value: Double?) { values[key] = value.map { .number(JSONNumber($0)) } }
    mutating func set(_ key: String, _ value: Bool) { values[key] = value ? true : nil }
    mutating func set(_ key: String, _ value: JSONValue?) { values[key] = value }
}
