/// A JSON value that round-trips exactly: numbers keep their literal text, strings are strict UTF-8.
///
/// `variables`, `meta` and trigger data are arbitrary JSON owned by the user; ChatFlow never
/// reinterprets them, so `12345678901234567890` and `1.10` are written back as they came.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// An empty object, the default for `variables` and `meta`.
    public static let emptyObject = JSONValue.object([:])

    /// The members when this is an object.
    public var objectValue: [String: JSONValue]? {
        if case .object(let members) = self { return members }
        return nil
    }

    /// The text when this is a string.
    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The elements when this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The number as a `Double` when this is a number.
    public var doubleValue: Double? {
        if case .number(let number) = self { return number.doubleValue }
        return nil
    }

    /// The number as an `Int` when this is an integral number that fits.
    public var intValue: Int? {
        if case .number(let number) = self { return number.intValue }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// Member lookup on objects; `nil` for other kinds or a missing key.
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }

    /// Parses JSON text. Throws `JSONParseError` naming the byte offset and the reason.
    public init(parsing text: String) throws(JSONParseError) {
        var copy = text
        let result = copy.withUTF8 { buffer in
            Result { () throws(JSONParseError) in try JSONParser.parse(UnsafeRawBufferPointer(buffer)) }
        }
        self = try result.get()
    }

    /// Parses JSON bytes. Throws `JSONParseError` naming the byte offset and the reason.
    public init(parsing bytes: [UInt8]) throws(JSONParseError) {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONParseError) in try JSONParser.parse(buffer) }
        }
        self = try result.get()
    }

    /// Compact one-line text (`{"a":1}`), keys sorted.
    public var compactText: String {
        var writer = JSONWriter(pretty: false)
        writer.write(self)
        return writer.string
    }

    /// Indented text (two spaces, `": "`), keys sorted: what `cat` shows a person.
    public var prettyText: String {
        var writer = JSONWriter(pretty: true)
        writer.write(self)
        return writer.string
    }
}

/// A JSON number kept as its validated literal text, so it round-trips exactly.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The literal as it appears in JSON text.
    public let literal: String

    /// Accepts only text that matches the JSON number grammar.
    public init?(literal: String) {
        guard JSONNumber.isValid(literal.utf8) else { return nil }
        self.literal = literal
    }

    init(validatedLiteral: String) { self.literal = validatedLiteral }

    public init(_ value: Int) { self.literal = String(value) }

    /// Non-finite values have no JSON form and become 0.
    public init(_ value: Double) {
        guard value.isFinite else { self.literal = "0"; return }
        if value == value.rounded(), abs(value) < 1e15 {
            self.literal = String(Int64(value)) + ".0"
        } else {
            self.literal = value.description
        }
    }

    public var doubleValue: Double { Double(literal) ?? .nan }

    public var intValue: Int? { Int(literal) }

    public var description: String { literal }

    static func isValid(_ bytes: String.UTF8View) -> Bool {
        var iterator = bytes.makeIterator()
        var byte = iterator.next()
        func isDigit(_ b: UInt8?) -> Bool { b.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
        if byte == UInt8(ascii: "-") { byte = iterator.next() }
        if byte == UInt8(ascii: "0") {
            byte = iterator.next()
        } else if isDigit(byte) {
            while isDigit(byte) { byte = iterator.next() }
        } else {
            return false
        }
        if byte == UInt8(ascii: ".") {
            byte = iterator.next()
            guard isDigit(byte) else { return false }
            while isDigit(byte) { byte = iterator.next() }
        }
        if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            byte = iterator.next()
            if byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") { byte = iterator.next() }
            guard isDigit(byte) else { return false }
            while isDigit(byte) { byte = iterator.next() }
        }
        return byte == nil
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(JSONNumber(value)) }
    public init(floatLiteral value: Double) { self = .number(JSONNumber(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { compactText }
}

/// Why JSON text was refused, and where.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Byte offset of the problem in the input.
    public let offset: Int
    public let reason: String

    public var description: String { "\(reason) at byte \(offset)" }

    /// Whether the text may be valid JSON that only passes a limit of the parser (its nesting).
    public var exceedsLimit: Bool { reason.hasPrefix(JSONParser.depthReason) }
}
