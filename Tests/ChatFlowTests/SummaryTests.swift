import ChatFlowTestSupport
import Foundation
import Testing
@testable import ChatFlow

@Suite("Instance summary (the watcher's read)")
struct SummaryTests {
    /// Runs `body` with an engine and the id of a real instance whose state file was changed by
    /// `change` (written back as pretty JSON).
    private func withState(_ change: (inout [String: JSONValue]) -> Void, _ body: (WorkflowEngine, String) throws -> Void) throws {
        let root = TemporaryRoot()
        let engine = root.engine
        let id = try engine.start(schema: fourPhases, featureID: "f")
        let note = JSONValue.string("a long value " + String(repeating: "x", count: 500))
        try engine.trigger(id, data: ["note": note, "list": [1, 2, ["deep": nil]]])
        let path = engine.layout.stateFile(id)
        var object = try #require(try JSONValue(parsing: String(contentsOfFile: path, encoding: .utf8)).objectValue)
        change(&object)
        _ = FileManager.default.createFile(atPath: path, contents: Data(JSONValue.object(object).prettyText.utf8))
        try body(WorkflowEngine(root: root.path), id)
    }

    @Test("agrees with the full state on a valid file")
    func agrees() throws {
        try withState({ _ in }) { engine, id in
            let full = try #require(try engine.freshStatus(id))
            let (summary, text) = try #require(try engine.freshSummaryWithText(id))
            #expect(summary == InstanceSummary(full))
            #expect(text == Array(try String(contentsOfFile: engine.layout.stateFile(id), encoding: .utf8).utf8))
        }
    }

    @Test("refuses what the full state refuses in any member's presence or type", arguments: [
        "workflow_schema", "variables", "meta", "created_at", "updated_at", "history_bytes", "current_entry", "status",
        "history_length", "feature_id",
    ])
    func refusesBrokenMembers(key: String) throws {
        for replacement: JSONValue? in [nil, "text", 42, [1], true] {
            try withState({ $0[key] = replacement }) { engine, id in
                guard (try? engine.freshStatus(id)) == nil else { return }
                #expect(throws: ChatFlowError.self, "\(key) = \(String(describing: replacement))") {
                    try engine.freshSummaryWithText(id)
                }
            }
        }
    }

    @Test("refuses a foreign id and phase names that escape a directory; reads a finished status with an open entry as another writer's")
    func refusesInconsistent() throws {
        try withState({ $0["status"] = "completed" }) { engine, id in
            let summary = try #require(try engine.freshSummaryWithText(id)).summary
            #expect(summary.currentEntry == nil && summary.status == .completed)
            #expect(summary.foreignLayout != nil && summary.foreignEntries.count == 1)
        }
        let changes: [(inout [String: JSONValue]) -> Void] = [
            { $0["current_phase"] = "../evil" },
            { $0["previous_phase"] = "a/b" },
            { $0["instance_id"] = "wfi_000000000000" },
        ]
        for change in changes {
            try withState(change) { engine, id in
                #expect(throws: ChatFlowError.self) { try engine.freshSummaryWithText(id) }
            }
        }
    }
}
