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
        for round in 0..<(quick ? 20 : 200) {
            let target = phases[(round + 1) % 2]
            let waiter = Process()
            waiter.executableURL = URL(fileURLWithPath: binaries + "/chatflow")
            waiter.arguments = ["--root", root, "wait", id, "--phase", target, "--timeout", "10"]
            let pipe = Pipe()
            waiter.standardOutput = pipe
            try waiter.run()
            // Triggered once the waiter sleeps in poll (armed, checked, blocked): its start-up is
            // not part of the figure.
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
            fromReturn.add(seconds: woke - returned)
            fromCall.add(seconds: woke - called)
        }
        record(fromReturn.figure("wait.wake_latency", note: "writer's trigger returned (committed) → waiter's line; target p99 ≤ 5 ms"))
        record(fromCall.figure("wait.wake_latency.from_call", note: "writer's trigger called → waiter's line"))
    }
}
