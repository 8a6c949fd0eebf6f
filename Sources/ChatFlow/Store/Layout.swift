/// Where everything lives under a state directory. docs/FORMAT.md is the contract.
public struct Layout: Sendable, Hashable {
    /// The state directory itself (default `./.chatflow`).
    public let root: String

    public init(root: String) {
        self.root = FileSystem.absolute(root)
        instancesDirectory = self.root + "/instances"
        locksDirectory = self.root + "/.locks"
    }

    // Stored: every path of an instance starts with one of these.
    public let instancesDirectory: String
    public var featuresDirectory: String { root + "/features" }
    public let locksDirectory: String
    public var hooksDirectory: String { root + "/hooks" }
    /// `KEY=VALUE` settings the watcher passes to every hook.
    public var hookEnvironmentFile: String { root + "/hooks.env" }
    /// The watcher's own durable files (ledger, run journal).
    public var watchDirectory: String { root + "/.watch" }
    /// The last transition dispatched per instance, written by the watcher.
    public var ledgerFile: String { watchDirectory + "/ledger.ndjson" }
    /// One record per hook run, written by the watcher; rotated into `runArchiveFile` at 4 MiB.
    public var runJournalFile: String { watchDirectory + "/runs.ndjson" }
    /// The run journal's previous generation.
    public var runArchiveFile: String { watchDirectory + "/runs.1.ndjson" }
    /// Every ended run of one instance (the journal keeps only the recent ones of all).
    public func instanceRunsFile(_ id: String) -> String { runsDirectory(id) + "/runs.ndjson" }
    /// Held by the running watcher (one per state directory); holds its pid.
    public var watchLockFile: String { locksDirectory + "/watch.lock" }

    public func stateFile(_ id: String) -> String { instancesDirectory + "/" + id + ".json" }
    /// Fixed temp name: only the lock holder writes it, so a crash leaves at most one per instance.
    public func stateTempFile(_ id: String) -> String { instancesDirectory + "/." + id + ".json.tmp" }
    public func instanceDirectory(_ id: String) -> String { instancesDirectory + "/" + id }
    public func historyFile(_ id: String) -> String { instanceDirectory(id) + "/history.ndjson" }
    /// The instance as started, written once and synced: what its commit lines leave out
    /// (`workflow_schema`), and its state when a power cut took the view before any commit.
    public func startFile(_ id: String) -> String { instanceDirectory(id) + "/start.json" }
    public func tasksDirectory(_ id: String) -> String { instanceDirectory(id) + "/tasks" }
    /// Hook run logs, written by the watcher.
    public func runsDirectory(_ id: String) -> String { instanceDirectory(id) + "/runs" }
    /// The log of one attempt of one hook for one transition: `<N>-<hook with / as _>.log` for
    /// the first, `<N>-<hook>.<attempt>.log` for the later ones (retries, reruns, re-runs after a crash).
    public func runLogFile(_ id: String, transition: Int, hook: String, attempt: Int = 1) -> String {
        runsDirectory(id) + "/\(transition)-" + hook.replacing("/", with: "_") + (attempt > 1 ? ".\(attempt)" : "") + ".log"
    }
    /// Requests for `chatflow rerun`, one file each, taken by the watcher.
    public var rerunsDirectory: String { watchDirectory + "/reruns" }
    public func lockFile(_ id: String) -> String { locksDirectory + "/" + id + ".lock" }
    public var featuresLockFile: String { locksDirectory + "/features.lock" }
    /// The store's commit log: every commit's history lines, synced once (docs/FORMAT.md).
    public var commitLogFile: String { root + "/commit.log" }
    /// The log's temp name while it is first made.
    public var commitLogTempFile: String { root + "/.commit.log.tmp" }
    /// The log's lock (flock); its text is the log's head and the boot it was recovered in.
    public var commitLockFile: String { locksDirectory + "/commit.lock" }
    public func linkFile(_ feature: String) -> String { featuresDirectory + "/" + feature + ".link" }
    public func linkTempFile(_ feature: String) -> String { featuresDirectory + "/." + feature + ".link.tmp" }

    /// The instance id of a state file name (`wfi_<12 hex>.json`), or `nil` for anything else:
    /// temp files, lock files and strays are never mistaken for state.
    public static func instanceID(fromStateFileName name: String) -> String? {
        guard name.utf8.count == 21, name.hasSuffix(".json") else { return nil }
        let id = String(name.utf8.prefix(16))!
        return Identifiers.isInstanceID(id) ? id : nil
    }
}

/// One instance's paths from `Layout`'s functions, built once per change rather than at each use.
struct InstanceFiles {
    let directory: String
    let history: String
    let start: String
    let state: String
    let temp: String
    let lock: String

    init(_ layout: Layout, _ id: String) {
        directory = layout.instanceDirectory(id)
        history = layout.historyFile(id)
        start = layout.startFile(id)
        state = layout.stateFile(id)
        temp = layout.stateTempFile(id)
        lock = layout.lockFile(id)
    }
}
