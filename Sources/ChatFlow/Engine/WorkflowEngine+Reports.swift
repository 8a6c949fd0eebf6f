extension WorkflowEngine {
    /// The hook runs the watcher recorded for this engine's state directory.
    package var hookRuns: HookRuns { HookRuns(engine: self) }

    /// `status --json` as a value: the state, its `transition`, its whole `history` and its
    /// `running_hooks`. (The command writes the same document around the stored history lines.)
    package func statusDocument(
        _ state: InstanceState, running: [RunningHook]? = nil, now: Double = Timestamps.unix()
    ) throws(ChatFlowError) -> JSONValue {
        var members = state.report.objectValue ?? [:]
        members["transition"] = .number(JSONNumber(state.lastTransition))
        members["history"] = .array(try historyText(of: state).map { line in (try? JSONValue(parsing: line)) ?? .null })
        members["running_hooks"] = .array((running ?? hookRuns.runningHooks(of: state.instanceID)).map { $0.report(now: now) })
        return .object(members)
    }
}
