import ChatFlow

import Glibc

/// Results go to stdout, diagnostics to stderr, so `--json` output stays clean.
enum Output {
    /// An error on stderr: one line, or with `--json` one object
    /// `{"error": {"code": …, "message": …}}` (codes in README's table).
    static func error(_ message: String, code: String, json: Bool) {
        if json {
                writeStandardError(ErrorDocument.json(code: code, message: message).compactText + "\n")
        } else {
            writeStandardError("chatflow: error: " + message + "\n")
        }
    }

    static func json(_ value: JSONValue) {
        print(value.prettyText)
    }

    /// An operation's result: what its `--json` prints, or its text.
    static func result(_ result: OperationResult, json: Bool) {
        if json {
            Self.json(result.printed)
        } else if !result.text.isEmpty {
            print(result.text)
        }
    }

    /// Written at once, not at exit: a waiter's answer must not wait for the close of its
    /// inotify descriptor, which takes an RCU grace period (≈ 15 ms here, measured with strace).
    static func now(_ text: String) {
        try? writeAll(1, Array((text + "\n").utf8), operation: "write", path: "standard output")
    }

    /// `status --json`: the state with its whole history (the open entry last, one compact
    /// entry per line as stored) and its transition (the number `--expect-transition` takes),
    /// then `extra` members. Written around the stored lines rather than rebuilt: at history
    /// 1,000 that halves the command's time.
    static func printDocument(_ state: InstanceState, history: [[UInt8]], extra: [String: JSONValue] = [:]) {
        var members: [String: JSONValue] = [:]
        if case .object(let stored) = state.report { members = stored }
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
}
