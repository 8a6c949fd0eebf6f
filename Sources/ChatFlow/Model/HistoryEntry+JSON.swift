extension HistoryEntry {
    /// The entry as stored, one object per line of `history.ndjson`.
    public var json: JSONValue {
        var members: [String: JSONValue] = [
            "phase": .string(phase),
            "task": JSONValue(task),
            "started_at": JSONValue(startedAt),
            "ended_at": JSONValue(endedAt),
            "status": .string(status.rawValue),
            "trigger_data_snapshot": triggerDataSnapshot,
        ]
        if let claim { members["claim"] = claim.json }
        return .object(members)
    }

    /// The entry as readers are shown it: its claim without the token (see `InstanceState.report`).
    public var report: JSONValue {
        guard let claim, case .object(var members) = json else { return json }
        members["claim"] = ["owner": .string(claim.owner), "expires_at": .number(JSONNumber(claim.expiresAt))]
        return .object(members)
    }

    package init(json: JSONValue) throws(StateDecodingError) {
        let reader = try JSONObjectReader(json, context: "a history entry")
        let statusText = try reader.string("status")
        guard let status = EntryStatus(rawValue: statusText) else {
            throw StateDecodingError(reason: "history entry status '\(statusText)' is not running, completed or failed")
        }
        let phase = try reader.string("phase")
        self.init(
            phase: phase, task: try reader.optionalString("task"), startedAt: try reader.double("started_at"),
            endedAt: try reader.optionalDouble("ended_at"), status: status,
            triggerDataSnapshot: reader.value("trigger_data_snapshot"))
        if !reader.value("claim").isNull {
            let lease = try JSONObjectReader(reader.value("claim"), context: "a claim")
            claim = Claim(owner: try lease.string("owner"), token: try lease.string("token"), expiresAt: try lease.double("expires_at"))
        }
    }
}

extension HistoryEntry {
    /// Writes `json`'s text without building it; with `state`, as a commit line, which carries
    /// the new state (`InstanceState.write(to:historyBytes:)` without `history_bytes`).
    func write(to writer: inout JSONWriter, committing state: InstanceState? = nil) {
        writer.openObject()
        if let claim {
            writer.member("claim")
            writer.openObject()
            writer.member("expires_at"); writer.write(.number(JSONNumber(claim.expiresAt)))
            writer.member("owner"); writer.write(.string(claim.owner))
            writer.member("token"); writer.write(.string(claim.token))
            writer.closeObject()
        }
        writer.member("ended_at"); writer.write(JSONValue(endedAt))
        writer.member("phase"); writer.write(.string(phase))
        writer.member("started_at"); writer.write(JSONValue(startedAt))
        if let state { writer.member("state"); state.write(to: &writer, historyBytes: nil) }
        writer.member("status"); writer.write(.string(status.rawValue))
        writer.member("task"); writer.write(JSONValue(task))
        writer.member("trigger_data_snapshot"); writer.write(triggerDataSnapshot)
        writer.closeObject()
    }
}

extension Claim {
    /// `{"owner": …, "token": …, "expires_at": …}`, inside the open entry.
    public var json: JSONValue {
        ["owner": .string(owner), "token": .string(token), "expires_at": .number(JSONNumber(expiresAt))]
    }
}
