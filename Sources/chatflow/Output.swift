import ChatFlow

import Glibc

/// Results go to stdout, diagnostics to stderr, so `--json` output stays clean.
enum Output {
    /// An error on stderr: one line, or with `--json` one object
    /// `{"error": {"code": …, "message": …}}` (codes in README's table).
    static func error(_ message: String, code: String, json: Bool) {
        if json {
            let object: JSONValue = ["error": ["code": .string(code), "message": .string(message)]]
            writeStandardError(object.compactText + "\n")
        } else {
            writeStandardError("chatflow: error: " + message + "\n")
        }
    }

    static func json(_ value: JSONValue) {
        print(value.prettyText)
    }

    /// Now, in Unix seconds.
    static func now() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// `2026-11-25 14:03:12Z` from Unix seconds.
    static func time(_ seconds: Double?) -> String {
        guard let seconds else { return "-" }
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%SZ", &parts)
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    static func summary(_ state: InstanceState) -> String {
        """
        instance  \(state.instanceID)
        feature   \(state.featureID)
        workflow  \(state.workflowName) (\(state.schema.phaseNames.joined(separator: " → ")))
        phase     \(state.currentPhase)
        status    \(state.status.rawValue)
        history   \(state.historyLength) entries
        variables \(JSONValue.object(state.variables).compactText)
        meta      \(JSONValue.object(state.meta).compactText)
        created   \(time(state.createdAt))
        updated   \(time(state.updatedAt))
        """
    }

    /// `status --json`: the state with its whole history (the open entry last) and its
    /// transition (the number `--expect-transition` takes).
    static func document(_ state: InstanceState, history: [HistoryEntry]) -> JSONValue {
        guard case .object(var members) = state.json else { return state.json }
        members["history"] = .array(history.map(\.json))
        members["transition"] = .number(JSONNumber(state.lastTransition))
        return .object(members)
    }

    static func line(_ state: InstanceState) -> String {
        "\(state.instanceID)  \(state.featureID)  \(state.currentPhase)  \(state.status.rawValue)"
    }
}
