import ChatFlow
import ChatFlowHarness
import ChatFlowWatch
import Dispatch
import Foundation

import Glibc

extension Bench {
    // MARK: 5. trigger

    func trigger() throws {
        let engine = WorkflowEngine(root: newRoot("trigger"))
        // One process, one instance, history growing to 200.
        var samples = Samples()
        let id = try engine.start(schema: schema(200), featureID: "t")
        var start = Timestamps.monotonic()
        for _ in 0..<199 {
            let t = Timestamps.monotonic()
            try engine.trigger(id)
            samples.add(seconds: Timestamps.monotonic() - t)
        }
        var figure = samples.figure("trigger.one_instance_history_to_200", note: "durable: 1 O_DSYNC write of the commit record + exchange")
        figure.value = 199 / (Timestamps.monotonic() - start)
        figure.unit = "ms|/s"
        record(figure)
        let oneRate = figure.value ?? 0

        // The peer, same run, same disk: SQLite WAL synchronous=FULL, the same state.
        let sqlite = try SQLitePeer(path: engine.root + "/../peer.sqlite")
        // Each peer row starts as the same state text as the instance it is compared with.
        let stateText = read(engine.layout.stateFile(try engine.start(schema: schema(200), featureID: "t")))
        try sqlite.insert(id: "one", state: stateText)
        var peerSamples = Samples()
        start = Timestamps.monotonic()
        for step in 0..<199 {
            let t = Timestamps.monotonic()
            try sqlite.trigger("one", data: ["step": .number(JSONNumber(step))])
            peerSamples.add(seconds: Timestamps.monotonic() - t)
        }
        var peer = peerSamples.figure("trigger.one_instance.sqlite_peer", note: "SQLite WAL synchronous=FULL, one transaction per trigger")
        peer.value = 199 / (Timestamps.monotonic() - start)
        peer.unit = "ms|/s"
        record(peer)
        record(Figure(name: "trigger.one_instance.ratio_to_sqlite", unit: "x", value: oneRate / (peer.value ?? 1), note: "goal ≥ 1.0"))

        // One process over many instances, each triggered once, against as many rows.
        let count = quick ? 200 : 1000
        let ids = try (0..<count).map { try engine.start(schema: schema(4), featureID: "f\($0 % 10)") }
        let smallText = read(engine.layout.stateFile(try engine.start(schema: schema(4), featureID: "f0")))
        for index in 0..<count { try sqlite.insert(id: "many-\(index)", state: smallText) }
        // In ten interleaved blocks, each side first in turn, so that a change in the host's speed
        // (this VM's disk and CPU vary by 2× within minutes) falls on both sides alike; each block
        // from a quiet disk, so the starts' and the other side's writeback land in neither.
        let block = count / 10
        var spent = (mine: 0.0, peer: 0.0)
        for round in 0..<10 {
            let range = (round * block)..<((round + 1) * block)
            for side in round.isMultiple(of: 2) ? [0, 1] : [1, 0] {
                sync()
                let start = Timestamps.monotonic()
                if side == 0 {
                    for index in range { try engine.trigger(ids[index]) }
                    spent.mine += Timestamps.monotonic() - start
                } else {
                    for index in range { try sqlite.trigger("many-\(index)", data: ["n": 1]) }
                    spent.peer += Timestamps.monotonic() - start
                }
            }
        }
        let manyRate = Double(10 * block) / spent.mine
        let manyPeer = Double(10 * block) / spent.peer
        record(Figure(name: "trigger.one_process_\(count)_instances", unit: "/s", n: count, value: manyRate, note: "10 blocks interleaved with the peer's"))
        record(Figure(name: "trigger.one_process_\(count)_instances.sqlite_peer", unit: "/s", n: count, value: manyPeer))
        record(Figure(name: "trigger.one_process_\(count)_instances.ratio_to_sqlite", unit: "x", value: manyRate / manyPeer, note: "goal ≥ 1.0"))

        // 8 processes on one instance: rate and lost updates.
        let perWriter = quick ? 25 : 100
        // The same 200-phase state as the peer's row; writers go round it with --to.
        let shared = try engine.start(schema: schema(200), featureID: "contended")
        start = Timestamps.monotonic()
        let writers = try (0..<8).map { _ in
            try process("chatflow-bench", ["writer", "--root", engine.root, "--ids", shared, "--count", "\(perWriter)", "--round-phases", "200"])
        }
        writers.forEach { $0.waitUntilExit() }
        let elapsed = Timestamps.monotonic() - start
        let made = try engine.freshStatus(shared)!.historyLength - 1
        let contendedRate = Double(made) / elapsed
        record(Figure(
            name: "trigger.8_processes_one_instance", unit: "/s", n: 8 * perWriter, value: contendedRate,
            note: "lost updates: \(8 * perWriter - made)"))
        try sqlite.insert(id: "contended", state: stateText)
        start = Timestamps.monotonic()
        let peers = try (0..<8).map { _ in
            try process("chatflow-bench", ["sqlite-writer", "--database", engine.root + "/../peer.sqlite", "--id", "contended", "--count", "\(perWriter)"])
        }
        peers.forEach { $0.waitUntilExit() }
        let peerRate = Double(8 * perWriter) / (Timestamps.monotonic() - start)
        record(Figure(name: "trigger.8_processes_one_instance.sqlite_peer", unit: "/s", n: 8 * perWriter, value: peerRate))
        record(Figure(name: "trigger.8_processes_one_instance.ratio_to_sqlite", unit: "x", value: contendedRate / peerRate, note: "goal ≥ 1.0"))

        // Cost of one trigger by history length.
        for length in [10, 100, 1000] {
            let id = try engine.start(schema: schema(2), featureID: "h")
            for step in 0..<(length - 1) { try engine.trigger(id, to: step % 2 == 0 ? "p1" : "p0") }
            var samples = Samples()
            for step in 0..<(quick ? 50 : 200) {
                let t = Timestamps.monotonic()
                try engine.trigger(id, to: step % 2 == 0 ? "p0" : "p1")
                samples.add(seconds: Timestamps.monotonic() - t)
            }
            record(samples.figure("trigger.at_history_\(length)"))
        }
    }

    // MARK: 6. status

    func status() throws {
        let engine = WorkflowEngine(root: newRoot("status"))
        let id = try engine.start(schema: schema(20), featureID: "s", context: ["ticket": "T-1", "owner": "bench"])
        for _ in 0..<9 { try engine.trigger(id, data: ["step": "done", "notes": "a trigger snapshot of modest size"]) }
        let cached = quick ? 500_000 : 5_000_000
        var start = Timestamps.monotonic()
        for _ in 0..<cached { _ = try engine.status(id) }
        record(Figure(name: "status.cached", unit: "/s", n: cached, value: Double(cached) / (Timestamps.monotonic() - start), note: "history 10"))
        let uncached = quick ? 20_000 : 100_000
        start = Timestamps.monotonic()
        for _ in 0..<uncached { _ = try engine.freshStatus(id) }
        record(Figure(name: "status.uncached", unit: "/s", n: uncached, value: Double(uncached) / (Timestamps.monotonic() - start), note: "open+read+parse"))
    }

    // MARK: 7. start

    func start() throws {
        let engine = WorkflowEngine(root: newRoot("start"))
        let count = quick ? 300 : 2000
        let start = Timestamps.monotonic()
        for index in 0..<count { _ = try engine.start(schema: schema(4), featureID: "f\(index % 20)") }
        record(Figure(name: "start", unit: "/s", n: count, value: Double(count) / (Timestamps.monotonic() - start), note: "20 features"))
    }

    // MARK: 8. cli

    func cli() throws {
        let engine = WorkflowEngine(root: newRoot("cli"))
        let id = try engine.start(schema: schema(4), featureID: "c")
        let runs = quick ? 40 : 300
        record(try timeCommand(["--root", engine.root, "status", id], runs: runs).figure("cli.status_wall_time", note: "process start to exit"))
        // An agent's `status --json` on a long-lived instance: the whole history is in it.
        let long = try engine.start(schema: WorkflowSchema(name: "loop", phaseNames: ["a", "b"]), featureID: "c")
        for step in 0..<999 { try engine.trigger(long, data: ["step": .number(JSONNumber(step))], to: step % 2 == 0 ? "b" : "a") }
        record(try timeCommand(["--root", engine.root, "status", long, "--json"], runs: runs / 2).figure(
            "cli.status_json_history_1000", note: "whole history in the output; target < 10 ms"))
    }

    /// Wall time of `chatflow ARGUMENTS`, spawned directly with stdout to /dev/null.
    func timeCommand(_ arguments: [String], runs: Int) throws -> Samples {
        var samples = Samples()
        for _ in 0..<runs {
            let t = Timestamps.monotonic()
            var pid: pid_t = 0
            let words: [String] = [binaries + "/chatflow"] + arguments
            let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            guard posix_spawn(&pid, argv[0]!, &actions, nil, argv, environ) == 0 else { throw HarnessError.failed("spawn chatflow") }
            posix_spawn_file_actions_destroy(&actions)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            guard status == 0 else { throw HarnessError.failed("chatflow \(arguments.joined(separator: " ")) exited \(status)") }
            samples.add(seconds: Timestamps.monotonic() - t)
        }
        return samples
    }

    // MARK: 2. burst

    func burst() throws {
        let root = newRoot("burst")
        let marks = root + "/../marks"
        writeHook(root, "@any", "#!/bin/bash\necho \"$CHATFLOW_INSTANCE_ID $CHATFLOW_TRANSITION $EPOCHREALTIME\" >> \(marks)\n")
        let (watcher, _) = try startTimedWatcher(root)
        let engine = WorkflowEngine(root: root)
        let ids = try (0..<100).map { _ in try engine.start(schema: WorkflowSchema(name: "abc", phaseNames: ["A", "B", "C"]), featureID: "b") }
        let start = Timestamps.monotonic()
        let writers = try (0..<4).map { group in
            let mine = ids[(group * 25)..<((group + 1) * 25)].joined(separator: ",")
            return try process("chatflow-bench", ["writer", "--root", root, "--ids", mine, "--count", "50"])
        }
        writers.forEach { $0.waitUntilExit() }
        try waitFor("300 hooks", timeout: 120) { lines(marks).count >= 300 }
        let seconds = Timestamps.monotonic() - start
        usleep(200_000)
        stop(watcher)
        var perInstance: [String: [Int]] = [:]
        for line in lines(marks) {
            let parts = line.split(separator: " ")
            if parts.count == 3, let position = Int(parts[1]) { perInstance[String(parts[0]), default: []].append(position) }
        }
        let inOrder = ids.filter { perInstance[$0] == [0, 1, 2] }.count
        record(Figure(
            name: "burst.transitions_run", unit: "count", n: 300, value: Double(lines(marks).count),
            note: "\(inOrder)/100 instances ran 0,1,2 exactly once in order; last hook after \(String(format: "%.2f", seconds)) s"))
    }

    // MARK: 3. sustained

    func sustained() throws {
        let root = newRoot("sustained")
        let trueHook = (try? Data(contentsOf: URL(fileURLWithPath: "/bin/true"))) ?? Data()
        _ = FileManager.default.createFile(atPath: root + "/hooks/@any", contents: trueHook)
        chmod(root + "/hooks/@any", 0o755)
        let writerCount = quick ? 2 : 8
        let instances = quick ? 50 : 200
        let perInstance = 20
        let (watcher, _) = try startTimedWatcher(root)
        let engine = WorkflowEngine(root: root)
        let ids = try (0..<instances).map { _ in try engine.start(schema: schema(perInstance + 1), featureID: "s") }
        let journal = RunJournal(layout: engine.layout)
        try waitFor("initial hooks", timeout: 120) { try journal.records().count >= instances }
        let total = instances * perInstance
        let start = Timestamps.monotonic()
        let share = instances / writerCount
        let writers = try (0..<writerCount).map { group in
            let mine = ids[(group * share)..<((group + 1) * share)].joined(separator: ",")
            return try process("chatflow-bench", ["writer", "--root", root, "--ids", mine, "--count", "\(share * perInstance)"])
        }
        writers.forEach { $0.waitUntilExit() }
        let written = Timestamps.monotonic() - start
        try waitFor("every hook", timeout: 300) { try journal.records().count >= instances + total }
        let dispatched = Timestamps.monotonic() - start
        usleep(200_000)
        stop(watcher)
        let records = try journal.records()
        let keys = Set(records.map { "\($0.instanceID)#\($0.transition)" })
        record(Figure(
            name: "sustained.\(writerCount)_writers", unit: "/s", n: total, value: Double(total) / dispatched,
            note: "\(records.count - instances) runs for \(total) transitions, \(records.count - keys.count) duplicates; writers took \(String(format: "%.2f", written)) s"))
    }

}
