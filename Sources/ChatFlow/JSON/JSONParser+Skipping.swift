/// Checking a value as strictly as parsing it, without building it (`parseMembers(_:skipping:)`).
extension JSONParser {
    /// Checks one value as `parseValue` would, building nothing; returns an empty value of its kind.
    @discardableResult
    mutating func skipValue() throws(JSONParseError) -> JSONValue {
        guard let byte = current else { throw error("unexpected end of JSON") }
        switch byte {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            try enter()
            defer { depth -= 1 }
            let isObject = byte == UInt8(ascii: "{")
            let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
            let empty: JSONValue = isObject ? .emptyObject : .array([])
            index += 1
            skipWhitespace()
            if current == close { index += 1; return empty }
            while true {
                if isObject {
                    guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
                    try skipString()
                    skipWhitespace()
                    guard current == UInt8(ascii: ":") else { throw error("expected ':' after key") }
                    index += 1
                    skipWhitespace()
                }
                try skipValue()
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): index += 1; skipWhitespace()
                case close: index += 1; return empty
                default: throw error(isObject ? "expected ',' or '}' in object" : "expected ',' or ']' in array")
                }
            }
        case UInt8(ascii: "\""): try skipString(); return .string("")
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try scanNumber(); return .number(JSONNumber(0))
        default: throw error("unexpected character '\(printable(byte))'")
        }
    }

    /// Checks a string as `parseString` would (escapes, control characters, UTF-8), building nothing.
    mutating func skipString() throws(JSONParseError) {
        index += 1
        let start = index
        var ascii = true
        while true {
            guard let byte = current else { throw error("unterminated string") }
            switch byte {
            case UInt8(ascii: "\""):
                // Escapes decode to whole UTF-8 sequences (never continuation bytes), so checking
                // the raw text gives the same verdict as checking the decoded string.
                if !ascii && String(validating: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self) == nil {
                    throw JSONParseError(offset: start, reason: "string is not valid UTF-8")
                }
                index += 1
                return
            case UInt8(ascii: "\\"):
                index += 1
                guard let escape = current else { throw error("unterminated escape") }
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    break
                case UInt8(ascii: "u"):
                    var scratch: [UInt8] = []
                    try appendUnicodeEscape(to: &scratch)
                default: throw error("invalid escape '\\\(printable(escape))'")
                }
            default:
                if byte < 0x20 { throw error("control character in string") }
                if byte >= 0x80 { ascii = false }
                index += 1
            }
        }
    }
}
