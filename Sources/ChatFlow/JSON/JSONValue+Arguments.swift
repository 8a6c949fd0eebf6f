extension JSONValue {
    /// Parses caller-supplied JSON (a `--data` argument, say), naming it in the error.
    public init(argument text: String, name: String) throws(ChatFlowError) {
        do {
            self = try JSONValue(parsing: text)
        } catch {
            throw .invalidJSON(what: name, reason: error.description)
        }
    }

    /// Parses caller-supplied JSON that must be an object.
    public static func object(argument text: String, name: String) throws(ChatFlowError) -> [String: JSONValue] {
        guard let members = try JSONValue(argument: text, name: name).objectValue else {
            throw .invalidJSON(what: name, reason: "must be a JSON object, like {\"key\": \"value\"}")
        }
        return members
    }
}
