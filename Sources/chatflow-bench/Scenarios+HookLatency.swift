import ChatFlow
import ChatFlowHarness
import ChatFlowWatch
import Dispatch
import Foundation

import Glibc

extension Bench {
    // MARK: 1 and 10. hook latency (and the bash inotifywait loop)

    /// One side of the hook latency comparison: a state directory whose transitions a listener
    /// turns into runs of the same bash hook, which stamps its own start into `marks`.
    private struct LatencySide {
        let root: String
        let id: String
        let marks: String
        /// From the writer's trigger returning (the definition) and from its call (which a
        /// listener cannot flatter by delaying the writer's return).
        var fromReturn = LatencyMeasure()
        var fromCall = LatencyMeasure()
        /// The writer's trigger call while this listener runs.
        var trigger = Samples()
        var written = 0
    }

    private struct LatencyMeasure {
        var samples = Samples()
        /// Each round's median latency in ms, for the paired comparison.
        var roundMedians: [Double] = []

        mutating func add(round: [Double]) {
            round.forEach { samples.add(seconds: $0) }
            if !round.isEmpty { roundMedians.append(round.sorted()[round.count / 2] * 1000) }
        }
    }

    /// The ratio of two sides' percentiles, and the paired comparison of their rounds: rounds
    /// alternate, so each pair of neighbouring rounds saw the same machine, and the per-round
    /// difference is steadier than the pooled distributions when the VM drifts.
    private func compareSides(_ prefix: String, _ ours: LatencyMeasure, _ theirs: LatencyMeasure) {
        let a = ours.samples.figure(""), b = theirs.samples.figure("")
        if let p50 = a.p50, let loop50 = b.p50, let p99 = a.p99, let loop99 = b.p99, loop50 > 0, loop99 > 0 {
            record(Figure(name: prefix + "ratio_chatflow_to_loop", unit: "x", p50: p50 / loop50, p99: p99 / loop99, note: "< 1: ChatFlow is faster"))
        }
        let differences = zip(ours.roundMedians, theirs.roundMedians).map { $0 - $1 }.sorted()
        guard !differences.isEmpty else { return }
        record(Figure(
            name: prefix + "paired_rounds", unit: "ms", p50: differences[differences.count / 2], max: differences.last,
            n: differences.count, value: Double(differences.filter { $0 < 0 }.count),
            note: "chatflow − loop, median of each round; value: rounds where chatflow was faster"))
    }

    func hookLatency(compare: Bool) throws {
        let hook = { (marks: String) in "#!/bin/bash\necho \"${CHATFLOW_TRANSITION:-x} $EPOCHREALTIME\" >> \(marks)\n" }
        var sides: [LatencySide] = []
        var listeners: [Process] = []
        var loopDirectory: String?
        defer {
            // SIGTERM does not end `bash -c '… | while …'`; ending inotifywait ends the pipeline.
            if let loopDirectory { _ = system("pkill -f '\(loopDirectory)' >/dev/null 2>&1") }
            listeners.forEach(stop)
        }

        // ChatFlow: chatflow-watch runs the hook as `@any`.
        let root = newRoot("hook-latency")
        let marks = root + "/../marks"
        writeHook(root, "@any", hook(marks))
        listeners.append(try startTimedWatcher(root).0)
        let id = try WorkflowEngine(root: root).start(schema: schema(2), featureID: "h")
        try waitFor("the first hook", timeout: 30) { lines(marks).count >= 1 }
        sides.append(LatencySide(root: root, id: id, marks: marks))

        // The shell loop users compare with, on its own state directory, same hook.
        let inotifywait = ["/usr/bin/inotifywait", "/bin/inotifywait"].first(where: FileManager.default.isExecutableFile(atPath:))
        if compare, let inotifywait {
            let loopRoot = newRoot("inotifywait")
            let loopEngine = WorkflowEngine(root: loopRoot)
            try loopEngine.prepare()
            loopDirectory = loopRoot + "/instances"
            let loopMarks = loopRoot + "/../marks"
            writeHook(loopRoot, "hook", hook(loopMarks))
            let loopLog = loopRoot + "/../loop.err"
            // Like any reader of the format, the loop ignores the dot-names (a view's spare is moved too).
            let script = "exec \(inotifywait) -m -e moved_to --format '%f' '\(loopRoot)/instances' | while read -r f; do case \"$f\" in .*) ;; *) '\(loopRoot)/hooks/hook' ;; esac; done"
            listeners.append(try process("/bin/bash", ["-c", script], stderr: loopLog))
            try waitFor("inotifywait", timeout: 30) { (try? String(contentsOfFile: loopLog, encoding: .utf8))?.contains("Watches established") ?? false }
            let loopID = try loopEngine.start(schema: schema(2), featureID: "h")
            try waitFor("the first loop hook", timeout: 30) { lines(loopMarks).count >= 1 }
            sides.append(LatencySide(root: loopRoot, id: loopID, marks: loopMarks))
        }

        // Alternate rounds between the sides, so drift in the machine's speed hits both alike.
        let rounds = quick ? 2 : 20
        let perRound = 50
        for round in 0..<rounds {
            for index in sides.indices {
                let side = sides[index]
                let report = side.root + "/../writer-\(round).out"
                let writer = try process(
                    "chatflow-bench",
                    ["writer", "--root", side.root, "--ids", side.id, "--count", "\(perRound)", "--interval-ms", "20", "--cycle", "--report"],
                    stdout: report)
                writer.waitUntilExit()
                let expected = 1 + (round + 1) * perRound
                try waitFor("every hook", timeout: 60) { lines(side.marks).count >= expected }
                // Hook lines are in position order for both listeners (one instance, serial).
                let stamps = lines(side.marks).compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
                var fromReturn: [Double] = [], fromCall: [Double] = []
                for (seq, time) in writerTimes(report)[side.id] ?? [:] {
                    let position = side.written + seq + 1
                    guard position < stamps.count else { continue }
                    fromReturn.append(stamps[position] - time.returned)
                    fromCall.append(stamps[position] - time.called)
                    sides[index].trigger.add(seconds: time.returned - time.called)
                }
                sides[index].fromReturn.add(round: fromReturn)
                sides[index].fromCall.add(round: fromCall)
                sides[index].written += perRound
            }
        }
        record(sides[0].fromReturn.samples.figure("hook_latency.chatflow_watch", note: "trigger returned → bash hook started; 20 ms apart"))
        guard sides.count > 1 else {
            if compare { record(Figure(name: "hook_latency.bash_inotifywait_loop", unit: "ms", note: "skipped: inotify-tools not installed")) }
            return
        }
        record(sides[1].fromReturn.samples.figure("hook_latency.bash_inotifywait_loop", note: "same hook, same writer, rounds alternated"))
        compareSides("hook_latency.", sides[0].fromReturn, sides[1].fromReturn)
        // A listener that preempts the writer delays its trigger's return and so shortens the
        // figures above without starting the hook any sooner; measured from the call, it cannot.
        record(sides[0].fromCall.samples.figure("hook_latency.from_call.chatflow_watch", note: "trigger called → bash hook started"))
        record(sides[1].fromCall.samples.figure("hook_latency.from_call.bash_inotifywait_loop", note: "trigger called → bash hook started"))
        compareSides("hook_latency.from_call.", sides[0].fromCall, sides[1].fromCall)
        record(sides[0].trigger.figure("hook_latency.writer_trigger.chatflow_watch", note: "the writer's trigger call while the watcher runs"))
        record(sides[1].trigger.figure("hook_latency.writer_trigger.bash_inotifywait_loop", note: "the writer's trigger call while the loop runs"))
    }
}
