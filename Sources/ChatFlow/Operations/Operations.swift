/// The catalogue: every operation once. A new operation added here appears as an MCP tool, as
/// `chatflow call NAME` and as `/api/call/NAME` (tests check all three).
public enum Operations {
    public static let all: [Operation] = instances + waits + claims + runs + artifacts

    public static func named(_ name: String) -> Operation? { all.first { $0.name == name } }

    /// The names, for an error that lists them.
    public static var names: String { all.map(\.name).joined(separator: ", ") }

    /// `named`, or `invalid_input` naming the operations.
    public static func require(_ name: String) throws(ChatFlowError) -> Operation {
        guard let operation = named(name) else {
            throw .invalidJSON(what: "operation \(IdentifierKind.quote(name))", reason: "is not one of \(names)")
        }
        return operation
    }
}

/// JSON Schemas of arguments.
enum ArgumentSchema {
    static func string(_ description: String, oneOf values: [String]? = nil) -> JSONValue {
        var schema: [String: JSONValue] = ["type": "string", "description": .string(description)]
        if let values { schema["enum"] = .array(values.map(JSONValue.string)) }
        return .object(schema)
    }

    static func integer(_ description: String, minimum: Int? = nil) -> JSONValue {
        var schema: [String: JSONValue] = ["type": "integer", "description": .string(description)]
        if let minimum { schema["minimum"] = .number(JSONNumber(minimum)) }
        return .object(schema)
    }

    static func number(_ description: String) -> JSONValue {
        ["type": "number", "description": .string(description), "minimum": 0]
    }

    static func boolean(_ description: String) -> JSONValue { ["type": "boolean", "description": .string(description)] }

    static func object(_ description: String) -> JSONValue { ["type": "object", "description": .string(description)] }

    static func any(_ description: String) -> JSONValue { ["description": .string(description)] }

    static func duration(_ description: String) -> JSONValue {
        ["type": ["number", "string"], "description": .string(description + " Seconds, or text such as 30s, 5m, 1h.")]
    }

    static let id = string("The instance id (wfi_ and 12 hex digits).")
    static let token = string("The claim token that `claim` returned.")
    static let status = string("Only this status (running includes created).", oneOf: InstanceStatus.names)
    static let timeout = number(
        "Give up after this many seconds: the result is then a `timeout` error; wait again to keep waiting. (The servers wait 25 s by default and at most 55.)")
}

extension InstanceStatus {
    static let names = ["created", "running", "completed", "failed"]
}

extension OperationArguments {
    /// `timeout_seconds` within `bounds`.
    func timeout(_ bounds: WaitBounds) throws(ChatFlowError) -> Double? {
        guard let seconds = try double("timeout_seconds") ?? bounds.defaultSeconds else { return nil }
        let maximum = bounds.maximumSeconds ?? .infinity
        guard seconds >= 0, seconds <= maximum else {
            throw wrong("timeout_seconds", bounds.maximumSeconds.map { "0 to \(Int($0)) seconds" } ?? "a number of seconds ≥ 0")
        }
        return seconds
    }
}
