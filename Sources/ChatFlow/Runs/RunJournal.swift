/// The run journal: a start record when a hook starts, and one `RunRecord` when it ends,
/// appended by chatflow-watch.
package struct RunJournal: Sendable {
    package let path: String

    package init(layout: Layout) { path = layout.runJournalFile }

    /// The journal's tail `chatflow status` reads for running hooks (tens of thousands of runs):
    /// every hook calls `status`, so it must not read a journal that has grown for months.
    package static let recentBytes = 4 << 20

    /// Every recorded run, oldest first.
    package func records() throws(ChatFlowError) -> [RunRecord] {
        try AppendLog.read(path).values.compactMap { try? RunRecord(json: $0) }
    }

    /// The ended runs, and the hooks started but not ended whose process is still alive. With
    /// `lastBytes`, from the journal's tail only (what a quick look needs: `status`, a follower).
    /// A run started and never ended whose process is gone (its watcher was killed, and no
    /// watcher has started since) is listed as ended, its status lost, so no run vanishes.
    package func records(running: Bool, lastBytes: Int? = nil) throws(ChatFlowError) -> (ended: [RunRecord], running: [RunningHook]) {
        let (ended, unended) = try scan(lastBytes: lastBytes)
        var alive: [RunningHook] = []
        var lost: [RunRecord] = []
        for start in unended {
            if start.isAlive {
                if running { alive.append(start) }
            } else {
                var record = RunRecord(
                    instanceID: start.instanceID, transition: start.transition, phase: start.phase, event: start.event,
                    hook: start.hook, startedAt: start.startedAt, endedAt: start.startedAt,
                    outcome: .statusLost(reason: "its watcher ended before it did, and its end was not recorded; it runs again when a watcher starts"),
                    logPath: start.logPath, droppedOutputBytes: 0)
                record.attempt = start.attempt
                lost.append(record)
            }
        }
        guard !lost.isEmpty else { return (ended, alive) }
        return ((ended + lost).sorted { $0.startedAt < $1.startedAt }, alive)
    }

    /// The ended runs in journal order, and the runs started and never ended (oldest first).
    package func scan(lastBytes: Int? = nil) throws(ChatFlowError) -> (ended: [RunRecord], unended: [RunningHook]) {
        var ended: [RunRecord] = []
        var started: [String: RunningHook] = [:]
        func key(_ id: String, _ transition: Int, _ hook: String, _ startedAt: Double) -> String {
            "\(id) \(transition) \(hook) \(startedAt)"
        }
        for value in try AppendLog.read(path, lastBytes: lastBytes).values {
            if let start = RunningHook(json: value) {
                started[key(start.instanceID, start.transition, start.hook, start.startedAt)] = start
            } else if let record = try? RunRecord(json: value) {
                ended.append(record)
                started[key(record.instanceID, record.transition, record.hook, record.startedAt)] = nil
            }
        }
        return (ended, started.values.sorted { $0.startedAt < $1.startedAt })
    }
}
