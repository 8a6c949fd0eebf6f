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

    @Test("the typed writers of a state, its view and its commit line write what the generic writer writes of its JSON", arguments: 0..<6)
    func typedWritersMatchGeneric(variant: Int) throws {
        let state = Self.sampleState(variant)
        let data = state.variables["z"] == nil ? state.variables["k"] ?? [:] : JSONValue.object(state.variables)
        var closed = HistoryEntry(phase: "a", task: "say \"hi\"\n", startedAt: 1_796_318_813, endedAt: 1_796_318_813.5, status: .completed, triggerDataSnapshot: data)
        if variant == 4 { closed.claim = Claim(owner: "o", token: "t", expiresAt: 1.5) }
        let entries = Array(repeating: closed, count: variant % 3 + 1)

        var expected = JSONValue.object(state.membersWithoutSchema)
        var typed = JSONWriter(pretty: true)
        state.write(to: &typed, historyBytes: state.historyBytes)
        #expect(typed.string == expected.prettyText)
        #expect(String(decoding: StateStore.viewBytes(state), as: UTF8.self) == state.json.prettyText + "\n")

        let (lines, view) = StateStore.commitTexts(state, closing: entries)
        var members = state.membersWithoutSchema
        members["history_bytes"] = nil
        var text = entries.dropLast().map { $0.json.compactText + "\n" }.joined()
        var last = try #require(entries.last?.json.objectValue)
        last["state"] = .object(members)
        text += JSONValue.object(last).compactText + "\n"
        #expect(String(decoding: lines, as: UTF8.self) == text)
        var grown = state
        grown.historyBytes += lines.count
        #expect(view == StateStore.viewBytes(grown))
        expected = JSONValue.object(grown.membersWithoutSchema)
        #expect(String(decoding: view, as: UTF8.self).hasPrefix(String(expected.prettyText.dropLast(2))))
    }

    @Test("the state decoder for this format's own text gives what the general decoder gives, or leaves the document to it", arguments: 0..<6)
    func standardTextDecoderMatchesGeneral(variant: Int) throws {
        let state = Self.sampleState(variant)
        let view = StateStore.checkedView(StateStore.viewBytes(state))
        let decoded = view.withUnsafeBytes { InstanceState(standardText: $0, skipping: []) }
        #expect(decoded == state, "this format's own view takes the fast path")
        #expect(try StateStore.decodeStateInGeneral(view, path: "v") == state)
        #expect(view.withUnsafeBytes { InstanceState(standardText: $0, skipping: ["variables"]) }?.variables == [:])

        // Every member removed, nulled, retyped, repeated, or given another value; extras; other layouts.
        let members = try #require(try JSONValue(parsing: view).objectValue)
        let replacements: [JSONValue] = [nil, 0, -1, 1.5, "x", "b", "wfi_0123456789ab", [:], [], true, ["phase": "b", "started_at": 1, "status": "running"]]
        var documents: [[UInt8]] = []
        func add(_ object: [String: JSONValue]) { documents.append(Array(JSONValue.object(object).prettyText.utf8)) }
        for key in members.keys.sorted() {
            var without = members
            without[key] = nil
            add(without)
            for value in replacements {
                var changed = members
                changed[key] = value
                add(changed)
            }
            var text = Array(JSONValue.object(members).compactText.utf8)
            text.insert(contentsOf: Array("\"\(key)\":\(members[key]!.compactText),".utf8), at: 1)
            documents.append(text)
        }
        for (key, value) in [("history", JSONValue.array([])), ("history", nil), ("extra", ["a": [1]]), ("workflow_schema", nil)] as [(String, JSONValue)] {
            var changed = members
            changed[key] = value
            add(changed)
        }
        documents += [Array("[]".utf8), Array("{}".utf8), view + Array(" x".utf8), Array(view.dropLast(3)), view + Array("\n\n".utf8)]
        var fastOnes = 0
        for document in documents {
            let fast = document.withUnsafeBytes { InstanceState(standardText: $0, skipping: []) }
            let general = try? StateStore.decodeStateInGeneral(document, path: "d")
            if let fast {
                fastOnes += 1
                #expect(fast == general, "\(String(decoding: document, as: UTF8.self))")
            }
            #expect((try? StateStore.decodeState(document, path: "d")) == general)
        }
        // Some variations are still this format's (another previous phase, no view_crc32, an extra member).
        #expect(fastOnes >= 4, "\(fastOnes) of \(documents.count) took the fast path")
    }

    /// A state of every shape this format writes: with and without a previous phase, a claim, a
    /// task, data of every JSON kind; finished (no open entry) in variant 5.
    static func sampleState(_ variant: Int) -> InstanceState {
        let schema = WorkflowSchema(name: "w.1", phases: [.init(name: "a", task: "say \"hi\"\n"), .init(name: "b"), .init(name: "c")])
        var entry = HistoryEntry(phase: "b", task: variant.isMultiple(of: 2) ? nil : "t\u{01}", startedAt: 1_796_318_813.3721929)
        if variant >= 3 { entry.claim = Claim(owner: "agent \"x\"", token: "tok", expiresAt: 1_796_318_900) }
        let data: JSONValue = variant == 1 ? "plain" : ["z": [1, 2.5, "é🎉"], "a": ["b": nil, "c": [:], "d": []], "n": .number(JSONNumber(literal: "12345678901234567890")!)]
        return InstanceState(
            instanceID: "wfi_0123456789ab", featureID: "f", workflowName: schema.name, schema: schema,
            currentPhase: variant == 5 ? "c" : "b", previousPhase: variant == 0 ? nil : "a",
            status: variant == 5 ? .completed : .running, variables: variant == 2 ? [:] : data.objectValue ?? ["k": data],
            meta: ["m\t": true], createdAt: 1_796_318_813.25, updatedAt: 1_796_318_814, historyLength: 2 + variant,
            historyBytes: 100 * variant, currentEntry: variant == 5 ? nil : entry)
    }

    @Test("CRC-32 by slices of 8 bytes equals the bytewise table at every length and alignment")
    func crc32Slices() {
        var table = [UInt32](repeating: 0, count: 256)
        for index in 0..<256 {
            var value = UInt32(index)
            for _ in 0..<8 { value = value & 1 != 0 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
            table[index] = value
        }
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<300).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for start in 0..<9 {
            for end in stride(from: start, through: bytes.count, by: 7) {
                var crc: UInt32 = 0xFFFF_FFFF
                for byte in bytes[start..<end] { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
                #expect(CRC32.checksum(bytes[start..<end]) == crc ^ 0xFFFF_FFFF, "\(start)..<\(end)")
            }
        }
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
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
