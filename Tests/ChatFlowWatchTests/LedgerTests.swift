import ChatFlowTestSupport
import ChatFlow
import Foundation
import Testing
@testable import ChatFlowWatch

@Suite("Ledger")
struct LedgerTests {
    private func layout() -> Layout {
        Layout(root: NSTemporaryDirectory() + "ledger-\(UUID().uuidString)/.chatflow")
    }

    @Test("reads its own lines fast, other JSON forms through the parser, and skips torn or foreign lines")
    func parsing() {
        func parse(_ text: String) -> (String, Int)? {
            Ledger.parse(ArraySlice(Array(text.utf8))).map { ($0.0.id, $0.1) }
        }
        #expect(parse(#"{"instance_id":"wfi_00000000abcd","next":3}"#)! == ("wfi_00000000abcd", 3))
        #expect(parse(#"{ "next": 7, "instance_id": "wfi_0000000000ff" }"#)! == ("wfi_0000000000ff", 7))
        #expect(parse(#"{"instance_id":"wfi_00000000abcd","next":"#) == nil)
        #expect(parse(#"{"instance_id":"../etc/passwd","next":1}"#) == nil)
        #expect(parse(#"{"instance_id":"wfi_00000000abcd","next":-1}"#) == nil)
    }

    @Test("positions only move forward, survive a reload, and reset moves one back explicitly")
    func forwardOnly() throws {
        let layout = layout()
        let ledger = try Ledger(layout: layout)
        try ledger.record([("wfi_000000000001", 3), ("wfi_000000000002", 1)])
        try ledger.record([("wfi_000000000001", 2)])
        #expect(ledger.next("wfi_000000000001") == 3)
        try ledger.reset("wfi_000000000002", to: 0)
        let reloaded = try Ledger(layout: layout)
        #expect(reloaded.next("wfi_000000000001") == 3)
        #expect(reloaded.next("wfi_000000000002") == 0)
        #expect(reloaded.next("wfi_000000000003") == nil)
    }

    @Test("a torn last line is cut, and loading compacts to one line per instance")
    func tornAndCompacted() throws {
        let layout = layout()
        let ledger = try Ledger(layout: layout)
        for next in 1...5 { try ledger.record([("wfi_000000000001", next)]) }
        let path = layout.watchDirectory + "/ledger.ndjson"
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"instance_id":"wfi_0000"#.utf8))
        try handle.close()
        let reloaded = try Ledger(layout: layout)
        #expect(reloaded.next("wfi_000000000001") == 5)
        try reloaded.record([("wfi_000000000002", 1)])
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines == [#"{"instance_id":"wfi_000000000001","next":5}"#, #"{"instance_id":"wfi_000000000002","next":1}"#])
    }

    @Test("finished hooks of a transition survive a reload and are cleared once the transition is recorded")
    func hooksDone() throws {
        let directory = TemporaryDirectory()
        let layout = Layout(root: directory.root)
        let id = "wfi_000000000042"
        var ledger = try Ledger(layout: layout)
        try ledger.record([(id, 3)])
        try ledger.recordHook(id, position: 3, hook: "testing")
        try ledger.recordHook(id, position: 3, hook: "testing.d/20-lint")
        ledger = try Ledger(layout: layout)
        #expect(ledger.next(id) == 3)
        #expect(ledger.hooksDone(id, at: 3) == ["testing", "testing.d/20-lint"])
        #expect(ledger.hooksDone(id, at: 4).isEmpty)
        try ledger.record([(id, 4)])
        ledger = try Ledger(layout: layout)
        #expect(ledger.next(id) == 4 && ledger.hooksDone(id, at: 4).isEmpty)
        try ledger.recordHook(id, position: 2, hook: "late")
        #expect(ledger.next(id) == 4, "a hook of an older transition does not move the ledger back")
    }
}
