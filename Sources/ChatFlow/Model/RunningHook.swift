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

    /// Whether its process still exists (a watcher killed mid-hook leaves a start with no end):
    /// the pid is alive, leads its own session (hooks are spawned with `setsid`), and started
    /// within two seconds of the run, so a pid the system has since given to another process
    /// is not taken for the hook.
    package var isAlive: Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let process = ProcessStart(pid) else { return false }
        return process.session == pid && abs(process.startedAt - startedAt) < 2
    }
}

/// A process's session and start time, from `/proc/<pid>/stat` and the boot time.
package struct ProcessStart {
    package let session: Int32
    /// Unix seconds.
    package let startedAt: Double

    package init?(_ pid: Int32) {
        guard let bytes = try? FileDescriptor(opening: "/proc/\(pid)/stat", flags: O_RDONLY).readAll(limit: 4096),
              let close = bytes.lastIndex(of: UInt8(ascii: ")"))
        else { return nil }
        // After "pid (comm) ": state ppid pgrp session … starttime (the 22nd field overall).
        let fields = bytes[(close + 2)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 19, let session = Int32(String(decoding: fields[3], as: UTF8.self)),
              let ticks = Double(String(decoding: fields[19], as: UTF8.self)), let boot = ProcessStart.bootTime
        else { return nil }
        self.session = session
        self.startedAt = boot + ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// `btime` of `/proc/stat`: when the machine booted, in Unix seconds.
    static let bootTime: Double? = {
        guard let bytes = try? FileDescriptor(opening: "/proc/stat", flags: O_RDONLY).readAll(limit: 1 << 20) else { return nil }
        for line in bytes.split(separator: 0x0A) where line.starts(with: Array("btime ".utf8)) {
            return Double(String(decoding: line.dropFirst(6), as: UTF8.self))
        }
        return nil
    }()
}
