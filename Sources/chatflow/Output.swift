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
        status    \(state.status.rawValue)\(claimText(state))
        history   \(state.historyLength) entries
        variables \(JSONValue.object(state.variables).compactText)
        meta      \(JSONValue.object(state.meta).compactText)
        created   \(time(state.createdAt))
        updated   \(time(state.updatedAt))
        """
    }

    /// `status --json`: the state with its whole history (the open entry last, one compact
    /// entry per line as stored) and its transition (the number `--expect-transition` takes),
    /// then `extra` members. Written around the stored lines rather than rebuilt: at history
    /// 1,000 that halves the command's time.
    static func printDocument(_ state: InstanceState, history: [[UInt8]], extra: [String: JSONValue] = [:]) {
        var members: [String: JSONValue] = [:]
        if case .object(let stored) = state.json { members = stored }
        members["transition"] = .number(JSONNumber(state.lastTransition))
        for (key, value) in extra { members[key] = value }
        var text = Array(JSONValue.object(members).prettyText.utf8)
        // `{…\n}`: the history goes in before the closing brace.
        while text.last == 0x0A { text.removeLast() }
        if text.last == 0x7D { text.removeLast() }
        while text.last == 0x0A { text.removeLast() }
        var out = text + Array(",\n  \"history\": [".utf8)
        for (index, line) in history.enumerated() {
            out += Array((index == 0 ? "\n    " : ",\n    ").utf8)
            out += line
        }
        out += Array((history.isEmpty ? "]\n}\n" : "\n  ]\n}\n").utf8)
        try? writeAll(1, out, operation: "write", path: "standard output")
    }

    static func line(_ state: InstanceState) -> String {
        "\(state.instanceID)  \(state.featureID)  \(state.currentPhase)  \(state.status.rawValue)" + claimText(state)
    }

    /// `  claimed by NAME until TIME` for a live claim.
    static func claimText(_ state: InstanceState) -> String {
        guard let claim = state.currentEntry?.claim, claim.isLive(at: Timestamps.unix()) else { return "" }
        return "  claimed by \(claim.owner) until \(time(claim.expiresAt))"
    }
}
