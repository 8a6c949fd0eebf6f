import ChatFlowTestSupport
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

    @Test("one walk writes the pretty and the compact text; a member left out and inserted later lands where a full write puts it", arguments: [
        ("a", #"{"b":1,"c":[true,{"d":"x\n\"\u0001"}]}"#), ("bb", #"{"a":{},"c":[]}"#), ("z", #"{"a":"é🎉","y":null}"#),
        ("k", #"{}"#), ("history_bytes", #"{"current_entry":{"phase":"p"},"instance_id":"wfi_0","variables":{"k":[1,2]}}"#),
    ])
    func dualWriteAndInsertedMember(key: String, text: String) throws {
        let members = try #require(try JSONValue(parsing: text).objectValue)
        var both = JSONWriter(pretty: true, level: 0, alsoCompact: true)
        let place = both.write(object: members, placeOf: key)
        #expect(String(decoding: both.compactBytes, as: UTF8.self) == JSONValue.object(members).compactText)
        #expect(both.string == JSONValue.object(members).prettyText)
        both.insertMember(key, ["n": 12], at: place)
        var whole = members
        whole[key] = ["n": 12]
        #expect(both.string == JSONValue.object(whole).prettyText)
        var compact = JSONWriter(pretty: false)
        let at = compact.write(object: members, placeOf: key)
        compact.insertMember(key, json: Array(#"{"n":12}"#.utf8), at: at)
        #expect(compact.string == JSONValue.object(whole).compactText)
    }

    /// Documents covering every kind of value in the skipped members, valid and not.
    static let memberDocuments: [String] = [
        #"{"keep":"x","skip":{"a":[1,2.5e3,-0,true,false,null,{"b":"\u00e9\ud83c\udf89\n"}],"c":{}},"n":12345678901234567890}"#,
        #"{"skip":[],"keep":{"nested":[1]},"keep":"last wins"}"#,
        #"{"skip":"héllo \"q\" \\ 🎉","keep":null}"#,
        #"{"skip":[1,],"keep":1}"#, #"{"skip":{"a" 1},"keep":1}"#, #"{"skip":01,"keep":1}"#, #"{"skip":"\x","keep":1}"#,
        #"{"skip":"\ud800","keep":1}"#, #"{"skip":tru,"keep":1}"#, #"{"skip":[1 2],"keep":1}"#, #"{"skip":1.,"keep":1}"#,
        "{\"skip\":\"\u{01}\",\"keep\":1}", #"{"skip":{"a":1},"keep":1}x"#, #"{"skip":"#, #"[1]"#,
        #"{"keep":1,"skip":"#+String(repeating: "[", count: 300)+String(repeating: "]", count: 300)+"}",
    ]

    @Test("skipping members builds the rest but accepts and refuses exactly what a full parse does", arguments: memberDocuments)
    func members(text: String) throws {
        let bytes = Array(text.utf8)
        let full = Result { () throws(JSONParseError) in try JSONValue(parsing: bytes) }
        let chosen = Result { try bytes.withUnsafeBytes { try JSONParser.parseMembers($0, skipping: ["skip"]) } }
        switch (full, chosen) {
        case (.success(let value), .success(let members)):
            let object = try #require(value.objectValue)
            #expect(members.filter { $0.key != "skip" } == object.filter { $0.key != "skip" })
            // Skipped members remain, as empty values of their kind.
            #expect(Set(members.keys) == Set(object.keys))
            for (key, skipped) in members where key == "skip" {
                #expect(kind(skipped) == kind(object[key]!), "\(key)")
            }
        case (.success(let value), .failure):
            #expect(value.objectValue == nil, "only a top level that is not an object may be refused")
        case (.failure, .failure):
            break
        default:
            Issue.record("full parse \(full), chosen members \(chosen)")
        }
    }

    private func kind(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "bool"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    @Test("skipped members are checked as strict UTF-8 too")
    func membersInvalidUTF8() {
        let bytes: [UInt8] = Array(#"{"skip":""#.utf8) + [0xC3, 0x28] + Array(#"","keep":1}"#.utf8)
        #expect(throws: JSONParseError.self) {
            try bytes.withUnsafeBytes { try JSONParser.parseMembers($0, skipping: ["skip"]) }
        }
    }
}
