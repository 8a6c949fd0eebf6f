import Glibc

/// Serialises `JSONValue` with sorted keys, either compact or indented like Python's
/// `json.dumps(indent=2, sort_keys=True, ensure_ascii=False)`, so files are stable and diffable.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    private let pretty: Bool
    private var level = 0

    init(pretty: Bool, capacity: Int = 1024) {
        self.init(pretty: pretty, level: 0, capacity: capacity)
    }

    /// Starting at nesting `level` (for text spliced into a document at that depth).
    init(pretty: Bool, level: Int, capacity: Int = 1024) {
        self.pretty = pretty
        self.level = level
        bytes.reserveCapacity(capacity)
    }

    /// Appends text that is already JSON, as written by a writer at this nesting level.
    mutating func append(json text: [UInt8]) { bytes.append(contentsOf: text) }

    var string: String { String(decoding: bytes, as: UTF8.self) }

    mutating func write(_ value: JSONValue) {
        switch value {
        case .null: append("null")
        case .bool(let flag): append(flag ? "true" : "false")
        case .number(let number): append(number.literal)
        case .string(let text): writeString(text)
        case .array(let elements): writeArray(elements)
        case .object(let members): writeObject(members)
        }
    }

    mutating func append(raw byte: UInt8) { bytes.append(byte) }

    private mutating func append(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    private mutating func newline() {
        guard pretty else { return }
        bytes.append(0x0A)
        for _ in 0..<(level * 2) { bytes.append(0x20) }
    }

    private mutating func writeArray(_ elements: [JSONValue]) {
        guard !elements.isEmpty else { append("[]"); return }
        bytes.append(UInt8(ascii: "["))
        level += 1
        for (offset, element) in elements.enumerated() {
            if offset > 0 { bytes.append(UInt8(ascii: ",")) }
            newline()
            write(element)
        }
        level -= 1
        newline()
        bytes.append(UInt8(ascii: "]"))
    }

    private mutating func writeObject(_ members: [String: JSONValue]) {
        guard !members.isEmpty else { append("{}"); return }
        bytes.append(UInt8(ascii: "{"))
        level += 1
        let keys = members.keys.sorted(by: JSONWriter.byteOrder)
        for (offset, key) in keys.enumerated() {
            if offset > 0 { bytes.append(UInt8(ascii: ",")) }
            newline()
            writeString(key)
            bytes.append(UInt8(ascii: ":"))
            if pretty { bytes.append(0x20) }
            write(members[key]!)
        }
        level -= 1
        newline()
        bytes.append(UInt8(ascii: "}"))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private mutating func writeString(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(0x5C); bytes.append(byte)
            case UInt8(ascii: "\\"): bytes.append(0x5C); bytes.append(byte)
            case 0x0A: bytes.append(0x5C); bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(0x5C); bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(0x5C); bytes.append(UInt8(ascii: "t"))
            case 0x08: bytes.append(0x5C); bytes.append(UInt8(ascii: "b"))
            case 0x0C: bytes.append(0x5C); bytes.append(UInt8(ascii: "f"))
            case 0x00..<0x20, 0x7F:
                bytes.append(contentsOf: "\\u00".utf8)
                bytes.append(JSONWriter.hexDigits[Int(byte >> 4)])
                bytes.append(JSONWriter.hexDigits[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

extension JSONWriter {
    /// Keys in UTF-8 byte order (code point order, as Python's `sort_keys`), compared with
    /// memcmp over the strings' contiguous UTF-8: the generic `lexicographicallyPrecedes` was a
    /// visible cost of writing a state with a long history.
    static func byteOrder(_ a: String, _ b: String) -> Bool {
        var a = a
        var b = b
        return a.withUTF8 { left in
            b.withUTF8 { right in
                let common = min(left.count, right.count)
                if common > 0 {
                    let order = memcmp(left.baseAddress!, right.baseAddress!, common)
                    if order != 0 { return order < 0 }
                }
                return left.count < right.count
            }
        }
    }
}
