/// How one hook run ended. A value, not an error: a failing hook is the user's business.
public enum HookOutcome: Sendable, Hashable {
    case exited(code: Int32)
    case signaled(signal: Int32)
    case timedOut(after: Double)
    case failedToLaunch(reason: String)
    /// It ran, but its exit status could not be collected (someone else reaped it).
    case statusLost(reason: String)
    /// It was not run: the hook file failed the trust checks (the reason says how to fix it).
    case refused(reason: String)
    /// The watcher's shutdown ended it (the signal that did, if any); it runs again at the next start.
    case interrupted(signal: Int32?)

    /// Exit 0.
    public var succeeded: Bool { self == .exited(code: 0) }

    /// Seconds as a person reads them: `3.0 s`, `0.25 s`, `12 min 5 s`.
    public static func seconds(_ value: Double) -> String {
        guard value.isFinite, value >= 0 else { return "\(value) s" }
        if value >= 60 {
            let whole = Int(value.rounded())
            return "\(whole / 60) min \(whole % 60) s"
        }
        let digits = value < 1 ? 100.0 : 10.0
        return "\((value * digits).rounded() / digits) s"
    }

    public var summary: String {
        switch self {
        case .exited(let code): "exit \(code)"
        case .signaled(let signal): "signal \(signal)"
        case .timedOut(let seconds): "timed out after \(Self.seconds(seconds))"
        case .failedToLaunch(let reason): "failed to launch: \(reason)"
        case .statusLost(let reason): "exit status lost: \(reason)"
        case .refused(let reason): "refused: \(reason)"
        case .interrupted(let signal): "interrupted by the watcher's shutdown" + (signal.map { " (signal \($0))" } ?? "")
        }
    }
}

/// One hook run, as appended to the run journal `.watch/runs.ndjson`.
public struct RunRecord: Sendable, Hashable {
    public var instanceID: String
    /// Index in `history` of the phase entered (with the instance id: an idempotency key).
    public var transition: Int
    public var phase: String
    /// The event that selected the hook: a phase name, `@any`, `@completed` or `@failed`.
    public var event: String
    /// The hook's path relative to the hooks directory.
    public var hook: String
    public var startedAt: Double
    public var endedAt: Double
    public var outcome: HookOutcome
    public var logPath: String
    /// Output bytes the hook wrote beyond the kept tail.
    public var droppedOutputBytes: Int
    /// Which run of this hook for this transition it was (1 first; retries, reruns and re-runs
    /// after a crash count up).
    public var attempt: Int = 1
    /// Why some of the run's output is not in its log (a full disk), or `nil`.
    public var logError: String?

    public init(
        instanceID: String, transition: Int, phase: String, event: String, hook: String, startedAt: Double,
        endedAt: Double, outcome: HookOutcome, logPath: String, droppedOutputBytes: Int
    ) {
        self.instanceID = instanceID
        self.transition = transition
        self.phase = phase
        self.event = event
        self.hook = hook
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.outcome = outcome
        self.logPath = logPath
        self.droppedOutputBytes = droppedOutputBytes
    }

    public var json: JSONValue {
        var exitCode: JSONValue = .null
        var signal: JSONValue = .null
        var error: JSONValue = .null
        var timedOut = false
        var statusLost = false
        var refused = false
        var interrupted = false
        switch outcome {
        case .exited(let code): exitCode = JSONValue(Int(code))
        case .signaled(let number): signal = JSONValue(Int(number))
        case .timedOut: timedOut = true
        case .failedToLaunch(let reason): error = .string(reason)
        case .statusLost(let reason):
            error = .string(reason)
            statusLost = true
        case .refused(let reason):
            error = .string(reason)
            refused = true
        case .interrupted(let number):
            signal = number.map { JSONValue(Int($0)) } ?? .null
            interrupted = true
        }
        var members: [String: JSONValue] = [
            "instance_id": .string(instanceID), "transition": JSONValue(transition), "phase": .string(phase),
            "event": .string(event), "hook": .string(hook), "started_at": JSONValue(startedAt),
            "ended_at": JSONValue(endedAt), "exit_code": exitCode, "signal": signal, "timed_out": .bool(timedOut),
            "error": error, "log_path": .string(logPath), "dropped_output_bytes": JSONValue(droppedOutputBytes),
        ]
        if statusLost { members["status_lost"] = .bool(true) }
        if refused { members["refused"] = .bool(true) }
        if interrupted { members["interrupted"] = .bool(true) }
        members["attempt"] = .number(JSONNumber(attempt))
        if let logError { members["log_error"] = .string(logError) }
        return .object(members)
    }

    init(json: JSONValue) throws(StateDecodingError) {
        let reader = try JSONObjectReader(json, context: "a run record")
        let startedAt = try reader.double("started_at")
        let endedAt = try reader.double("ended_at")
        let outcome: HookOutcome
        if reader.value("interrupted") == .bool(true) {
            outcome = .interrupted(signal: reader.value("signal").intValue.map { Int32(truncatingIfNeeded: $0) })
        } else if reader.value("refused") == .bool(true) {
            outcome = .refused(reason: try reader.optionalString("error") ?? "unknown")
        } else if reader.value("status_lost") == .bool(true) {
            outcome = .statusLost(reason: try reader.optionalString("error") ?? "unknown")
        } else if reader.value("timed_out") == .bool(true) {
            outcome = .timedOut(after: endedAt - startedAt)
        } else if let code = reader.value("exit_code").intValue {
            outcome = .exited(code: Int32(truncatingIfNeeded: code))
        } else if let signal = reader.value("signal").intValue {
            outcome = .signaled(signal: Int32(truncatingIfNeeded: signal))
        } else {
            outcome = .failedToLaunch(reason: try reader.optionalString("error") ?? "unknown")
        }
        self.init(
            instanceID: try reader.string("instance_id"), transition: try reader.int("transition"),
            phase: try reader.string("phase"), event: try reader.string("event"), hook: try reader.string("hook"),
            startedAt: startedAt, endedAt: endedAt, outcome: outcome, logPath: try reader.string("log_path"),
            droppedOutputBytes: reader.value("dropped_output_bytes").intValue ?? 0)
        attempt = reader.value("attempt").intValue ?? 1
        logError = reader.value("log_error").stringValue
    }
}
