/// The run journal: a start record when a hook starts, and one `RunRecord` when it ends,
/// appended by chatflow-watch.
package struct RunJournal: Sendable {
    package let path: String

    package init(layout: Layout) { path = layout.runJournalFile }

    /// Every recorded run, oldest first.
    package func records() throws(ChatFlowError) -> [RunRecord] {
        try AppendLog.read(path).values.compactMap { try? RunRecord(json: $0) }
    }

    /// The ended runs, and the hooks started but not ended whose process is still alive.
    package func records(running: Bool) throws(ChatFlowError) -> (ended: [RunRecord], running: [RunningHook]) {
        var ended: [RunRecord] = []
        var started: [String: RunningHook] = [:]
        func key(_ id: String, _ transition: Int, _ hook: String, _ startedAt: Double) -> String {
            "\(id) \(transition) \(hook) \(startedAt)"
        }
        for value in try AppendLog.read(path).values {
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
