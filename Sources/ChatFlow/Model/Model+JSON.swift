extension WorkflowSchema {
    /// The schema as stored: `{"name": …, "phases": [{"name": …, "task": …}]}`.
    public var json: JSONValue {
        .object([
            "name": .string(name),
            "phases": .array(phases.map { phase in
                var members: [String: JSONValue] = ["name": .string(phase.name)]
                if let task = phase.task { members["task"] = .string(task) }
                return .object(members)
            }),
        ])
    }

    /// Reads a schema from JSON; also accepts `phases` as a list of plain names.
    public init(json: JSONValue) throws(ChatFlowError) {
        do throws(StateDecodingError) {
            let reader = try JSONObjectReader(json, context: "the schema")
            let name = try reader.string("name")
            guard let elements = reader.value("phases").arrayValue else {
                throw StateDecodingError(reason: "'phases' in the schema is not a list")
            }
            var phases: [Phase] = []
            for element in elements {
                if let plain = element.stringValue {
                    phases.append(Phase(name: plain))
                } else {
                    let phase = try JSONObjectReader(element, context: "a phase")
                    phases.append(Phase(name: try phase.string("name"), task: try phase.optionalString("task")))
                }
            }
            self.init(name: name, phases: phases)
        } catch {
            throw .invalidSchema(reason: error.reason)
        }
        try validate()
    }
}

extension InstanceState {
    /// The state as readers are shown it (`status --json`, `list --json`, the web view's API,
    /// MCP): `json` without the claim's token, so that reading an instance never lets a reader
    /// act as the claim's holder (only `claim` hands a token out).
    public var report: JSONValue {
        guard let entry = currentEntry, entry.claim != nil, case .object(var members) = json else { return json }
        members["current_entry"] = entry.report
        return .object(members)
    }

    /// The state as stored in `instances/wfi_<id>.json`, snake_case keys.
    public var json: JSONValue {
        var members = membersWithoutSchema
        members["workflow_schema"] = schema.json
        return .object(members)
    }

    /// Every stored member but `workflow_schema` (which writers splice in from `SchemaCache`,
    /// and commit lines leave out).
    var membersWithoutSchema: [String: JSONValue] {
        [
            "format_version": JSONValue(InstanceState.formatVersion),
            "instance_id": .string(instanceID),
            "feature_id": .string(featureID),
            "workflow_name": .string(workflowName),
            "current_phase": .string(currentPhase),
            "previous_phase": JSONValue(previousPhase),
            "status": .string(status.rawValue),
            "variables": .object(variables),
            "meta": .object(meta),
            "created_at": JSONValue(createdAt),
            "updated_at": JSONValue(updatedAt),
            "history_length": JSONValue(historyLength),
            "history_bytes": JSONValue(historyBytes),
            "current_entry": currentEntry?.json ?? .null,
        ]
    }

    /// Writes `membersWithoutSchema`'s text without building it, `history_bytes` as given
    /// (none in a commit line, whose end is where the history ends).
    func write(to writer: inout JSONWriter, historyBytes: Int?) {
        writer.openObject()
        writer.member("created_at"); writer.write(JSONValue(createdAt))
        writer.member("current_entry")
        if let currentEntry { currentEntry.write(to: &writer) } else { writer.write(.null) }
        writer.member("current_phase"); writer.write(.string(currentPhase))
        writer.member("feature_id"); writer.write(.string(featureID))
        writer.member("format_version"); writer.write(JSONValue(InstanceState.formatVersion))
        if let historyBytes { writer.member("history_bytes"); writer.write(JSONValue(historyBytes)) }
        writer.member("history_length"); writer.write(JSONValue(historyLength))
        writer.member("instance_id"); writer.write(.string(instanceID))
        writer.member("meta"); writer.write(.object(meta))
        writer.member("previous_phase"); writer.write(JSONValue(previousPhase))
        writer.member("status"); writer.write(.string(status.rawValue))
        writer.member("updated_at"); writer.write(JSONValue(updatedAt))
        writer.member("variables"); writer.write(.object(variables))
        writer.member("workflow_name"); writer.write(.string(workflowName))
        writer.closeObject()
    }

    /// Reads and checks a stored state: every key present with the right type, ids and phase
    /// names valid (a hostile file must not smuggle `../` into a hook path), counts consistent.
    ///
    /// Another writer's readable file is understood, not refused (docs/FORMAT.md, "Other
    /// writers"): a `history` list inside the file (the original v1.0 layout), a `current_phase`
    /// moved without a history entry, missing bookkeeping keys. Such a state carries the entries
    /// only it holds in `foreignEntries`. Only the identity keys (`instance_id`, `feature_id`,
    /// `current_phase`, `status`) are required.
    init(json: JSONValue, schema knownSchema: WorkflowSchema? = nil) throws(StateDecodingError) {
        let reader = try JSONObjectReader(json, context: "the state")
        let statusText = try reader.string("status")
        guard let status = InstanceStatus(rawValue: statusText) else {
            throw StateDecodingError(reason: "status '\(statusText)' is not created, running, completed or failed")
        }
        let currentPhase = try reader.string("current_phase")
        var foreign: [HistoryEntry] = []
        var reasons: [String] = []
        let listValue = reader.value("history")
        if !listValue.isNull {
            guard let elements = listValue.arrayValue else { throw StateDecodingError(reason: "'history' in the state is not a list") }
            for element in elements { foreign.append(try HistoryEntry(json: element)) }
            reasons.append("a history list in the state file (the original v1.0 layout)")
        }
        let schema: WorkflowSchema
        if let knownSchema {
            schema = knownSchema
        } else if reader.value("workflow_schema").isNull {
            // The original stored no phase list: the phases seen, in order, are all that is known.
            var names: [String] = []
            for phase in foreign.map(\.phase) + [currentPhase] where !names.contains(phase) { names.append(phase) }
            schema = WorkflowSchema(name: try reader.optionalString("workflow_name") ?? "default", phaseNames: names)
            reasons.append("no workflow_schema")
        } else {
            do {
                schema = try WorkflowSchema(json: reader.value("workflow_schema"))
            } catch {
                throw StateDecodingError(reason: error.description)
            }
        }
        let currentEntryValue = reader.value("current_entry")
        var open = currentEntryValue.isNull ? nil : try HistoryEntry(json: currentEntryValue)
        // The history bookkeeping comes as a pair: a v1.0 file has neither (its history is the
        // list), a file of this format both.
        let storedLength = reader.value("history_length").isNull ? nil : try reader.int("history_length")
        guard storedLength == nil || !reader.value("history_bytes").isNull else { throw StateDecodingError(reason: "the state has no 'history_bytes'") }
        guard storedLength != nil || reader.value("history_bytes").isNull else { throw StateDecodingError(reason: "the state has no 'history_length'") }
        if storedLength == nil && foreign.isEmpty { reasons.append("no history bookkeeping (the original v1.0 layout)") }
        // Entries committed to history.ndjson: what the stored length says precedes the open entry.
        let inFile = storedLength.map { $0 - (open == nil ? 0 : 1) } ?? 0
        guard inFile >= 0 else { throw StateDecodingError(reason: "history_length \(storedLength ?? 0) is inconsistent with current_entry") }
        let updatedAt: Double
        if let updated = try reader.optionalDouble("updated_at") {
            updatedAt = updated
        } else {
            updatedAt = try reader.optionalDouble("created_at") ?? 0
        }
        if !foreign.isEmpty {
            // The list continues what this format holds: an open entry of ours it does not
            // repeat was closed when the list's first phase began.
            if var ours = open, !(foreign[0].phase == ours.phase && foreign[0].startedAt == ours.startedAt) {
                ours.endedAt = ours.endedAt ?? foreign[0].startedAt
                ours.status = .completed
                foreign.insert(ours, at: 0)
            } else if open != nil {
                foreign.removeFirst()
            }
            open = nil
            if !status.isFinished, let last = foreign.last, last.status == .running || last.endedAt == nil {
                open = foreign.removeLast()
            }
        }
        if var entry = open, entry.phase != currentPhase || status.isFinished {
            entry.endedAt = entry.endedAt ?? updatedAt
            entry.status = status == .failed && entry.phase == currentPhase ? .failed : .completed
            foreign.append(entry)
            open = nil
            reasons.append(entry.phase != currentPhase ? "current_phase moved without a history entry" : "status finished with the entry still open")
        }
        if open == nil && !status.isFinished {
            open = HistoryEntry(phase: currentPhase, task: schema.phases.first { $0.name == currentPhase }?.task, startedAt: updatedAt)
            if reasons.isEmpty { reasons.append("no open entry for current_phase") }
        }
        if status.isFinished, let last = foreign.last, last.phase != currentPhase {
            foreign.append(HistoryEntry(phase: currentPhase, task: nil, startedAt: updatedAt, endedAt: updatedAt, status: status == .failed ? .failed : .completed))
        }
        var previousPhase = try reader.optionalString("previous_phase")
        if !foreign.isEmpty, open != nil { previousPhase = foreign.last!.phase }
        let historyLength = inFile + foreign.count + (open == nil ? 0 : 1)
        let historyBytes = reader.value("history_bytes").isNull ? 0 : try reader.int("history_bytes")
        func optionalObject(_ key: String) throws(StateDecodingError) -> [String: JSONValue] {
            reader.value(key).isNull ? [:] : try reader.object(key)
        }
        self.init(
            instanceID: try reader.string("instance_id"), featureID: try reader.string("feature_id"),
            workflowName: try reader.optionalString("workflow_name") ?? schema.name, schema: schema,
            currentPhase: currentPhase, previousPhase: previousPhase, status: status,
            variables: try optionalObject("variables"), meta: try optionalObject("meta"),
            createdAt: try reader.optionalDouble("created_at") ?? updatedAt, updatedAt: updatedAt,
            historyLength: historyLength, historyBytes: historyBytes, currentEntry: open)
        foreignEntries = foreign
        if !foreign.isEmpty || !reasons.isEmpty { foreignLayout = reasons.joined(separator: "; ") }
        guard Identifiers.isInstanceID(instanceID) else {
            throw StateDecodingError(reason: "instance_id '\(instanceID)' is not a valid instance id")
        }
        if let problem = Identifiers.nameProblem(featureID) {
            throw StateDecodingError(reason: "feature_id: \(problem)")
        }
        for entry in foreign where Identifiers.nameProblem(entry.phase) != nil {
            throw StateDecodingError(reason: "history phase '\(entry.phase)' is not a valid phase name")
        }
        if let previousPhase, schema.index(of: previousPhase) == nil {
            throw StateDecodingError(reason: "previous_phase is not a phase of workflow_schema")
        }
        guard schema.index(of: currentPhase) != nil else {
            throw StateDecodingError(reason: "current_phase is not a phase of workflow_schema")
        }
    }
}

extension FeatureStatus {
    public var json: JSONValue {
        .object([
            "feature_id": .string(featureID),
            "total_instances": JSONValue(totalInstances),
            "running_count": JSONValue(runningCount),
            "completed_count": JSONValue(completedCount),
            "failed_count": JSONValue(failedCount),
            "latest_instance_id": JSONValue(latestInstanceID),
            "status": .string(status),
        ])
    }
}
