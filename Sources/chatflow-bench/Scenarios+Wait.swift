import ChatFlow
import ChatFlowHarness
import Foundation

import Glibc

extension Bench {
    // MARK: 12. wait

    /// A `chatflow wait ID --phase P` process is armed; this process triggers the instance into
    /// P; the figure is from the trigger (its return: the commit acknowledged; and its call) to
    /// the waiter's line on its stdout.
    func wait() throws {
        let root = newRoot("wait")
        let engine = WorkflowEngine(root: root)
        let phases = ["a", "b"]
        let id = try engine.start(schema: WorkflowSchema(name: "w", phaseNames: phases), featureID: "w")
        var fromReturn = Samples()
        var fromCall = Samples()
        var peer = Samples()
        let inotifywait = ["/usr/bin/inotifywait", "/bin/inotifywait"].first(where: FileManager.default.isExecutableFile(atPath:))
        // Rounds alternate with the peer, a bare `inotifywait -e moved_to` (C, one syscall path),
        // so both see the same machine: what a wake costs here, whoever waits.
        for _ in 0..<(quick ? 20 : 200) {
            // The other phase each time: a waiter for the current one would return at once.
            func other() throws -> String { try engine.freshStatus(id)?.currentPhase == "a" ? "b" : "a" }
            let target = try other()
            let (returned, called, woke) = try timeWake(engine, id: id, to: target, [binaries + "/chatflow", "--root", root, "wait", id, "--phase", target, "--timeout", "10"])
            fromReturn.add(seconds: woke - returned)
            fromCall.add(seconds: woke - called)
            if let inotifywait {
                let back = try other()
                let (peerReturned, _, peerWoke) = try timeWake(engine, id: id, to: back, [inotifywait, "-q", "-e", "moved_to", engine.layout.instancesDirectory])
                peer.add(seconds: peerWoke - peerReturned)
            }
        }
        record(fromReturn.figure("wait.wake_latency", note: "writer's trigger returned (committed) → waiter's line; target p99 ≤ 5 ms"))
        record(fromCall.figure("wait.wake_latency.from_call", note: "writer's trigger called → waiter's line"))
        if inotifywait != nil {
            let ratio = fromReturn.percentile(99) / max(peer.percentile(99), 1e-9)
            record(peer.figure(
                "wait.wake_latency.inotifywait_peer",
                note: "same trigger → a bare inotifywait's line, rounds alternated; chatflow/peer p99 \(String(format: "%.2f", ratio))×"))
        }
    }

    /// Starts `command`, triggers once it sleeps in poll (armed, checked, blocked: its start-up
    /// is not in the figure), and returns when the trigger was called and returned and when the
    /// command's first line arrived.
    private func timeWake(_ engine: WorkflowEngine, id: String, to target: String, _ command: [String]) throws -> (Double, Double, Double) {
        let waiter = Process()
        waiter.executableURL = URL(fileURLWithPath: command[0])
        waiter.arguments = Array(command.dropFirst())
        let pipe = Pipe()
        waiter.standardOutput = pipe
        waiter.standardError = FileHandle.nullDevice
        try waiter.run()
        try waitFor("the waiter to block", timeout: 10) {
            read("/proc/\(waiter.processIdentifier)/wchan").contains("poll")
        }
        let called = Timestamps.unix()
        try engine.trigger(id, to: target)
        let returned = Timestamps.unix()
        var byte: UInt8 = 0
        let fd = pipe.fileHandleForReading.fileDescriptor
        while true {
            let count = Glibc.read(fd, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 || byte == 0x0A { break }
        }
        let woke = Timestamps.unix()
        waiter.waitUntilExit()
        return (returned, called, woke)
    }
}
