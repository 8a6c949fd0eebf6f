import ChatFlow
import ChatFlowHarness
import Foundation

import Glibc

extension Bench {
    // MARK: 11. live log

    /// A hook writes a line with its time every 20 ms; `chatflow logs ID --follow` (a separate
    /// process, woken by inotify) prints them; the figure is from the hook's write to the line
    /// arriving on the follower's stdout.
    func liveLog() throws {
        let root = newRoot("live-log")
        let lines = quick ? 50 : 250
        writeHook(root, "p0", "#!/bin/bash\nfor i in $(seq \(lines)); do echo \"stamp $EPOCHREALTIME\"; sleep 0.02; done\n")
        let watcher = try startWatcher(root, logLevel: "warning", log: root + "/../watch.log")
        defer { stop(watcher) }
        let engine = WorkflowEngine(root: root)
        let id = try engine.start(schema: schema(2), featureID: "l")
        let journal = RunJournal(layout: engine.layout)
        try waitFor("the hook to start", timeout: 30) { !(try journal.records(running: true).running.isEmpty) }
        let follower = Process()
        follower.executableURL = try executable("chatflow")
        follower.arguments = ["--root", root, "logs", id, "--follow"]
        let pipe = Pipe()
        follower.standardOutput = pipe
        try follower.run()
        let fd = pipe.fileHandleForReading.fileDescriptor
        var samples = Samples()
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var firstChunk = true
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            let arrived = Timestamps.unix()
            pending += buffer[0..<count]
            while let newline = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                // The first read holds what was written before the follower started: not live.
                if !firstChunk, line.hasPrefix("stamp "), let stamp = Double(line.dropFirst(6)) { samples.add(seconds: arrived - stamp) }
            }
            firstChunk = false
        }
        follower.waitUntilExit()
        record(samples.figure("logs.follow_latency", note: "hook's write → `chatflow logs --follow` stdout; target p99 ≤ 50 ms"))
    }
}
