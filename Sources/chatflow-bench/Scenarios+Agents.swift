import ArgumentParser
import ChatFlow
import ChatFlowHarness
import Foundation

import Glibc

extension Bench {
    // MARK: 13. agents: claims under contention, and the MCP server's round trip

    /// A pool of instances in `review`; P `claimer` processes each claim, trigger with the token
    /// (`--expect-transition` too) and claim again until nothing is claimable. Claims/s is all
    /// claims over the wall time of the whole run; the per-claim figure is claim + trigger.
    func claims() throws {
        let pool = quick ? 100 : 400
        for processes in [1, 8] {
            let root = newRoot("claims-\(processes)")
            let engine = WorkflowEngine(root: root)
            for _ in 0..<pool { _ = try engine.start(schema: WorkflowSchema(name: "c", phaseNames: ["review", "done"]), featureID: "c") }
            let outputs = (0..<processes).map { root + "/../claimer-\($0).out" }
            let started = Timestamps.monotonic()
            let workers = try outputs.enumerated().map { index, output in
                try process("chatflow-bench", ["claimer", "--root", root, "--name", "agent-\(index)"], stdout: output)
            }
            workers.forEach { $0.waitUntilExit() }
            let wall = Timestamps.monotonic() - started
            var samples = Samples()
            for output in outputs {
                for line in read(output).split(separator: "\n") { samples.add(seconds: Double(line) ?? 0) }
            }
            guard samples.count == pool else { throw HarnessError.failed("claims: \(samples.count) of \(pool) claimed") }
            let rate = Double(pool) / wall
            record(samples.figure(
                "claims.claim_and_trigger.\(processes)_process\(processes == 1 ? "" : "es")",
                note: "\(Int(rate)) claims/s; \(processes) claimer(s) over a pool of \(pool) (each claim scans the phase)"))
        }
    }

    /// `chatflow-mcp` over pipes, as a client runs it: one `tools/call status` after another,
    /// from the request's write to the response's line. The peer is what an agent without MCP
    /// does: spawn `chatflow status ID --json` per question.
    func mcp() throws {
        let engine = WorkflowEngine(root: newRoot("mcp"))
        let id = try engine.start(schema: schema(4), featureID: "m")
        try engine.trigger(id)
        let server = Process()
        server.executableURL = try executable("chatflow-mcp")
        server.arguments = ["--root", engine.root]
        let input = Pipe(), output = Pipe()
        server.standardInput = input
        server.standardOutput = output
        server.standardError = FileHandle.nullDevice
        try server.run()
        let lines = ResponseReader(output.fileHandleForReading.fileDescriptor)
        func send(_ text: String) throws {
            try writeAll(input.fileHandleForWriting.fileDescriptor, Array((text + "\n").utf8), operation: "write", path: "chatflow-mcp's stdin")
        }
        try send(#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#)
        guard lines.response(to: 0) != nil else { throw HarnessError.failed("chatflow-mcp did not initialize") }
        try send(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        var samples = Samples()
        for call in 1...(quick ? 200 : 2000) {
            let started = Timestamps.monotonic()
            try send(#"{"jsonrpc":"2.0","id":\#(call),"method":"tools/call","params":{"name":"status","arguments":{"id":"\#(id)"}}}"#)
            guard let response = lines.response(to: call), response.contains("\"structuredContent\"") else {
                throw HarnessError.failed("chatflow-mcp: no status result for call \(call)")
            }
            samples.add(seconds: Timestamps.monotonic() - started)
        }
        try input.fileHandleForWriting.close()
        server.waitUntilExit()
        let peer = try timeCommand(["--root", engine.root, "status", id, "--json"], runs: quick ? 40 : 300)
        record(samples.figure(
            "mcp.status_round_trip",
            note: "tools/call status → its response, over stdio; \(String(format: "%.1f", peer.percentile(50) / max(samples.percentile(50), 1e-9)))× faster than the peer at p50"))
        record(peer.figure("mcp.status_round_trip.cli_peer", note: "the same question as `chatflow status ID --json`, a process per call"))
    }
}

/// Lines from a pipe or socket: JSON-RPC responses by id, or the next line with a text.
final class ResponseReader {
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(_ fd: Int32) { self.fd = fd }

    /// The next line that contains `text`.
    func line(containing text: String) -> String? {
        line(where: { $0.contains(text) })
    }

    /// The next line that satisfies `accept`; nil at the end of the stream or on a read timeout.
    func line(where accept: (String) -> Bool) -> String? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            while let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                if accept(line) { return line }
            }
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            buffer += chunk[..<count]
        }
    }

    func response(to id: Int) -> String? {
        while let line = line(containing: "\"id\":\(id)") {
            if line.contains("\"id\":\(id),") || line.contains("\"id\":\(id)}") { return line }
        }
        return nil
    }
}

/// A claiming agent for the `claims` scenario: claim, trigger with the token, again, until
/// nothing is claimable; prints the seconds of each claim + trigger.
struct Claimer: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Claim and finish work until none is left (a benchmark helper).")

    @Option(help: "The state directory.") var root: String
    @Option(help: "Who claims.") var name: String

    func run() throws {
        let engine = WorkflowEngine(root: root)
        var lines: [String] = []
        while true {
            let started = Timestamps.monotonic()
            guard let grant = try engine.claim(phase: "review", owner: name, ttl: 600) else { break }
            try engine.trigger(grant.instanceID, expectedTransition: grant.transition, token: grant.claim.token)
            lines.append("\(Timestamps.monotonic() - started)")
        }
        print(lines.joined(separator: "\n"))
    }
}
