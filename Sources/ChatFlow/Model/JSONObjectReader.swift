/// A reason why a JSON document is not valid ChatFlow state; the store adds the path.
package struct StateDecodingError: Error {
    package let reason: String
}

/// Typed member access on a JSON object, with errors that name the key.
struct JSONObjectReader {
    let members: [String: JSONValue]
    let context: String

    init(_ value: JSONValue, context: String) throws(StateDecodingError) {
        guard let members = value.objectValue else { throw StateDecodingError(reason: "\(context) is not a JSON object") }
        self.members = members
        self.context = context
    }

    private func missing(_ key: String) -> StateDecodingError {
        StateDecodingError(reason: "\(context) has no '\(key)'")
    }

    private func wrongType(_ key: String, _ expected: String) -> StateDecodingError {
        StateDecodingError(reason: "'\(key)' in \(context) is not \(expected)")
    }

    func string(_ key: String) throws(StateDecodingError) -> String {
        guard let value = members[key] else { throw missing(key) }
        guard let text = value.stringValue else { throw wrongType(key, "a string") }
        return text
    }

    func optionalString(_ key: String) throws(StateDecodingError) -> String? {
        guard let value = members[key], !value.isNull else { return nil }
        guard let text = value.stringValue else { throw wrongType(key, "a string or null") }
        return text
    }

    func double(_ key: String) throws(StateDecodingError) -> Double {
        guard let value = members[key] else { throw missing(key) }
        guard let number = value.doubleValue, number.isFinite else { throw wrongType(key, "a number") }
        return number
    }

    func optionalDouble(_ key: String) throws(StateDecodingError) -> Double? {
        guard let value = members[key], !value.isNull else { return nil }
        guard let number = value.doubleValue, number.isFinite else { throw wrongType(key, "a number or null") }
        return number
    }

    func int(_ key: String) throws(StateDecodingError) -> Int {
        guard let value = members[key] else { throw missing(key) }
        guard let number = value.intValue, number >= 0 else { throw wrongType(key, "a non-negative integer") }
        return number
    }

    func object(_ key: String) throws(StateDecodingError) -> [String: JSONValue] {
        guard let value = members[key] else { throw missing(key) }
        guard let object = value.objectValue else { throw wrongType(key, "an object") }
        return object
    }

    func value(_ key: String) -> JSONValue { members[key] ?? .null }
}

extension JSONValue {
    init(_ text: String?) { self = text.map(JSONValue.string) ?? .null }
    init(_ number: Double?) { self = number.map { .number(JSONNumber($0)) } ?? .null }
    package init(_ number: Int) { self = .number(JSONNumber(number)) }
}
