/// An operation's arguments: one JSON object, whichever surface it came from (the command's
/// flags, an MCP tool call, a web request). Read with the operation's name in every error
/// (code `invalid_input`).
public struct OperationArguments: Sendable {
    public let operation: String
    public let values: [String: JSONValue]
    /// How long this surface lets a wait last.
    public var waits: WaitBounds = .unbounded

    /// Refuses members the operation does not take: a misspelt `expect_transition` must not turn
    /// a guarded trigger into an unguarded one.
    public init(operation: String, values: [String: JSONValue], allowed: some Collection<String>) throws(ChatFlowError) {
        self.operation = operation
        self.values = values
        if let unknown = values.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw .invalidJSON(
                what: "argument \(IdentifierKind.quote(unknown)) of \(operation)",
                reason: "is not one of its arguments (\(allowed.sorted().joined(separator: ", ")))")
        }
    }

    func wrong(_ key: String, _ expected: String) -> ChatFlowError {
        .invalidJSON(what: "argument \(key) of \(operation)", reason: "must be \(expected)")
    }

    private func present(_ key: String) -> JSONValue? {
        guard let value = values[key], !value.isNull else { return nil }
        return value
    }

    public func string(_ key: String) throws(ChatFlowError) -> String? {
        guard let value = present(key) else { return nil }
        guard case .string(let text) = value else { throw wrong(key, "a string") }
        return text
    }

    public func required(_ key: String) throws(ChatFlowError) -> String {
        guard let text = try string(key) else { throw .invalidJSON(what: "argument \(key) of \(operation)", reason: "is required") }
        return text
    }

    public func int(_ key: String) throws(ChatFlowError) -> Int? {
        guard let value = present(key) else { return nil }
        guard case .number(let number) = value else { throw wrong(key, "an integer") }
        if let integer = number.intValue { return integer }
        // 3.0 from a client that sends every number as a double.
        let double = number.doubleValue
        guard double == double.rounded(), abs(double) < 1e15 else { throw wrong(key, "an integer") }
        return Int(double)
    }

    public func double(_ key: String) throws(ChatFlowError) -> Double? {
        guard let value = present(key) else { return nil }
        guard case .number(let number) = value, number.doubleValue.isFinite else { throw wrong(key, "a number") }
        return number.doubleValue
    }

    public func bool(_ key: String) throws(ChatFlowError) -> Bool {
        guard let value = present(key) else { return false }
        guard case .bool(let flag) = value else { throw wrong(key, "true or false") }
        return flag
    }

    public func json(_ key: String) -> JSONValue? { present(key) }

    public func object(_ key: String) throws(ChatFlowError) -> [String: JSONValue]? {
        guard let value = present(key) else { return nil }
        guard case .object(let members) = value else { throw wrong(key, "a JSON object") }
        return members
    }

    /// A duration: seconds as a number, or text such as `30s`, `5m`, `1h`.
    public func duration(_ key: String) throws(ChatFlowError) -> Double? {
        guard let value = present(key) else { return nil }
        switch value {
        case .number(let number) where number.doubleValue > 0 && number.doubleValue.isFinite: return number.doubleValue
        case .string(let text):
            guard let seconds = Timestamps.seconds(duration: text) else { throw wrong(key, "seconds, or a duration like 30s, 5m or 1h") }
            return seconds
        default: throw wrong(key, "a positive number of seconds, or a duration like 30s, 5m or 1h")
        }
    }

    /// An instance status: the one parser of a status filter on every surface.
    public func status(_ key: String) throws(ChatFlowError) -> InstanceStatus? {
        guard let text = try string(key) else { return nil }
        guard let status = InstanceStatus(rawValue: text) else {
            throw .invalidJSON(
                what: "argument \(key) of \(operation)", reason: "must be created, running, completed or failed, not \(IdentifierKind.quote(text))")
        }
        return status
    }
}
