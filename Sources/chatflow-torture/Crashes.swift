import ChatFlow
import ChatFlowHarness
import Foundation

import Glibc

extension Torture {
    // MARK: 1. Writers crash

    /// Writer processes (start, trigger, fail at random) killed with SIGKILL at random moments:
    /// after every kill all files parse and agree, and no instance is missing from its link.
    func writerCrashes() throws {
        let root = newRoot("writer-crashes")
        let engine = WorkflowEngine(root: root)
        try engine.prepare()
        let kills = quick ? 150 : 500
        var wrong: [String] = []
        var recovered = 0
        var generator = SystemRandomNumberGenerator()
        for round in 0..<kills {
            let worker = try process("chatflow-torture", ["worker", "--root", root, "--mode", "crash"])
            usleep(UInt32.random(in: 3_000...30_000, using: &generator))
            kill(worker.processIdentifier, SIGKILL)
            worker.waitUntilExit()
            // Every instance reads as a committed state: it parses and its history agrees. A
            // writer killed between its commit line and its state file left the file behind:
            // the read recovers the commit, and rewrites the file so the next read needs no lock.
            for id in try engine.instanceIDs() {
                do {
                    let lagging = try Torture.lags(engine, id)
                    guard let state = try engine.freshStatus(id) else { continue }
                    let history = try engine.history(of: state, from: 0)
                    if history.count != state.historyLength { wrong.append("round \(round): \(id) history \(history.count) ≠ \(state.historyLength)") }
                    if lagging {
                        recovered += 1
                        if try Torture.lags(engine, id) { wrong.append("round \(round): \(id) still behind its history after a read") }
                    }
                } catch {
                    wrong.append("round \(round): \(error)")
                }
            }
        }
        // No instance is missing from its feature's link.
        var missing = 0
        for state in try engine.list() {
            if try !StateLinks.ids(engine, feature: state.featureID).contains(state.instanceID) { missing += 1 }
        }
        if missing > 0 { wrong.append("\(missing) instances missing from their feature link") }
        let temps = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/instances")) ?? []).filter { $0.hasSuffix(".tmp") }
        let instances = try engine.instanceIDs().count
        tally(
            "writer_crashes", tried: kills, wrong: wrong.count,
            note: wrong.first ?? "\(instances) instances checked after each kill; \(recovered) state files behind their history (a killed commit, or a torn tail) set right by a read; \(temps.count) stray temp files, none read as state")
    }

    /// Whether an instance's state file is behind its history (a commit line past its
    /// `history_bytes`, or a torn tail): what a writer killed after its commit leaves.
    static func lags(_ engine: WorkflowEngine, _ id: String) throws -> Bool {
        let layout = engine.layout
        guard let data = FileManager.default.contents(atPath: layout.stateFile(id)),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let committed = object["history_bytes"] as? Int
        else { return false }
        let size = (try? FileManager.default.attributesOfItem(atPath: layout.historyFile(id))[.size] as? Int) ?? 0
        return size > committed
    }

    // MARK: 4. Contention

    /// 16 processes mixing start, trigger (own and shared instances), fail, status and feature
    /// reads: every successful trigger is in the history (no lost update), no undocumented error.
    func contention() throws {
        let root = newRoot("contention")
        let engine = WorkflowEngine(root: root)
        let shared = try (0..<4).map { _ in try engine.start(schema: schema(20), featureID: "mix") }
        let seconds = quick ? 5.0 : 30.0
        let outputs = (0..<16).map { root + "/../mix-\($0).out" }
        let workers = try outputs.map { output in
            try process(
                "chatflow-torture",
                ["worker", "--root", root, "--mode", "mix", "--ids", shared.joined(separator: ","), "--seconds", "\(seconds)"],
                stdout: output)
        }
        workers.forEach { $0.waitUntilExit() }
        var triggers: [String: Int] = [:]
        var unexpected: [String] = []
        for output in outputs {
            guard let report = try? JSONValue(parsing: read(output)) else {
                unexpected.append("a worker printed no report")
                continue
            }
            for (id, count) in report["triggers"]?.objectValue ?? [:] { triggers[id, default: 0] += count.intValue ?? 0 }
            unexpected += (report["unexpected"]?.arrayValue ?? []).compactMap(\.stringValue)
        }
        var lost = 0
        for (id, count) in triggers {
            let length = try engine.freshStatus(id)?.historyLength ?? 0
            lost += max(0, count - (length - 1))
            if length - 1 != count { unexpected.append("\(id): \(count) triggers but history \(length)") }
        }
        let total = triggers.values.reduce(0, +)
        tally(
            "contention", tried: total, wrong: lost + unexpected.count,
            note: unexpected.first ?? "16 processes, \(Int(seconds)) s, \(total) triggers, 0 lost")
    }

    // MARK: 2. Watcher crashes

    /// The watcher killed with SIGKILL at random moments while 4 writers advance 100 instances;
    /// after each restart it catches up. Per transition: hook starts counted; none may be
    /// missing, duplicates only for transitions in flight at a kill.
    func watcherCrashes() throws {
        let root = newRoot("watcher-crashes")
        let record = root + "/../record.log"
        let second = root + "/../second.log"
        // Two hooks per transition: a kill during the second must not run the first again.
        writeHook(root, "@any", "#!/bin/sh\necho \"$CHATFLOW_INSTANCE_ID $CHATFLOW_TRANSITION\" >> \(record)\n")
        writeHook(root, "@any.d/20-second", "#!/bin/sh\necho \"$CHATFLOW_INSTANCE_ID $CHATFLOW_TRANSITION\" >> \(second)\n")
        let engine = WorkflowEngine(root: root)
        let ids = try (0..<100).map { _ in try engine.start(schema: schema(100), featureID: "w") }
        let perWriter = quick ? 100 : 250
        let writers = try (0..<4).map { group in
            try process(
                "chatflow-torture",
                ["worker", "--root", root, "--mode", "advance", "--ids", ids[(group * 25)..<((group + 1) * 25)].joined(separator: ","),
                 "--count", "\(perWriter)", "--interval-ms", quick ? "20" : "25"])
        }
        let kills = quick ? 12 : 50
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<kills {
            let watcher = try startWatcher(root, ["--jobs", "2"])
            usleep(UInt32.random(in: 20_000...150_000, using: &generator))
            kill(watcher.processIdentifier, SIGKILL)
            watcher.waitUntilExit()
        }
        writers.forEach { $0.waitUntilExit() }
        let last = try startWatcher(root, ["--jobs", "2"])
        let expected = ids.count * (1 + perWriter / 25)
        do {
            try waitFor("every transition's hooks", timeout: 120) { recorded(record).count >= expected && recorded(second).count >= expected }
        } catch {
            // Say which ones are missing, per hook.
            var missing: [String] = []
            for (name, file) in [("@any", record), ("20-second", second)] {
                let counts = recorded(file)
                for id in ids {
                    for position in 0...(perWriter / 25) where counts["\(id) \(position)"] == nil { missing.append("\(name) \(id) #\(position)") }
                }
            }
            throw HarnessError.failed("timed out waiting for every transition's hooks; missing \(missing.count): \(missing.prefix(4).joined(separator: ", "))")
        }
        usleep(300_000)
        stop(last)
        var missing = 0
        var duplicates: [Int] = []
        for file in [record, second] {
            let counts = recorded(file)
            for id in ids {
                for position in 0...(perWriter / 25) where counts["\(id) \(position)"] == nil { missing += 1 }
            }
            duplicates.append(counts.values.reduce(0) { $0 + $1 - 1 })
        }
        // Per hook, each kill may repeat only what was in flight: at most --jobs hooks running,
        // plus one finished but not yet recorded per running worker (the ledger records each
        // finished hook, so a kill during the second hook does not repeat the first).
        let window = kills * 2 * 2
        let over = duplicates.reduce(0) { $0 + max(0, $1 - window) }
        tally(
            "watcher_crashes", tried: 2 * expected, wrong: missing + over,
            note: "\(kills) SIGKILLs; \(missing) missing; duplicate starts per hook \(duplicates[0]) and \(duplicates[1]) (window ≤ \(window) each)")
    }

    // MARK: 3. Overflow

    /// A burst large enough to overflow the inotify queue: every transition still runs its hook once.
    func overflow() throws {
        let root = newRoot("overflow")
        let record = root + "/../record.log"
        writeHook(root, "@any", "#!/bin/sh\necho \"$CHATFLOW_INSTANCE_ID $CHATFLOW_TRANSITION\" >> \(record)\n")
        let limitPath = "/proc/sys/fs/inotify/max_queued_events"
        let original = read(limitPath)
        let lowered = (try? "32".write(toFile: limitPath, atomically: false, encoding: .utf8)) != nil
        let log = root + "/../watch.log"
        let watcher: Process
        do {
            defer { if lowered { try? original.write(toFile: limitPath, atomically: false, encoding: .utf8) } }
            watcher = try startWatcher(root, log: log)
        }
        defer { stop(watcher) }
        let engine = WorkflowEngine(root: root)
        // Stop the consumer so the burst piles up in the kernel queue.
        kill(watcher.processIdentifier, SIGSTOP)
        let instances = quick ? 100 : 400
        var ids: [String] = []
        for _ in 0..<instances {
            let id = try engine.start(schema: schema(4), featureID: "o")
            try engine.trigger(id)
            ids.append(id)
        }
        kill(watcher.processIdentifier, SIGCONT)
        try waitFor("every hook", timeout: 120) { recorded(record).count >= instances * 2 }
        usleep(300_000)
        let counts = recorded(record)
        var wrong = 0
        for id in ids { for position in 0...1 where counts["\(id) \(position)"] != 1 { wrong += 1 } }
        let overflowed = read(log).contains("inotify queue overflowed")
        tally(
            "overflow", tried: instances * 2, wrong: wrong + (overflowed ? 0 : 1),
            note: overflowed
                ? "queue \(lowered ? "lowered to 32" : "at its limit") overflowed; rescan ran every hook once"
                : "the queue did not overflow (max_queued_events not writable?)")
    }
}

/// Link reads for checks, through the engine's own feature status path.
enum StateLinks {
    static func ids(_ engine: WorkflowEngine, feature: String) throws -> Set<String> {
        Set(try engine.list(feature: feature).map(\.instanceID))
    }
}
