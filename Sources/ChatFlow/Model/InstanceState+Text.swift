extension InstanceState {
    /// Decodes a state file of this format straight from its text, without building the
    /// top-level dictionary that `init(json:schema:)` reads: that dictionary, its hashing and
    /// the keyed lookups were half of a trigger's decode (perf, docs/BENCHMARKS.md).
    ///
    /// `nil` for anything but this format's own shape: a repeated key, a missing or mistyped
    /// member, another writer's layout, a value the checks refuse. The caller then decodes the
    /// document the general way, which gives the same state or the error that names the problem,
    /// so this path never decides what is valid.
    init?(standardText bytes: UnsafeRawBufferPointer, skipping: Set<String>) {
        var parser = JSONParser(bytes)
        parser.skipWhitespace()
        guard parser.current == UInt8(ascii: "{") else { return nil }
        parser.index += 1
        var seen: UInt32 = 0
        var status: InstanceStatus?
        var currentPhase: String?
        var instanceID: String?
        var featureID: String?
        var workflowName: String?
        var previousPhase: String?
        var schemaRange: Range<Int>?
        var variables: [String: JSONValue] = [:]
        var meta: [String: JSONValue] = [:]
        var createdAt: Double?
        var updatedAt: Double?
        var historyLength: Int?
        var historyBytes: Int?
        var open: HistoryEntry?
        do throws(JSONParseError) {
            try parser.enter()
            parser.skipWhitespace()
            guard parser.current != UInt8(ascii: "}") else { return nil }
            while true {
                guard parser.current == UInt8(ascii: "\"") else { return nil }
                let key = try parser.parseString()
                parser.skipWhitespace()
                guard parser.current == UInt8(ascii: ":") else { return nil }
                parser.index += 1
                parser.skipWhitespace()
                guard let bit = Self.textMembers[key] else {
                    // Not a member the state reads (`view_crc32`, another writer's extra): checked only.
                    try parser.skipValue()
                    if key == "history" { return nil }
                    guard let more = Self.moreMembers(&parser) else { return nil }
                    if more { continue } else { break }
                }
                guard seen & bit == 0 else { return nil }
                seen |= bit
                let skipped = !skipping.isEmpty && skipping.contains(key)
                switch key {
                case "status":
                    guard let text = try Self.string(&parser), let value = InstanceStatus(rawValue: text) else { return nil }
                    status = value
                case "current_phase": guard let text = try Self.string(&parser) else { return nil }; currentPhase = text
                case "instance_id": guard let text = try Self.string(&parser) else { return nil }; instanceID = text
                case "feature_id": guard let text = try Self.string(&parser) else { return nil }; featureID = text
                case "workflow_name":
                    guard let text = try Self.optionalString(&parser) else { return nil }
                    workflowName = text
                case "previous_phase":
                    guard let text = try Self.optionalString(&parser) else { return nil }
                    previousPhase = text
                case "workflow_schema":
                    guard parser.current == UInt8(ascii: "{") else { return nil }
                    let start = parser.index
                    try parser.skipValue()
                    schemaRange = start..<parser.index
                case "variables", "meta":
                    let value = skipped ? try parser.skipValue() : try parser.parseValue()
                    guard case .object(let members) = value else { return nil }
                    if key == "variables" { variables = members } else { meta = members }
                case "created_at": guard let number = try Self.double(&parser) else { return nil }; createdAt = number
                case "updated_at": guard let number = try Self.double(&parser) else { return nil }; updatedAt = number
                case "history_length": guard let number = try Self.int(&parser) else { return nil }; historyLength = number
                case "history_bytes": guard let number = try Self.int(&parser) else { return nil }; historyBytes = number
                case "current_entry":
                    let value = skipped ? try parser.skipValue() : try parser.parseValue()
                    if !value.isNull {
                        guard let entry = try? HistoryEntry(json: value) else { return nil }
                        open = entry
                    }
                default:
                    try parser.skipValue()   // format_version: any value is read the same way
                }
                guard let more = Self.moreMembers(&parser) else { return nil }
                if !more { break }
            }
        } catch {
            return nil
        }
        guard let status, let currentPhase, let instanceID, let featureID, let schemaRange,
              let createdAt, let updatedAt, let historyLength, let historyBytes,
              let schema = try? SchemaCache.schema(text: ArraySlice(UnsafeRawBufferPointer(rebasing: bytes[schemaRange])))
        else { return nil }
        // Only the shape this format writes: an open entry of the current phase while running,
        // none once finished. Anything else is another writer's, which `init(json:)` interprets.
        if let open {
            guard !status.isFinished, open.phase == currentPhase, historyLength >= 1 else { return nil }
        } else {
            guard status.isFinished else { return nil }
        }
        guard Identifiers.isInstanceID(instanceID), Identifiers.nameProblem(featureID) == nil,
              schema.index(of: currentPhase) != nil, previousPhase.map({ schema.index(of: $0) != nil }) ?? true
        else { return nil }
        self.init(
            instanceID: instanceID, featureID: featureID, workflowName: workflowName ?? schema.name, schema: schema,
            currentPhase: currentPhase, previousPhase: previousPhase, status: status, variables: variables, meta: meta,
            createdAt: createdAt, updatedAt: updatedAt, historyLength: historyLength, historyBytes: historyBytes,
            currentEntry: open)
    }

    /// The members this decoder reads, each with its bit in `seen` (a repeated one is not this
    /// format's: the general decoder takes the last, as JSON readers do).
    private static let textMembers: [String: UInt32] = {
        let names = ["status", "current_phase", "instance_id", "feature_id", "workflow_name", "previous_phase",
                     "workflow_schema", "variables", "meta", "created_at", "updated_at", "history_length",
                     "history_bytes", "current_entry", "format_version"]
        return Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, UInt32(1) << UInt32($0)) })
    }()

    /// Past a member's `,` (`true`) or the object's closing `}` with only whitespace after it
    /// (`false`); `nil` on anything else.
    private static func moreMembers(_ parser: inout JSONParser) -> Bool? {
        parser.skipWhitespace()
        switch parser.current {
        case UInt8(ascii: ","):
            parser.index += 1
            parser.skipWhitespace()
            return true
        case UInt8(ascii: "}"):
            parser.index += 1
            parser.skipWhitespace()
            return parser.index == parser.bytes.count ? false : nil
        default:
            return nil
        }
    }

    private static func string(_ parser: inout JSONParser) throws(JSONParseError) -> String? {
        guard parser.current == UInt8(ascii: "\"") else { return nil }
        return try parser.parseString()
    }

    /// `.some(nil)` for `null`, `nil` for a value that is neither a string nor null.
    private static func optionalString(_ parser: inout JSONParser) throws(JSONParseError) -> String?? {
        if parser.current == UInt8(ascii: "n") {
            try parser.expectLiteral("null")
            return .some(nil)
        }
        guard let text = try string(&parser) else { return nil }
        return .some(text)
    }

    private static func double(_ parser: inout JSONParser) throws(JSONParseError) -> Double? {
        guard let byte = parser.current, byte == UInt8(ascii: "-") || (byte >= 0x30 && byte <= 0x39) else { return nil }
        let range = try parser.scanNumber()
        guard let value = Double(String(decoding: UnsafeRawBufferPointer(rebasing: parser.bytes[range]), as: UTF8.self)),
              value.isFinite
        else { return nil }
        return value
    }

    private static func int(_ parser: inout JSONParser) throws(JSONParseError) -> Int? {
        guard let byte = parser.current, byte >= 0x30 && byte <= 0x39 else { return nil }
        let range = try parser.scanNumber()
        guard let value = Int(String(decoding: UnsafeRawBufferPointer(rebasing: parser.bytes[range]), as: UTF8.self)) else { return nil }
        return value
    }
}
