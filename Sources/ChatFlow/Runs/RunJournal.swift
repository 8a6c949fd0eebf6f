import Glibc

/// The run journal: a start record when a hook starts, and one `RunRecord` when it ends,
/// appended by chatflow-watch.
///
/// Bounded: past `rotateBytes` the watcher moves the journal to `runs.1.ndjson` (replacing the
/// generation before) and starts a new one with the runs still going, so the journal and its
/// readers stay small however long the watcher runs. Each ended run is also appended to its
/// instance's `runs/runs.ndjson`, which keeps that instance's every run: `chatflow runs ID`
/// reads that file and the journal's lines that name the instance, never the whole history.
package struct RunJournal: Sendable {
    package let path: String
    package let archivePath: String
    private let layout: Layout

    package init(layout: Layout) {
        path = layout.runJournalFile
        archivePath = layout.runArchiveFile
        self.layout = layout
    }

    /// The journal's size past which the watcher rotates it.
    package static let rotateBytes = 4 << 20

    /// The runs of one instance: every ended one (its own file, and the journal's two
    /// generations for what that file lacks), and the running ones.
    package func records(of id: String, running: Bool) throws(ChatFlowError) -> (ended: [RunRecord], running: [RunningHook]) {
        let needle = Array(id.utf8)
        var values: [JSONValue] = []
        // In time order, so that an end follows its start (the instance's file repeats the ends).
        for file in [archivePath, path, layout.instanceRunsFile(id)] {
            try AppendLog.forEachLine(file) { line in
                guard RunJournal.contains(line, needle), let value = try? JSONValue(parsing: Array(line)),
                      value["instance_id"]?.stringValue == id
                else { return }
                values.append(value)
            }
        }
        let (ended, unended) = RunJournal.pair(values)
        var seen = Set<String>()
        var unique: [RunRecord] = []
        for record in ended.sorted(by: { $0.startedAt < $1.startedAt }) {
            if seen.insert("\(record.transition) \(record.hook) \(record.attempt) \(record.startedAt)").inserted { unique.append(record) }
        }
        return RunJournal.settle(unique, unended, running: running)
    }

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
        return RunJournal.settle(ended, unended, running: running)
    }

    /// The ended runs and the running ones, a run whose process is gone listed as ended.
    private static func settle(
        _ ended: [RunRecord], _ unended: [RunningHook], running: Bool
    ) -> (ended: [RunRecord], running: [RunningHook]) {
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
    /// With `archive`, the previous generation first.
    package func scan(lastBytes: Int? = nil, archive: Bool = false) throws(ChatFlowError) -> (ended: [RunRecord], unended: [RunningHook]) {
        let values = (archive ? try AppendLog.read(archivePath).values : []) + (try AppendLog.read(path, lastBytes: lastBytes).values)
        return RunJournal.pair(values)
    }

    /// Whether `line` holds `needle` (`memchr`, then `memcmp`): a generic search over a 15 MB
    /// journal's lines took seconds where this takes milliseconds.
    private static func contains(_ line: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        guard let first = needle.first else { return true }
        return line.withUnsafeBytes { haystack in
            needle.withUnsafeBytes { wanted in
                guard let base = haystack.baseAddress, haystack.count >= wanted.count else { return false }
                var start = 0
                while start + wanted.count <= haystack.count {
                    guard let found = memchr(base + start, Int32(first), haystack.count - start - wanted.count + 1) else { return false }
                    if memcmp(found, wanted.baseAddress!, wanted.count) == 0 { return true }
                    start = base.distance(to: UnsafeRawPointer(found)) + 1
                }
                return false
            }
        }
    }

    /// The ended runs in the instance's own run file alone.
    package func instanceRecords(of id: String) throws(ChatFlowError) -> [RunRecord] {
        try AppendLog.read(layout.instanceRunsFile(id)).values.compactMap { try? RunRecord(json: $0) }
    }

    /// The ended runs of the journal's previous generation.
    package func archived() throws(ChatFlowError) -> [RunRecord] {
        RunJournal.pair(try AppendLog.read(archivePath).values).ended
    }

    /// Journal lines as ended runs (in order) and the runs started and never ended.
    private static func pair(_ values: [JSONValue]) -> (ended: [RunRecord], unended: [RunningHook]) {
        var ended: [RunRecord] = []
        var started: [String: RunningHook] = [:]
        func key(_ id: String, _ transition: Int, _ hook: String, _ startedAt: Double) -> String {
            "\(id) \(transition) \(hook) \(startedAt)"
        }
        for value in values {
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
