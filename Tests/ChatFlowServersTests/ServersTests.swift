import ChatFlow
import ChatFlowWatch
import Foundation
import Hummingbird
import MCP
import Testing

@testable import ChatFlowMCP
@testable import ChatFlowUI

/// The parts of the MCP server and the web view that decide something on their own.
@Suite("MCP arguments and the web view's event log")
struct ServersTests {
    @Test("tool arguments: unknown members refused, types checked, durations in seconds or with a unit")
    func arguments() throws {
        #expect(throws: ChatFlowError.self) {
            try OperationArguments(operation: "trigger", values: ["expect_transiton": 1], allowed: ["id", "expect_transition"])
        }
        let values: [String: MCP.Value] = ["phase": "review", "ttl": "5m", "n": 3, "x": 2.0, "flag": true, "gone": .null]
        let arguments = try OperationArguments(
            operation: "claim", values: values.mapValues(JSONValue.init), allowed: ["phase", "ttl", "n", "x", "flag", "gone"])
        #expect(try arguments.required("phase") == "review")
        #expect(try arguments.duration("ttl") == 300)
        #expect(try arguments.int("n") == 3)
        #expect(try arguments.int("x") == 2, "an integral double is an integer")
        #expect(try arguments.bool("flag"))
        #expect(try arguments.string("gone") == nil, "null is absent")
        #expect(throws: ChatFlowError.self) { try arguments.int("phase") }
        #expect(throws: ChatFlowError.self) { try arguments.required("missing") }
        let bad = try OperationArguments(operation: "claim", values: ["ttl": "soon", "zero": 0], allowed: ["ttl", "zero"])
        #expect(throws: ChatFlowError.self) { try bad.duration("ttl") }
        #expect(throws: ChatFlowError.self) { try bad.duration("zero") }
    }

    @Test("JSON values keep their kinds across the SDK's Value, a data URL string included")
    func values() throws {
        let json = try JSONValue(parsing: #"{"a": [1, 2.5, true, null, "s"], "b": {"c": -7}}"#)
        #expect(JSONValue(json.mcpValue) == json)
        #expect(JSONValue(MCP.Value.data(mimeType: "text/plain", Data("hi".utf8))) == .string("data:text/plain;base64,aGk="))
    }

    @Test("every tool's schema is an object with its arguments, and the catalog names each once")
    func catalog() {
        let names = ChatFlowTools.all.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names == Operations.all.map(\.name), "one tool per operation, in the catalogue's order")
        for (tool, operation) in zip(ChatFlowTools.all, Operations.all) {
            #expect(tool.inputSchema.objectValue?["type"] == "object", "\(tool.name)")
            #expect(tool.inputSchema.objectValue?["additionalProperties"] == .bool(false), "\(tool.name)")
            #expect(Set(tool.inputSchema.objectValue?["properties"]?.objectValue?.keys.map { $0 } ?? []) == Set(operation.properties.keys))
            #expect(tool.annotations.readOnlyHint == operation.readOnly)
        }
    }

    @Test("a tool failure carries the command's error code")
    func failures() {
        let failure = ChatFlowTools.failure(ChatFlowError.transitionMismatch(instanceID: "wfi_000000000001", expected: 1, actual: 2))
        #expect(failure.isError == true)
        #expect(JSONValue(failure.structuredContent ?? .null)["error"]?["code"] == "conflict")
        #expect(ErrorDocument.describe(ChatFlowError.timedOut(seconds: 1, what: "x")).code == "timeout")
        #expect(ErrorDocument.describe(WatchError.watchFailed(path: "/x", reason: "gone")).code == "io")
    }

    @Test("the event log replays what a page missed, and says rescan when it cannot")
    func eventLog() async {
        let log = EventLog(epoch: "e1")
        for index in 1...5 { await log.append(.instance(id: "wfi_00000000000\(index)")) }
        let resumed = await log.subscribe(after: "e1-3")
        #expect(resumed.replay.map(\.sequence) == [4, 5])
        #expect(!resumed.missed)
        let otherServer = await log.subscribe(after: "e0-3")
        #expect(otherServer.missed && otherServer.replay.isEmpty, "another process's ids: read everything")
        let fresh = await log.subscribe(after: nil)
        #expect(!fresh.missed && fresh.replay.isEmpty)
        for index in 0..<(EventLog.kept + 10) { await log.append(.instance(id: "wfi_\(String(index, radix: 16).leftPadding(12))")) }
        let tooOld = await log.subscribe(after: "e1-2")
        #expect(tooOld.missed, "events it missed are no longer kept")
        await log.append(.rescanAll(reason: "overflow"))
        // A page that fell behind keeps the newest events; the last is the rescan.
        await log.unsubscribe(fresh.id)
        var last: EventLog.Event?
        for await event in fresh.stream { last = event }
        #expect(last != nil && last?.instanceID == nil, "a lost queue reaches the page as rescan")
        #expect(EventStream.frame(last, epoch: "e1").contains("event: rescan"))
    }

    @Test("the bind rule: loopback needs no token, another address does, and so do actions")
    func configuration() {
        #expect((try? UIConfiguration(bind: "127.0.0.1").validate()) != nil)
        #expect((try? UIConfiguration(bind: "0.0.0.0").validate()) == nil)
        #expect((try? UIConfiguration(bind: "0.0.0.0", token: String(repeating: "t", count: 20)).validate()) != nil)
        #expect((try? UIConfiguration(actions: true).validate()) == nil)
        #expect(AccessGuard<BasicRequestContext>.hostName("[::1]:8750") == "[::1]")
        #expect(AccessGuard<BasicRequestContext>.hostName("localhost:80") == "localhost")
    }
}

extension String {
    fileprivate func leftPadding(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
