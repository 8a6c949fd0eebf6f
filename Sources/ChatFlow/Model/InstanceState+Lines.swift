import Glibc

/// The one-line and multi-line texts the command prints, shared with the MCP server's short texts.
extension InstanceState {
    /// `ID  FEATURE  PHASE  STATUS[  claimed by …]`.
    package var line: String {
        "\(instanceID)  \(featureID)  \(currentPhase)  \(status.rawValue)" + claimText
    }

    /// `  claimed by NAME until TIME` for a live claim.
    package var claimText: String {
        guard let claim = currentEntry?.claim, claim.isLive(at: Timestamps.unix()) else { return "" }
        return "  claimed by \(Terminal.printable(claim.owner)) until \(Timestamps.text(claim.expiresAt))"
    }

    /// What `chatflow status` prints: the summary, then a line per running hook.
    package func statusText(running: [RunningHook], now: Double) -> String {
        ([summaryText] + running.map {
            "hook      \($0.hook) running for #\($0.transition) (pid \($0.pid), \(HookOutcome.seconds(now - $0.startedAt)))"
        }).joined(separator: "\n")
    }

    /// The instance's summary lines.
    package var summaryText: String {
        """
        instance  \(instanceID)
        feature   \(featureID)
        workflow  \(workflowName) (\(schema.phaseNames.joined(separator: " → ")))
        phase     \(currentPhase)
        status    \(status.rawValue)\(claimText)
        history   \(historyLength) entries
        variables \(Terminal.printable(JSONValue.object(variables).compactText))
        meta      \(Terminal.printable(JSONValue.object(meta).compactText))
        created   \(Timestamps.text(createdAt))
        updated   \(Timestamps.text(updatedAt))
        """
    }
}

extension Timestamps {
    /// `2026-11-25 14:03:12Z` from Unix seconds; `-` for none.
    package static func text(_ seconds: Double?) -> String {
        guard let seconds else { return "-" }
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%SZ", &parts)
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
