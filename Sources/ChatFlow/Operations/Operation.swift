/// One operation on the record (start, trigger, status, claim, …), defined once: its name,
/// summary, arguments with their JSON Schema, and what a call does and returns. The command's
/// subcommands, the MCP tools and the web view's `/api/` are adapters over `Operations.all`.
public struct Operation: Sendable {
    public let name: String
    public let summary: String
    /// Changes nothing (an MCP read-only hint; a web `GET`).
    public let readOnly: Bool
    /// JSON Schema of each argument, by name.
    public let properties: [String: JSONValue]
    public let required: [String]
    let body: Body

    enum Body: Sendable {
        case immediate(@Sendable (OperationArguments, WorkflowEngine) throws(ChatFlowError) -> OperationResult)
        /// A call that may wait for changes: it says what to wait for, a driver waits.
        case waiting(@Sendable (OperationArguments, WorkflowEngine) throws(ChatFlowError) -> WaitPlan<OperationResult>)
    }

    init(
        _ name: String, _ summary: String, readOnly: Bool = false, properties: [String: JSONValue] = [:], required: [String] = [],
        run: @escaping @Sendable (OperationArguments, WorkflowEngine) throws(ChatFlowError) -> OperationResult
    ) {
        (self.name, self.summary, self.readOnly, self.properties, self.required) = (name, summary, readOnly, properties, required)
        body = .immediate(run)
    }

    init(
        _ name: String, _ summary: String, readOnly: Bool = false, properties: [String: JSONValue] = [:], required: [String] = [],
        plan: @escaping @Sendable (OperationArguments, WorkflowEngine) throws(ChatFlowError) -> WaitPlan<OperationResult>
    ) {
        (self.name, self.summary, self.readOnly, self.properties, self.required) = (name, summary, readOnly, properties, required)
        body = .waiting(plan)
    }

    /// The input schema: an object of `properties`, nothing else allowed.
    public var inputSchema: JSONValue {
        var schema: [String: JSONValue] = ["type": "object", "properties": .object(properties), "additionalProperties": false]
        if !required.isEmpty { schema["required"] = .array(required.map(JSONValue.string)) }
        return .object(schema)
    }

    /// Checks `values` against the argument names (an unknown one is refused).
    public func arguments(_ values: [String: JSONValue]) throws(ChatFlowError) -> OperationArguments {
        try OperationArguments(operation: name, values: values, allowed: properties.keys)
    }

    /// What a call of this operation does with `values`, ready to run or to wait: `.done` for an
    /// operation that does not wait, else the plan a driver runs (`WaitPlan.run(blockingOn:)`
    /// in the command, `WaitPlan.run(changes:)` in the servers).
    public func prepare(
        _ values: [String: JSONValue], engine: WorkflowEngine, waits: WaitBounds = .unbounded
    ) throws(ChatFlowError) -> WaitPlan<OperationResult> {
        var arguments = try arguments(values)
        arguments.waits = waits
        switch body {
        case .immediate(let run): return .done(try run(arguments, engine))
        case .waiting(let plan): return try plan(arguments, engine)
        }
    }
}

/// What a call returns: its JSON document (the same on every surface) and a text for people.
public struct OperationResult: Sendable {
    /// Always an object (MCP's structured content must be one).
    public var document: JSONValue
    public var text: String
    /// For the operations whose command `--json` and `/api/` route print a bare array (`list`,
    /// `history`, `runs`, `artifacts`): the member of `document` they print.
    public var listing: String?

    public init(document: JSONValue, text: String, listing: String? = nil) {
        (self.document, self.text, self.listing) = (document, text, listing)
    }

    /// What the command's `--json` and the REST routes print: the document, or its listing.
    public var printed: JSONValue {
        guard let listing else { return document }
        return document[listing] ?? .array([])
    }
}

/// An error any surface reports: a stable code (README's table) and a message that says what to do.
public protocol CodedError: Error {
    var code: String { get }
    var message: String { get }
}

extension ChatFlowError: CodedError {
    public var message: String { description }
}

/// The one error document of every surface: `{"error": {"code": …, "message": …}}`.
public enum ErrorDocument {
    public static func json(code: String, message: String) -> JSONValue {
        ["error": ["code": .string(code), "message": .string(message)]]
    }

    /// The code and message of any error: a `CodedError`'s own, `cancelled`, or `internal`.
    public static func describe(_ error: any Error) -> (code: String, message: String) {
        switch error {
        case let error as any CodedError: (error.code, error.message)
        case is CancellationError: ("cancelled", "the call was cancelled")
        default: ("internal", "\(error)")
        }
    }

    public static func json(for error: any Error) -> JSONValue {
        let (code, message) = describe(error)
        return json(code: code, message: message)
    }
}
