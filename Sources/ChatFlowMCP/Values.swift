import ChatFlow
import Foundation
import MCP

/// ChatFlow's exact JSON and the SDK's `Value`: tool arguments come in as `Value`, results go
/// out as one.
extension JSONValue {
    /// A `Value` for the SDK. Integral numbers that fit stay integers, others become doubles.
    var mcpValue: MCP.Value {
        switch self {
        case .null: .null
        case .bool(let flag): .bool(flag)
        case .number(let number): number.intValue.map(MCP.Value.int) ?? .double(number.doubleValue)
        case .string(let text): .string(text)
        case .array(let elements): .array(elements.map(\.mcpValue))
        case .object(let members): .object(members.mapValues(\.mcpValue))
        }
    }

    /// From a `Value` the SDK decoded. It turns a string that looks like a data URL into
    /// `.data`; that is given back as the string it was.
    init(_ value: MCP.Value) {
        switch value {
        case .null: self = .null
        case .bool(let flag): self = .bool(flag)
        case .int(let number): self = .number(JSONNumber(number))
        case .double(let number): self = number.isFinite ? .number(JSONNumber(number)) : .null
        case .string(let text): self = .string(text)
        case .data(let mimeType, let data): self = .string("data:\(mimeType ?? "");base64,\(data.base64EncodedString())")
        case .array(let elements): self = .array(elements.map(JSONValue.init))
        case .object(let members): self = .object(members.mapValues(JSONValue.init))
        }
    }
}

/// A tool's arguments, read with the tool's name in every error (code `invalid_input`).
struct ToolArguments: Sendable {
    let tool: String
    let values: [String: Value]

    /// Refuses members the tool's schema does not have: a misspelt `expect_transition` must not
    /// turn a guarded trigger into an unguarded one.
    init(tool: String, values: [String: Value]?, allowed: Set<String>) throws(ChatFlowError) {
        self.tool = tool
        self.values = values ?? [:]
        if let unknown = self.values.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw .invalidJSON(
                what: "argument \(IdentifierKind.quote(unknown)) of \(tool)",
                reason: "is not one of its arguments (\(allowed.sorted().joined(separator: ", ")))")
        }
    }

    private func wrong(_ key: String, _ expected: String) -> ChatFlowError {
        .invalidJSON(what: "argument \(key) of \(tool)", reason: "must be \(expected)")
    }

    private func present(_ key: String) -> Value? {
        guard let value = values[key], !value.isNull else { return nil }
        return value
    }

    func string(_ key: String) throws(ChatFlowError) -> String? {
        guard let value = present(key) else { return nil }
        guard case .string(let text) = JSONValue(value) else { throw wrong(key, "a string") }
        return text
    }

    func required(_ key: String) throws(ChatFlowError) -> String {
        guard let text = try string(key) else { throw .invalidJSON(what: "argument \(key) of \(tool)", reason: "is required") }
        return text
    }

    func int(_ key: String) throws(ChatFlowError) -> Int? {
        guard let value = present(key) else { return nil }
        switch value {
        case .int(let number): return number
        case .double(let number) where number == number.rounded() && abs(number) < 1e15: return Int(number)
        default: throw wrong(key, "an integer")
        }
    }

    func double(_ key: String) throws(ChatFlowError) -> Double? {
        guard let value = present(key) else { return nil }
        switch value {
        case .int(let number): return Double(number)
        case .double(let number) where number.isFinite: return number
        default: throw wrong(key, "a number")
        }
    }

    func bool(_ key: String) throws(ChatFlowError) -> Bool {
        guard let value = present(key) else { return false }
        guard case .bool(let flag) = value else { throw wrong(key, "true or false") }
        return flag
    }

    func json(_ key: String) -> JSONValue? { present(key).map(JSONValue.init) }

    func object(_ key: String) throws(ChatFlowError) -> [String: JSONValue]? {
        guard let value = present(key) else { return nil }
        guard case .object(let members) = JSONValue(value) else { throw wrong(key, "a JSON object") }
        return members
    }

    /// A duration: seconds as a number, or text such as `30s`, `5m`, `1h`.
    func duration(_ key: String) throws(ChatFlowError) -> Double? {
        guard let value = present(key) else { return nil }
        switch value {
        case .int, .double:
            guard let seconds = try double(key), seconds > 0 else { throw wrong(key, "a positive number of seconds") }
            return seconds
        case .string(let text):
            guard let seconds = Timestamps.seconds(duration: text) else { throw wrong(key, "seconds, or a duration like 30s, 5m or 1h") }
            return seconds
        default:
            throw wrong(key, "seconds, or a duration like 30s, 5m or 1h")
        }
    }
}

/// JSON Schemas for tool inputs.
enum Schema {
    static func object(_ properties: [String: Value], required: [String] = []) -> Value {
        var schema: [String: Value] = ["type": "object", "properties": .object(properties), "additionalProperties": false]
        if !required.isEmpty { schema["required"] = .array(required.map(Value.string)) }
        return .object(schema)
    }

    static func string(_ description: String, oneOf values: [String]? = nil) -> Value {
        var schema: [String: Value] = ["type": "string", "description": .string(description)]
        if let values { schema["enum"] = .array(values.map(Value.string)) }
        return .object(schema)
    }

    static func integer(_ description: String, minimum: Int? = nil) -> Value {
        var schema: [String: Value] = ["type": "integer", "description": .string(description)]
        if let minimum { schema["minimum"] = .int(minimum) }
        return .object(schema)
    }

    static func number(_ description: String, minimum: Double = 0, maximum: Double? = nil) -> Value {
        var schema: [String: Value] = ["type": "number", "description": .string(description), "minimum": .double(minimum)]
        if let maximum { schema["maximum"] = .double(maximum) }
        return .object(schema)
    }

    static func boolean(_ description: String) -> Value {
        ["type": "boolean", "description": .string(description)]
    }

    static func jsonObject(_ description: String) -> Value {
        ["type": "object", "description": .string(description)]
    }

    static func duration(_ description: String) -> Value {
        ["type": ["number", "string"], "description": .string(description + " Seconds, or text such as 30s, 5m, 1h.")]
    }

    static let id = string("The instance id (wfi_ and 12 hex digits).")
    static let token = string("The claim token that `claim` returned.")
}
