import ChatFlow
import ChatFlowTestSupport
import Foundation
import Testing

import Glibc

/// The command-line contract of both binaries: help and versions, the exit-code table, JSON
/// errors, finding the state directory, artifacts, listing past a broken file.
@Suite("Command-line conventions (real binaries)", .timeLimit(.minutes(2)))
struct CommandLineTests {
    /// `chatflow` with `--root` on the sandbox, and no inherited CHATFLOW_ROOT.
    private func chatflow(_ sandbox: Sandbox, _ arguments: [String], stdin: Data? = nil) throws -> CommandResult {
        try run("chatflow", ["--root", sandbox.root] + arguments, environment: ["CHATFLOW_ROOT": ""], standardInput: stdin)
    }

    @Test("help goes to stdout with exit 0, for the command, its subcommands and the watcher; --version prints one version")
    func help() throws {
        for arguments in [["--help"], ["help", "status"], ["status", "--help"], ["help"]] {
            let result = try run("chatflow", arguments)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            #expect(result.stdout.contains("USAGE"), "\(arguments)")
            #expect(result.stderr.isEmpty, "\(arguments): \(result.stderr)")
        }
        let watch = try run("chatflow-watch", ["--help"])
        #expect(watch.status == 0 && watch.stdout.contains("USAGE") && watch.stderr.isEmpty)
        for binary in ["chatflow", "chatflow-watch"] {
            let version = try run(binary, ["--version"])
            #expect(version.status == 0)
            #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == ChatFlow.version)
        }
    }

    @Test("every command holds README's exit-code table: 2 usage or invalid input, 3 not found, 4 conflict")
    func exitCodes() throws {
        let sandbox = Sandbox()
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        let unknown = "wfi_000000000000"
        let table: [([String], Int32)] = [
            (["trigger", id, "--to", "bogus"], 2),
            (["trigger", id, "--data", "{"], 2),
            (["start", "--feature", "f"], 2),
            (["list", "--status", "sleeping"], 2),
            (["status", "not-an-id"], 2),
            (["frobnicate"], 2),
            (["status", unknown], 3),
            (["trigger", unknown], 3),
            (["history", unknown], 3),
            (["runs", unknown], 3),
            (["artifacts", unknown], 3),
            (["artifact", id, "nosuch"], 3),
            (["feature", "nosuch"], 3),
            (["trigger", id, "--expect-transition", "9"], 4),
            (["status", id], 0),
        ]
        for (arguments, expected) in table {
            let result = try chatflow(sandbox, arguments)
            #expect(result.status == expected, "chatflow \(arguments.joined(separator: " ")): \(result.status) \(result.stderr)")
            if expected != 0 {
                #expect(result.stderr.hasPrefix("chatflow: error: ") && result.stdout.isEmpty, "\(arguments)")
            }
        }
        for arguments in [["--jobs", "0"], ["--log-level", "loud"], ["--log-format", "xml"], ["--bogus"]] {
            let result = try run("chatflow-watch", ["--root", sandbox.root] + arguments)
            #expect(result.status == 2, "chatflow-watch \(arguments): \(result.status)")
            #expect(result.stderr.hasPrefix("chatflow-watch: error: ") && result.stderr.contains("--help"), "\(result.stderr)")
        }
        // A mistyped command is answered with the one it most likely meant.
        let typo = try chatflow(sandbox, ["statsu", id])
        #expect(typo.status == 2 && typo.stderr.contains("did you mean 'status'?"), "\(typo.stderr)")
        let stranger = try chatflow(sandbox, ["xyzzy"])
        #expect(stranger.status == 2 && stranger.stderr.contains("unknown command 'xyzzy'") && !stranger.stderr.contains("did you mean"), "\(stranger.stderr)")
        #expect(try sandbox.engine.status(id)?.historyLength == 1, "nothing was written")
    }

    @Test("with --json an error is one JSON object on stderr with a stable code, and stdout stays empty")
    func jsonErrors() throws {
        let sandbox = Sandbox()
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        let cases: [([String], String, Int32)] = [
            (["status", "wfi_000000000000", "--json"], "not_found", 3),
            (["trigger", id, "--to", "bogus", "--json"], "invalid_input", 2),
            (["trigger", id, "--expect-transition", "7", "--json"], "conflict", 4),
            (["list", "--bogus-flag", "--json"], "usage", 2),
        ]
        for (arguments, code, status) in cases {
            let result = try chatflow(sandbox, arguments)
            #expect(result.status == status, "\(arguments)")
            #expect(result.stdout.isEmpty, "\(arguments)")
            let error = try JSONValue(parsing: result.stderr.trimmingCharacters(in: .newlines))["error"]
            #expect(error?["code"]?.stringValue == code, "\(arguments): \(result.stderr)")
            #expect((error?["message"]?.stringValue ?? "").isEmpty == false)
        }
    }

    @Test("status --json carries the whole history, open entry last, and the transition number")
    func statusDocument() throws {
        let sandbox = Sandbox()
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        try sandbox.engine.trigger(id, data: ["design": "done"])
        try sandbox.engine.trigger(id, to: "design")
        let result = try chatflow(sandbox, ["status", id, "--json"])
        #expect(result.status == 0)
        let document = try JSONValue(parsing: result.stdout)
        #expect(document["transition"]?.intValue == 2)
        let phases = document["history"]?.arrayValue?.map { $0["phase"]?.stringValue ?? "" }
        #expect(phases == ["design", "implement", "design"])
        #expect(document["history"]?.arrayValue?.last?["status"]?.stringValue == "running")
        #expect(document["history"]?.arrayValue?.first?["trigger_data_snapshot"]?["design"]?.stringValue == "done")
        // The number agents pass back works as is.
        let next = try chatflow(sandbox, ["trigger", id, "--expect-transition", "2"])
        #expect(next.status == 0, "\(next.stderr)")
    }

    @Test("list reports a corrupt state on stderr, lists the rest and exits 1; --phase and --status running (created included) filter")
    func listing() throws {
        let sandbox = Sandbox()
        let a = try sandbox.engine.start(schema: devSchema, featureID: "f")
        let b = try sandbox.engine.start(schema: devSchema, featureID: "f")
        try sandbox.engine.trigger(b)
        let broken = sandbox.engine.layout.stateFile("wfi_0000000000aa")
        _ = FileManager.default.createFile(atPath: broken, contents: Data("{ torn".utf8))
        let all = try chatflow(sandbox, ["list"])
        #expect(all.status == 1)
        #expect(all.stdout.contains(a) && all.stdout.contains(b))
        #expect(all.stderr.contains(broken))
        let design = try chatflow(sandbox, ["list", "--phase", "design"])
        #expect(design.stdout.contains(a) && !design.stdout.contains(b))
        let running = try chatflow(sandbox, ["list", "--status", "running", "--feature", "f"])
        #expect(running.status == 0 && running.stdout.contains(a) && running.stdout.contains(b))
        let created = try chatflow(sandbox, ["list", "--status", "created", "--feature", "f"])
        #expect(created.stdout.contains(a) && !created.stdout.contains(b))
    }

    @Test("save-artifact --file and stdin; `artifact ID NAME` gives the same bytes back")
    func artifacts() throws {
        let sandbox = Sandbox()
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        let bytes = Data((0..<1000).map { UInt8($0 % 256) })
        let file = sandbox.directory + "/report.bin"
        try bytes.write(to: URL(fileURLWithPath: file))
        #expect(try chatflow(sandbox, ["save-artifact", id, "report.bin", "--file", file]).status == 0)
        #expect(try chatflow(sandbox, ["save-artifact", id, "notes.txt"], stdin: Data("hello\n".utf8)).status == 0)
        let process = Process()
        process.executableURL = binaries.appendingPathComponent("chatflow")
        process.arguments = ["--root", sandbox.root, "artifact", id, "report.bin"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let back = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0 && back == bytes)
        #expect(try chatflow(sandbox, ["artifact", id, "notes.txt"]).stdout == "hello\n")
        #expect(try chatflow(sandbox, ["artifacts", id]).stdout == "notes.txt\nreport.bin\n")
        #expect(try chatflow(sandbox, ["save-artifact", id, "x", "--file", sandbox.directory + "/missing"]).status == 2)
    }

    @Test("the state directory is found upward as git finds .git; only init creates one; elsewhere the error names where it looked")
    func findingTheStateDirectory() throws {
        let sandbox = Sandbox()
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        let deep = sandbox.directory + "/src/sub"
        try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
        let noRoot = ["CHATFLOW_ROOT": ""]
        let status = try run("chatflow", ["status", id], environment: noRoot, in: deep)
        #expect(status.status == 0, "\(status.stderr)")
        let started = try run("chatflow", ["start", "--feature", "g", "--phases", "a,b"], environment: noRoot, in: deep)
        #expect(started.status == 0)
        #expect(!FileManager.default.fileExists(atPath: deep + "/.chatflow"), "no second state directory")
        #expect(try sandbox.engine.status(started.stdout.trimmingCharacters(in: .newlines)) != nil)

        let elsewhere = TemporaryDirectory("chatflow-nowhere")
        let refused = try run("chatflow", ["start", "--feature", "g", "--phases", "a,b"], environment: noRoot, in: elsewhere.path)
        #expect(refused.status == 3)
        #expect(refused.stderr.contains(elsewhere.path + "/.chatflow") && refused.stderr.contains("chatflow init"))
        #expect(!FileManager.default.fileExists(atPath: elsewhere.path + "/.chatflow"))
        let missing = elsewhere.path + "/nonexistent/x"
        for binary in ["chatflow-watch", "chatflow"] {
            let result = try run(binary, binary == "chatflow" ? ["--root", missing, "list"] : ["--root", missing], environment: noRoot)
            #expect(result.status == 3, "\(binary): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains(missing) && result.stderr.contains("chatflow init"))
            #expect(!FileManager.default.fileExists(atPath: elsewhere.path + "/nonexistent"), "\(binary) created nothing")
        }
        let initialised = try run("chatflow", ["init"], environment: noRoot, in: elsewhere.path)
        #expect(initialised.status == 0 && FileManager.default.fileExists(atPath: elsewhere.path + "/.chatflow/instances"))
    }
}
