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
    package func records(running: Bool, lastBytes: Int? = nil) throws(ChatFlowError) -> (ended: [RunRecord], running: [RunningHook]) {
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
        let alive = running ? started.values.filter(\.isAlive).sorted { $0.startedAt < $1.startedAt } : []
        return (ended, alive)
    }
}
