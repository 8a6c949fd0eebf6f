import ChatFlow
import ChatFlowHarness
import Foundation

import Glibc

extension Torture {
    /// 16 processes claim the same phase, round after round: each round one instance enters
    /// `review`, all 16 wake on it (inotify) and claim once. Exactly one may win, the winner's
    /// id must be that instance, and the stored claim must be the winner's (owner and token).
    func claims() throws {
        let root = newRoot("claims")
        let engine = WorkflowEngine(root: root)
        let rounds = 200
        let schema = WorkflowSchema(name: "claims", phaseNames: ["queued", "review", "done"])
        let ids = try (0..<rounds).map { _ in try engine.start(schema: schema, featureID: "claims") }
        let workers = try (0..<16).map { index in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binaries + "/chatflow-torture")
            process.arguments = ["worker", "--root", root, "--mode", "claim", "--name", "agent-\(index)", "--ids", ids.joined(separator: ",")]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            return (process, LineReader(pipe.fileHandleForReading.fileDescriptor))
        }
        var wrong: [String] = []
        for (round, id) in ids.enumerated() {
            try engine.trigger(id)  // queued → review: the round opens
            var winners: [(name: String, token: String)] = []
            for (index, worker) in workers.enumerated() {
                guard let line = worker.1.next() else {
                    wrong.append("round \(round): agent-\(index) ended")
                    continue
                }
                let words = line.split(separator: " ").map(String.init)
                guard words.first == "\(round)" else {
                    wrong.append("round \(round): agent-\(index) said \(line)")
                    continue
                }
                if words.count == 4 && words[1] == "WIN" {
                    if words[2] != id { wrong.append("round \(round): agent-\(index) won \(words[2]), not \(id)") }
                    winners.append(("agent-\(index)", words[3]))
                }
            }
            if winners.count != 1 { wrong.append("round \(round): \(winners.count) winners") }
            let claim = try engine.freshStatus(id)?.currentEntry?.claim
            if let winner = winners.first, claim?.owner != winner.name || claim?.token != winner.token {
                wrong.append("round \(round): stored claim \(String(describing: claim)) is not the winner's")
            }
        }
        for worker in workers { worker.0.waitUntilExit() }
        tally("claims", tried: rounds, wrong: wrong.count, note: wrong.first ?? "16 processes, \(rounds) rounds, one winner each")
    }
}

/// Lines from a pipe, read as they come (a blocking read, no polling).
final class LineReader {
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(_ fd: Int32) { self.fd = fd }

    func next() -> String? {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            buffer += chunk[..<count]
        }
    }
}
