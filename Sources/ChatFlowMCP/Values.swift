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
