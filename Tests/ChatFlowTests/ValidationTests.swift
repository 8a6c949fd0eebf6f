import ChatFlowTestSupport
import Testing
@testable import ChatFlow

@Suite("Identifiers and schemas")
struct ValidationTests {
    @Test("accepts well-formed instance ids", arguments: ["wfi_0123456789ab", "wfi_ffffffffffff"])
    func goodInstanceIDs(id: String) throws {
        try Identifiers.validateInstanceID(id)
    }

    @Test("refuses instance ids that are malformed or escape a directory", arguments: [
        "", "wfi_", "wfi_0123456789AB", "wfi_0123456789abc", "../wfi_0123456789", "wfi_0123456789a/",
        "wfi_01234567\u{0}9ab", "WFI_0123456789ab",
    ])
    func badInstanceIDs(id: String) {
        #expect(throws: ChatFlowError.self) { try Identifiers.validateInstanceID(id) }
    }

    @Test("refuses names that are empty, hidden, too long or hold path characters", arguments: [
        "", ".", "..", ".hidden", "a/b", "../x", "a b", "a\nb", "@any", "é", String(repeating: "x", count: 129), "a\u{0}",
    ])
    func badNames(name: String) {
        #expect(Identifiers.nameProblem(name) != nil)
    }

    @Test("accepts safe names", arguments: ["a", "login-v2", "feat_1.2", String(repeating: "x", count: 128)])
    func goodNames(name: String) {
        #expect(Identifiers.nameProblem(name) == nil)
    }

    @Test("new instance ids are valid and distinct")
    func newIDs() {
        let ids = (0..<1000).map { _ in Identifiers.newInstanceID() }
        #expect(ids.allSatisfy(Identifiers.isInstanceID))
        #expect(Set(ids).count == ids.count)
    }

    @Test("schemas need phases, valid and unique names")
    func schemaValidation() throws {
        try WorkflowSchema(name: "w", phaseNames: ["a", "b"]).validate()
        #expect(throws: ChatFlowError.self) { try WorkflowSchema(name: "w", phaseNames: []).validate() }
        #expect(throws: ChatFlowError.self) { try WorkflowSchema(name: "w", phaseNames: ["a", "a"]).validate() }
        #expect(throws: ChatFlowError.self) { try WorkflowSchema(name: "w", phaseNames: ["a", "../b"]).validate() }
        #expect(throws: ChatFlowError.self) { try WorkflowSchema(name: "../w", phaseNames: ["a"]).validate() }
    }

    @Test("schemas read from JSON with tasks or plain names")
    func schemaJSON() throws {
        let schema = try WorkflowSchema(json: ["name": "w", "phases": [["name": "a", "task": "do a"], "b"]])
        #expect(schema.phases == [.init(name: "a", task: "do a"), .init(name: "b")])
        #expect(try WorkflowSchema(json: schema.json) == schema)
    }

    @Test("error messages name the thing and the reason")
    func messages() {
        let error = ChatFlowError.invalidIdentifier(kind: .phaseName, value: "a/b", reason: "only letters")
        #expect(error.description == "invalid phase name 'a/b': only letters")
        #expect(ChatFlowError.io(operation: "open", path: "/x", errno: 2).description.contains("No such file"))
    }
}
