/// The limits every stored document keeps, checked where data comes in so that the store never
/// accepts what it cannot read back (docs/FORMAT.md, "Limits"). The read side's parser allows
/// `JSONParser.maximumDepth` levels; the store wraps user data in at most `wrappingDepth` more
/// (a commit line, its `state`, the `variables` object), so data within `maximumDataDepth`
/// always reads back, on every surface (command, MCP, web view) and on every store.
public enum StoredLimits {
    /// User data (a context, trigger data, `meta`) nests at most this many arrays and objects.
    public static let maximumDataDepth = 128
    /// The levels the store puts around user data in the deepest place it keeps it.
    static let wrappingDepth = 3

    /// Refuses `value` when it nests deeper than `maximumDataDepth`, naming it as `what`.
    public static func check(_ value: JSONValue, what: String) throws(ChatFlowError) {
        if !value.nests(within: maximumDataDepth) {
            throw .invalidJSON(
                what: what,
                reason: "nests deeper than \(maximumDataDepth) levels of arrays and objects, which ChatFlow does not store; flatten it, or store it as an artifact")
        }
    }

    /// `check` for each member of an object (a context or `meta`), counting the object itself.
    public static func check(_ members: [String: JSONValue], what: String) throws(ChatFlowError) {
        try check(.object(members), what: what)
    }
}

extension JSONValue {
    /// Whether this value's arrays and objects nest at most `levels` deep (a scalar: 0 levels).
    /// Stops as soon as the answer is known, so a deep hostile value costs no more than `levels`.
    func nests(within levels: Int) -> Bool {
        switch self {
        case .null, .bool, .number, .string: return true
        case .array(let elements):
            guard levels > 0 else { return false }
            return elements.allSatisfy { $0.nests(within: levels - 1) }
        case .object(let members):
            guard levels > 0 else { return false }
            return members.values.allSatisfy { $0.nests(within: levels - 1) }
        }
    }
}
