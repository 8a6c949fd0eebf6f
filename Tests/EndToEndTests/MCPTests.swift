import ChatFlow
import ChatFlowTestSupport
import Foundation
import Testing

/// `chatflow-mcp` driven by clients that are not ours: the Python MCP SDK (PyPI `mcp`, installed
/// by scripts/setup.sh into `.venv-test`) and a bare JSON-RPC exchange over pipes.
@Suite("The MCP server, with a real client", .serialized, .timeLimit(.minutes(2)))
struct MCPTests {
    private static let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    private let client = package.appendingPathComponent("Tests/interop/mcp_client.py").path
    private let python = package.appendingPathComponent(".venv-test/bin/python").path

    @Test("the Python mcp client: initialize, list and call every tool, wait on another process, a subscription, tool errors")
    func pythonClient() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: python), "no \(python): run scripts/setup.sh (it makes the venv with mcp)")
        let work = TemporaryDirectory("chatflow-mcp")
        let result = try await runToEndOffPool(python, ["-W", "ignore::DeprecationWarning", client, binaries.path, work.path])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("all checks passed"), "\(result.stdout)")
        let checks = result.stdout.split(separator: "\n").filter { $0.hasPrefix("ok: ") }.count
        #expect(checks >= 100, "every tool and every case was checked (\(checks) checks)")
    }

    @Test("the same client with every process on a PostgreSQL store: resource updates and waits through LISTEN",
          .enabled(if: TestDatabase.server != nil, "needs $CHATFLOW_TEST_POSTGRES (scripts/test.sh starts a server)"))
    func pythonClientOnPostgres() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: python), "no \(python): run scripts/setup.sh (it makes the venv with mcp)")
        let database = try TestDatabase()
        let work = TemporaryDirectory("chatflow-mcp")
        let result = try await runToEndOffPool(
            python, ["-W", "ignore::DeprecationWarning", client, binaries.path, work.path], environment: ["CHATFLOW_STORE": database.url])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("all checks passed"), "\(result.stdout)")
        #expect(try database.sql("SELECT count(*) > 3 FROM chatflow_instances") == "t\n", "the instances are in the database")
        let local = (try? FileManager.default.contentsOfDirectory(atPath: work.path + "/.chatflow/instances")) ?? []
        #expect(!local.contains { $0.hasSuffix(".json") }, "no state file was written on this host: \(local)")
    }

    @Test("stdout carries only JSON-RPC, logs go to stderr, and the server ends when the client closes stdin")
    func stdoutIsProtocolOnly() throws {
        let sandbox = Sandbox()
        let id = try sandbox.engine.start(schema: WorkflowSchema(name: "w", phaseNames: ["a", "b"]), featureID: "f")
        let requests = [
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"pipe","version":"1"}}}"#,
            #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"status","arguments":{"id":"\#(id)"}}}"#,
            #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"trigger","arguments":{"id":"\#(id)","expect_transition":0}}}"#,
            #"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"trigger","arguments":{"id":"\#(id)","expect_transition":0}}}"#,
        ]
        let result = try run(
            "chatflow-mcp", ["--root", sandbox.root, "--log-level", "debug"], standardInput: Data((requests.joined(separator: "\n") + "\n").utf8))
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        let messages = try lines.map { try JSONValue(parsing: String($0)) }
        #expect(messages.allSatisfy { $0["jsonrpc"] == "2.0" }, "\(result.stdout)")
        func reply(_ number: Int) -> JSONValue? { messages.first { $0["id"]?.intValue == number }?["result"] }
        #expect(reply(1)?["serverInfo"]?["name"] == "chatflow")
        // Requests are handled concurrently (JSON-RPC promises no order), so the status may be read
        // before or after the winning trigger; either way it is one consistent snapshot.
        let status = reply(2)?["structuredContent"]
        let snapshot = (status?["current_phase"]?.stringValue, status?["transition"]?.intValue, status?["history"]?.arrayValue?.count)
        #expect(snapshot == ("a", 0, 1) || snapshot == ("b", 1, 2), "\(result.stdout)")
        // Of the two triggers guarded by the same transition, exactly one moves the instance and
        // the other is refused.
        let triggers = [reply(3), reply(4)]
        #expect(triggers.filter { $0?["structuredContent"]?["current_phase"] == "b" }.count == 1, "\(result.stdout)")
        #expect(triggers.filter { $0?["isError"] == .bool(true) && $0?["structuredContent"]?["error"]?["code"] == "conflict" }.count == 1)
        #expect(result.stderr.contains("serving"), "logs are on stderr: \(result.stderr)")
        #expect(try sandbox.engine.freshStatus(id)?.historyLength == 2)
    }

    @Test("the transport: requests with ids MCP does not allow do not hold the server at the end of input; a call before initialize is refused; a line past the limit is dropped with an error, and serving goes on", .timeLimit(.minutes(1)))
    func hostileTransport() throws {
        let sandbox = Sandbox()
        let initialize = #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"pipe","version":"1"}}}"#
        // Before initialize, then ids of every kind MCP does not allow, then the end of input.
        var lines = [#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list","arguments":{}}}"#, initialize]
        for id in ["1.5", "{}", "[1]", "true"] {
            lines.append(#"{"jsonrpc":"2.0","id":\#(id),"method":"tools/call","params":{"name":"list","arguments":{}}}"#)
        }
        var result = try run("chatflow-mcp", ["--root", sandbox.root], standardInput: Data((lines.joined(separator: "\n") + "\n").utf8))
        #expect(result.status == 0, "it ended at the end of input: \(result.stderr.suffix(300))")
        let replies = try result.stdout.split(separator: "\n").map { try JSONValue(parsing: String($0)) }
        #expect(replies.contains { $0["id"]?.intValue == 7 && $0["error"]?["code"]?.intValue == -32002 }, "\(result.stdout)")
        #expect(replies.contains { $0["id"]?.intValue == 1 && $0["result"] != nil })

        // A line longer than the limit, then a request: the first is answered with an error
        // (and never held whole in memory), the second served.
        var input = Data(initialize.utf8) + Data("\n".utf8)
        input.append(Data(repeating: UInt8(ascii: "x"), count: (96 << 20) + (1 << 20)))
        input.append(Data("\n".utf8))
        input.append(Data((#"{"jsonrpc":"2.0","id":2,"method":"ping"}"# + "\n").utf8))
        result = try run("chatflow-mcp", ["--root", sandbox.root], standardInput: input)
        #expect(result.status == 0)
        let answers = try result.stdout.split(separator: "\n").map { try JSONValue(parsing: String($0)) }
        #expect(answers.contains { $0["error"]?["message"]?.stringValue?.contains("larger than") == true }, "\(result.stdout.prefix(400))")
        #expect(answers.contains { $0["id"]?.intValue == 2 && $0["result"] != nil }, "served after the long line")
    }

    @Test("--print-config prints a snippet for each client with this binary's path; an unknown client is a usage error")
    func printConfig() throws {
        let sandbox = Sandbox()
        let binary = binaries.appendingPathComponent("chatflow-mcp").resolvingSymlinksInPath().path
        for client in ["claude-code", "gemini", "vscode"] {
            let result = try run("chatflow-mcp", ["--root", sandbox.root, "--print-config", client])
            #expect(result.status == 0)
            let json = try JSONValue(parsing: String(result.stdout.drop { $0 != "{" }))
            let server = json["mcpServers"]?["chatflow"] ?? json["servers"]?["chatflow"]
            #expect(server?["command"]?.stringValue == binary, "\(client): \(result.stdout)")
            #expect(server?["args"] == .array([.string("--root"), .string(sandbox.root)]), "\(client): \(result.stdout)")
        }
        let codex = try run("chatflow-mcp", ["--root", sandbox.root, "--print-config", "codex"])
        #expect(codex.stdout.contains("[mcp_servers.chatflow]") && codex.stdout.contains("command = \"\(binary)\""), "\(codex.stdout)")
        let unknown = try run("chatflow-mcp", ["--print-config", "emacs"])
        #expect(unknown.status == 2 && unknown.stderr.contains("claude-code"), "\(unknown.stderr)")
        let missing = try run("chatflow-mcp", ["--root", sandbox.directory + "/nowhere"])
        #expect(missing.status == 3, "no state directory: \(missing.stderr)")
    }

    @Test("chatflow, which every hook calls, links neither the MCP SDK nor the whole of Foundation")
    func commandStaysSmall() throws {
        let ldd = try runToEnd("/usr/bin/ldd", [binaries.appendingPathComponent("chatflow").path])
        #expect(ldd.status == 0)
        #expect(!ldd.stdout.contains("libFoundation.so") && !ldd.stdout.contains("FoundationNetworking"), "\(ldd.stdout)")
        let bytes = try Data(contentsOf: binaries.appendingPathComponent("chatflow"))
        #expect(bytes.range(of: Data("mcp.transport.stdio".utf8)) == nil, "the MCP SDK is not in chatflow")
        let server = try Data(contentsOf: binaries.appendingPathComponent("chatflow-mcp"))
        #expect(server.range(of: Data("mcp.transport.stdio".utf8)) != nil, "the probe string is the SDK's")
    }
}
