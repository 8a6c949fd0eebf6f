import ChatFlow
import ChatFlowTestSupport
import Foundation
import Testing

import Glibc

/// Claims with leases, by real `chatflow` processes racing for the same work.
@Suite("Claims with leases (real processes)", .serialized, .timeLimit(.minutes(2)))
struct ClaimTests {
    private let reviewFirst = WorkflowSchema(name: "r", phaseNames: ["review", "done"])

    private func chatflow(_ sandbox: Sandbox, _ arguments: [String]) throws -> CommandResult {
        try run("chatflow", ["--root", sandbox.root] + arguments)
    }

    @Test("16 processes claiming the same phase, 20 rounds: exactly one winner per round")
    func oneWinner() async throws {
        let sandbox = Sandbox()
        for round in 0..<20 {
            let id = try sandbox.engine.start(schema: reviewFirst, featureID: "round-\(round)")
            let results = try await withThrowingTaskGroup(of: CommandResult.self) { group in
                for agent in 0..<16 {
                    group.addTask {
                        try run("chatflow", ["--root", sandbox.root, "claim", "--phase", "review", "--as", "agent-\(agent)", "--feature", "round-\(round)"])
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let winners = results.filter { $0.status == 0 }
            #expect(winners.count == 1, "round \(round): \(results.map(\.status))")
            #expect(results.filter { $0.status == 3 }.count == 15)
            #expect(winners.first?.stdout.hasPrefix(id + " 0 ") == true)
        }
    }

    @Test("an expired lease is taken over, and the old owner's trigger is refused (exit 4); tokens guard every change")
    func leases() async throws {
        let sandbox = Sandbox()
        let id = try sandbox.engine.start(schema: reviewFirst, featureID: "f")
        let first = try chatflow(sandbox, ["claim", "--phase", "review", "--as", "alice", "--ttl", "0.5", "--json"])
        #expect(first.status == 0)
        let aliceToken = try #require(try JSONValue(parsing: first.stdout)["token"]?.stringValue)
        #expect(try chatflow(sandbox, ["claim", "--phase", "review", "--as", "bob"]).status == 3, "claimed: nothing to take")
        #expect(try chatflow(sandbox, ["list", "--phase", "review", "--claimable"]).stdout.isEmpty)
        #expect(try chatflow(sandbox, ["status", id]).stdout.contains("claimed by alice"))
        #expect(try chatflow(sandbox, ["trigger", id]).status == 4, "no token on a claimed instance")
        #expect(try chatflow(sandbox, ["heartbeat", id, "--token", "wrong"]).status == 4)
        // A lease is time: wait it out.
        #expect(try await eventually(timeout: 10) { try chatflow(sandbox, ["list", "--phase", "review", "--claimable"]).stdout.contains(id) })
        let second = try chatflow(sandbox, ["claim", "--phase", "review", "--as", "bob", "--json"])
        #expect(second.status == 0)
        let bobToken = try #require(try JSONValue(parsing: second.stdout)["token"]?.stringValue)
        #expect(try chatflow(sandbox, ["trigger", id, "--token", aliceToken]).status == 4, "the expired owner is refused")
        #expect(try chatflow(sandbox, ["heartbeat", id, "--token", bobToken, "--ttl", "10m"]).status == 0)
        #expect(try chatflow(sandbox, ["trigger", id, "--token", bobToken]).status == 0)
        let state = try #require(try sandbox.engine.freshStatus(id))
        #expect(state.currentPhase == "done" && state.currentEntry?.claim == nil, "the transition cleared the claim")
        #expect(try sandbox.engine.history(id).first?.claim == nil)
        #expect(try chatflow(sandbox, ["trigger", id, "--token", bobToken]).status == 4, "a token does not outlive its phase")
    }

    @Test("release frees the work; --force triggers a claimed instance; claim --wait takes what arrives")
    func releaseForceAndWait() async throws {
        let sandbox = Sandbox()
        let id = try sandbox.engine.start(schema: reviewFirst, featureID: "f")
        let grant = try chatflow(sandbox, ["claim", "--phase", "review", "--as", "alice"])
        let token = String(grant.stdout.split(separator: " ")[2].dropLast())
        #expect(try chatflow(sandbox, ["release", id, "--token", token]).status == 0)
        #expect(try chatflow(sandbox, ["release", id, "--token", token]).status == 4, "released: the token is gone")
        _ = try chatflow(sandbox, ["claim", "--phase", "review", "--as", "carol"])
        #expect(try chatflow(sandbox, ["trigger", id, "--force"]).status == 0)

        let waiter = Process()
        waiter.executableURL = binaries.appendingPathComponent("chatflow")
        waiter.arguments = ["--root", sandbox.root, "claim", "--phase", "review", "--as", "dave", "--wait", "--timeout", "20"]
        let out = Pipe()
        waiter.standardOutput = out
        try waiter.run()
        #expect(await eventually { hasInotifyWatch(waiter.processIdentifier) }, "armed")
        #expect(waiter.isRunning, "nothing to take yet")
        // An instance that arrives in another phase, then moves into review.
        let next = try sandbox.engine.start(schema: WorkflowSchema(name: "i", phaseNames: ["implement", "review"]), featureID: "g")
        #expect(waiter.isRunning)
        try sandbox.engine.trigger(next)
        waiter.waitUntilExit()
        #expect(waiter.terminationStatus == 0)
        #expect(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).hasPrefix(next + " 1 "))
        #expect(try chatflow(sandbox, ["claim", "--phase", "review", "--as", "erin", "--wait", "--timeout", "0.3"]).status == 5)
    }

    @Test("an owner with terminal sequences or bidirectional overrides is refused; one another writer stored is printed escaped by list, status and conflict errors; no reader is shown the token")
    func hostileOwner() throws {
        let sandbox = Sandbox()
        let id = try sandbox.engine.start(schema: reviewFirst, featureID: "f")
        for owner in ["\u{1B}]0;pwned\u{07}", "evil\u{202E}txt", "a\u{9B}31m"] {
            let refused = try chatflow(sandbox, ["claim", "--phase", "review", "--as", owner])
            #expect(refused.status == 2, "\(refused.stderr)")
            #expect(!refused.stderr.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x202E || $0.value == 0x9B })
        }
        // Another writer's file with such an owner.
        let claimed = try chatflow(sandbox, ["claim", "--phase", "review", "--as", "honest"])
        #expect(claimed.status == 0)
        let path = sandbox.engine.layout.stateFile(id)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let forged = text.replacingOccurrences(of: "\"owner\": \"honest\"", with: "\"owner\": \"\\u001b]0;pwned\\u0007\\u202e\"")
        #expect(forged != text)
        try forged.write(toFile: path, atomically: true, encoding: .utf8)
        for arguments in [["list"], ["status", id], ["trigger", id]] {
            let result = try chatflow(sandbox, arguments)
            let output = result.stdout + result.stderr
            #expect(!output.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x202E }, "\(arguments): raw sequence printed")
            #expect(output.contains("\\u{1B}"), "\(arguments): shown escaped: \(output)")
        }
        let document = try chatflow(sandbox, ["status", id, "--json"]).stdout
        #expect(!document.contains("\"token\""), "the token is not shown: \(document)")
    }
}
