import Glibc

/// Serialises `JSONValue` with sorted keys, either compact or indented like Python's
/// `json.dumps(indent=2, sort_keys=True, ensure_ascii=False)`, so files are stable and diffable.
///
/// A pretty writer made with `alsoCompact` writes the compact text too, in the same pass: a
/// commit needs both texts of one state (the view and its history line), and the walk and the
/// sorting of each object's keys, not the bytes, are most of an encode (perf, docs/BENCHMARKS.md).
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    /// The compact text, when made with `alsoCompact`.
    private(set) var compactBytes: [UInt8] = []
    private let pretty: Bool
    private let both: Bool
    private var level = 0

    init(pretty: Bool, capacity: Int = 1024) {
        self.init(pretty: pretty, level: 0, capacity: capacity)
    }

    /// Starting at nesting `level` (for text spliced into a document at that depth).
    init(pretty: Bool, level: Int, capacity: Int = 1024, alsoCompact: Bool = false) {
        self.pretty = pretty
        self.level = level
        both = pretty && alsoCompact
        bytes.reserveCapacity(capacity)
        if both { compactBytes.reserveCapacity(capacity) }
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

    mutating func append(raw byte: UInt8) { emit(byte) }

    private mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { emit(contentsOf: $0) }
    }

    /// A byte of the text itself (not layout): to both texts.
    private mutating func emit(_ byte: UInt8) {
        bytes.append(byte)
        if both { compactBytes.append(byte) }
    }

    private mutating func emit(contentsOf text: UnsafeBufferPointer<UInt8>) {
        bytes.append(contentsOf: text)
        if both { compactBytes.append(contentsOf: text) }
    }

    private mutating func newline() {
        guard pretty else { return }
        bytes.append(0x0A)
        for _ in 0..<(level * 2) { bytes.append(0x20) }
    }

    private mutating func writeArray(_ elements: [JSONValue]) {
        guard !elements.isEmpty else { append("[]"); return }
        emit(UInt8(ascii: "["))
        level += 1
        for (offset, element) in elements.enumerated() {
            if offset > 0 { emit(UInt8(ascii: ",")) }
            newline()
            write(element)
        }
        level -= 1
        newline()
        emit(UInt8(ascii: "]"))
    }

    private mutating func writeObject(_ members: [String: JSONValue]) {
        _ = writeObject(members, placeOf: nil)
    }

    /// Writes an object; with `key` (not one of `members`), also returns where in `bytes` its
    /// member belongs, for `insertMember` once its value is known.
    private mutating func writeObject(_ members: [String: JSONValue], placeOf key: String?) -> MemberPlace? {
        guard !members.isEmpty else { append("{}"); return key.map { _ in MemberPlace(offset: bytes.count - 1, last: true, empty: true) } }
        emit(UInt8(ascii: "{"))
        level += 1
        // Pairs, not keys: sorting keys and then looking each value up hashed every key again.
        let sorted = members.sorted { JSONWriter.byteOrder($0.key, $1.key) }
        var place: MemberPlace?
        for (offset, member) in sorted.enumerated() {
            if offset > 0 { emit(UInt8(ascii: ",")) }
            newline()
            if place == nil, let key, JSONWriter.byteOrder(key, member.key) {
                place = MemberPlace(offset: bytes.count, last: false, empty: false)
            }
            writeString(member.key)
            emit(UInt8(ascii: ":"))
            if pretty { bytes.append(0x20) }
            write(member.value)
        }
        if key != nil && place == nil { place = MemberPlace(offset: bytes.count, last: true, empty: false) }
        level -= 1
        newline()
        emit(UInt8(ascii: "}"))
        return place
    }

    /// Where a member goes in an object already written (its key's place in the order).
    struct MemberPlace {
        var offset: Int
        var last: Bool
        var empty: Bool
    }

    /// Writes a top-level object leaving out the member `key`, whose value (`insertMember`) is
    /// not known yet: a commit's view carries `history_bytes`, which its history line must not.
    mutating func write(object members: [String: JSONValue], placeOf key: String) -> MemberPlace {
        writeObject(members, placeOf: key)!
    }

    /// Inserts `key`'s member into the text at `place` (of a top-level object).
    mutating func insertMember(_ key: String, _ value: JSONValue, at place: MemberPlace) {
        var text = JSONWriter(pretty: pretty, level: 1, capacity: 32)
        text.write(value)
        insertMember(key, json: text.bytes, at: place)
    }

    /// The same with the value's text already written (at nesting level 1).
    mutating func insertMember(_ key: String, json value: [UInt8], at place: MemberPlace) {
        var member = JSONWriter(pretty: false, capacity: key.count + value.count + 8)
        member.writeString(key)
        member.emit(UInt8(ascii: ":"))
        if pretty { member.bytes.append(0x20) }
        member.bytes.append(contentsOf: value)
        let indent: [UInt8] = pretty ? [0x0A, 0x20, 0x20] : []
        if place.empty {
            bytes.insert(contentsOf: indent + member.bytes + (pretty ? [0x0A] : []), at: place.offset)
        } else if place.last {
            bytes.insert(contentsOf: [UInt8(ascii: ",")] + indent + member.bytes, at: place.offset)
        } else {
            bytes.insert(contentsOf: member.bytes + [UInt8(ascii: ",")] + indent, at: place.offset)
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private mutating func writeString(_ text: String) {
        emit(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            // Most keys and values need no escape: copied in one piece.
            var start = 0
            for index in 0..<utf8.count {
                let byte = utf8[index]
                guard byte < 0x20 || byte == 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                emit(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index]))
                start = index + 1
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): emit(0x5C); emit(byte)
                case 0x0A: emit(0x5C); emit(UInt8(ascii: "n"))
                case 0x0D: emit(0x5C); emit(UInt8(ascii: "r"))
                case 0x09: emit(0x5C); emit(UInt8(ascii: "t"))
                case 0x08: emit(0x5C); emit(UInt8(ascii: "b"))
                case 0x0C: emit(0x5C); emit(UInt8(ascii: "f"))
                default:
                    for escaped in [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                    JSONWriter.hexDigits[Int(byte >> 4)], JSONWriter.hexDigits[Int(byte & 0xF)]] {
                        emit(escaped)
                    }
                }
            }
            emit(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<utf8.count]))
        }
        emit(UInt8(ascii: "\""))
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
