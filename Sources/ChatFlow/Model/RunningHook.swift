import Glibc

/// A hook run that has started and not yet ended, from its start record in the run journal
/// (`{"started": true, …}`, docs/FORMAT.md).
public struct RunningHook: Sendable, Hashable {
    public var instanceID: String
    public var transition: Int
    public var phase: String
    public var event: String
    public var hook: String
    public var pid: Int32
    public var startedAt: Double
    public var logPath: String
    public var attempt: Int = 1

    public init(
        instanceID: String, transition: Int, phase: String, event: String, hook: String, pid: Int32, startedAt: Double,
        logPath: String
    ) {
        self.instanceID = instanceID
        self.transition = transition
        self.phase = phase
        self.event = event
        self.hook = hook
        self.pid = pid
        self.startedAt = startedAt
        self.logPath = logPath
    }

    /// The journal line.
    public var json: JSONValue {
        .object([
            "started": .bool(true), "instance_id": .string(instanceID), "transition": .number(JSONNumber(transition)),
            "phase": .string(phase), "event": .string(event), "hook": .string(hook), "pid": .number(JSONNumber(Int(pid))),
            "started_at": .number(JSONNumber(startedAt)), "log_path": .string(logPath),
            "attempt": .number(JSONNumber(attempt)),
        ])
    }

    /// As `chatflow runs --json` and `status --json` show it: the journal line with `running`
    /// and the seconds elapsed.
    public func report(now: Double) -> JSONValue {
        guard case .object(var members) = json else { return json }
        members["started"] = nil
        members["running"] = .bool(true)
        members["elapsed"] = .number(JSONNumber(((now - startedAt) * 10).rounded() / 10))
        return .object(members)
    }

    init?(json: JSONValue) {
        guard json["started"] == .bool(true), let id = json["instance_id"]?.stringValue, let transition = json["transition"]?.intValue,
            let hook = json["hook"]?.stringValue, let pid = json["pid"]?.intValue, let startedAt = json["started_at"]?.doubleValue
        else { return nil }
        self.init(
            instanceID: id, transition: transition, phase: json["phase"]?.stringValue ?? "", event: json["event"]?.stringValue ?? "",
            hook: hook, pid: Int32(truncatingIfNeeded: pid), startedAt: startedAt, logPath: json["log_path"]?.stringValue ?? "")
        attempt = json["attempt"]?.intValue ?? 1
    }

    /// Whether its process still exists (a watcher killed mid-hook leaves a start with no end).
    var isAlive: Bool { pid > 0 && (kill(pid, 0) == 0 || errno == EPERM) }
}
