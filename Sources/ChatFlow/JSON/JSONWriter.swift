import Glibc

/// Serialises `JSONValue` with sorted keys, either compact or indented like Python's
/// `json.dumps(indent=2, sort_keys=True, ensure_ascii=False)`, so files are stable and diffable.
///
/// Typed writers (a state, a history entry) write their members in key order with
/// `openObject`, `member` and `closeObject` instead of building a dictionary to be sorted: the
/// dictionaries, their hashing and the sort were most of a commit's encode (perf,
/// docs/BENCHMARKS.md). The text is the same byte for byte.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    private let pretty: Bool
    private var level = 0
    /// Bit `n`: the object opened at nesting `n` by `openObject` has no member yet.
    private var noMemberYet: UInt64 = 0

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
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
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
        // Pairs, not keys: sorting keys and then looking each value up hashed every key again.
        let sorted = members.sorted { JSONWriter.byteOrder($0.key, $1.key) }
        for (offset, member) in sorted.enumerated() {
            if offset > 0 { bytes.append(UInt8(ascii: ",")) }
            newline()
            writeString(member.key)
            bytes.append(UInt8(ascii: ":"))
            if pretty { bytes.append(0x20) }
            write(member.value)
        }
        level -= 1
        newline()
        bytes.append(UInt8(ascii: "}"))
    }

    // MARK: Members in order

    /// Opens an object whose members follow, each by `member`, in byte order of their keys.
    mutating func openObject() {
        bytes.append(UInt8(ascii: "{"))
        level += 1
        noMemberYet |= 1 << UInt64(level & 63)
    }

    /// Starts the member `key` (plain ASCII, needing no escape); its value is written next.
    mutating func member(_ key: StaticString) {
        let bit: UInt64 = 1 << UInt64(level & 63)
        if noMemberYet & bit != 0 { noMemberYet &= ~bit } else { bytes.append(UInt8(ascii: ",")) }
        newline()
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        if pretty { bytes.append(0x20) }
    }

    /// Closes the object `openObject` opened (`{}` when it got no member).
    mutating func closeObject() {
        let bit: UInt64 = 1 << UInt64(level & 63)
        let empty = noMemberYet & bit != 0
        noMemberYet &= ~bit
        level -= 1
        if !empty { newline() }
        bytes.append(UInt8(ascii: "}"))
    }

    private mutating func writeString(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            // Most keys and values need no escape: copied in one piece.
            var start = 0
            for index in 0..<utf8.count {
                let byte = utf8[index]
                guard byte < 0x20 || byte == 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index]))
                start = index + 1
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(0x5C); bytes.append(byte)
                case 0x0A: bytes.append(0x5C); bytes.append(UInt8(ascii: "n"))
                case 0x0D: bytes.append(0x5C); bytes.append(UInt8(ascii: "r"))
                case 0x09: bytes.append(0x5C); bytes.append(UInt8(ascii: "t"))
                case 0x08: bytes.append(0x5C); bytes.append(UInt8(ascii: "b"))
                case 0x0C: bytes.append(0x5C); bytes.append(UInt8(ascii: "f"))
                default:
                    for escaped in [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                    Hex.digits[Int(byte >> 4)], Hex.digits[Int(byte & 0xF)]] {
                        bytes.append(escaped)
                    }
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<utf8.count]))
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
