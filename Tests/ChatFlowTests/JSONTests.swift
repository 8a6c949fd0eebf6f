import Testing
@testable import ChatFlow

@Suite("JSON values")
struct JSONTests {
    @Test("round-trips nesting, exact numbers and unicode", arguments: [
        #"{"a":[1,2,{"b":null}],"big":12345678901234567890,"f":1.10,"e":-2.5E+300,"s":"héllo \"q\" \\ \n 🎉","t":true}"#,
        #"[]"#, #"{}"#, #""x""#, #"0"#, #"-0.0"#, #"[[[[[]]]]]"#,
    ])
    func roundTrip(text: String) throws {
        let value = try JSONValue(parsing: text)
        #expect(try JSONValue(parsing: value.compactText) == value)
        #expect(try JSONValue(parsing: value.prettyText) == value)
    }

    @Test("keeps number literals exactly")
    func exactNumbers() throws {
        let value = try JSONValue(parsing: #"[12345678901234567890, 1.10, 1e400, -0]"#)
        #expect(value.compactText == "[12345678901234567890,1.10,1e400,-0]")
    }

    @Test("decodes escapes and surrogate pairs")
    func escapes() throws {
        let value = try JSONValue(parsing: #""\u00e9\ud83c\udf89\t\/""#)
        #expect(value == .string("é🎉\t/"))
    }

    @Test("refuses malformed input with a reason", arguments: [
        "", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "tru", "\"\\x\"", "\"\u{01}\"", "{\"a\":1}x",
        "\"\\ud800\"", "[1 2]", "nul",
    ])
    func malformed(text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
    }

    @Test("refuses invalid UTF-8")
    func invalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: [0x22, 0xFF, 0xFE, 0x22]) }
    }

    @Test("bounds nesting depth instead of overflowing the stack")
    func deepNesting() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: deep) }
    }

    @Test("writes pretty text like Python's json.dumps(indent=2, sort_keys=True)")
    func prettyFormat() {
        let value: JSONValue = ["b": [1, 2], "a": ["x": nil], "c": [:]]
        #expect(value.prettyText == "{\n  \"a\": {\n    \"x\": null\n  },\n  \"b\": [\n    1,\n    2\n  ],\n  \"c\": {}\n}")
    }
}
