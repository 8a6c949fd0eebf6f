import ChatFlow
import ChatFlowHarness
import ChatFlowWatch
import Dispatch
import Foundation
import Glibc

/// 4. staleness: how long a cached read may lag another process's write.
extension Bench {
    func staleness() throws {
        let root = newRoot("staleness")
        let reader = WorkflowEngine(root: root)
        let id = try reader.start(schema: schema(2), featureID: "s")
        let ready = DispatchSemaphore(value: 0)
        Task {
            _ = try? await LiveInvalidation.enable(for: reader)
            ready.signal()
        }
        ready.wait()
        let count = quick ? 100 : 500
        let report = root + "/../writer.out"
        let writer = try process(
            "chatflow-bench", ["writer", "--root", root, "--ids", id, "--count", "\(count)", "--interval-ms", "20", "--cycle", "--report"],
            stdout: report)
        var seen: [Int: Double] = [:]
        var last = 1
        while writer.isRunning || last < count + 1 {
            if let state = try reader.status(id), state.historyLength != last {
                last = state.historyLength
                seen[last] = Timestamps.unix()
            }
            if !writer.isRunning && Timestamps.monotonic() > 0 && seen.count >= count { break }
        }
        let written = writerTimes(report)[id] ?? [:]
        var samples = Samples()
        for (seq, time) in written { if let seenAt = seen[seq + 2] { samples.add(seconds: seenAt - time.returned) } }
        record(samples.figure("staleness.live_invalidation", note: "writer's trigger returned → reader's cached status shows it"))
    }
}
