/// A rerun request, checked before it is written.
extension WorkflowEngine {
    /// What `requestRerun` wrote.
    package struct RerunReceipt: Sendable {
        package var request: RerunRequest
        /// The transition it reruns (the latest when none was named).
        package var transition: Int
        package var watcherRunning: Bool

        package var json: JSONValue {
            [
                "instance_id": .string(request.instanceID), "transition": .number(JSONNumber(transition)),
                "hook": request.hook.map(JSONValue.string) ?? .null, "requested": true, "watcher_running": .bool(watcherRunning),
            ]
        }

        package var text: String {
            let which = "transition \(transition)" + (request.hook.map { ", hook \($0)" } ?? "")
            let id = request.instanceID
            return watcherRunning
                ? "rerun of \(id) \(which) requested; the watcher runs it (follow it: chatflow logs \(id) --follow)"
                : "rerun of \(id) \(which) requested; no watcher is running: the next chatflow-watch runs it"
        }
    }

    /// Asks the watcher to run a transition's hooks (or one of them) again. Refuses a transition
    /// the instance does not have, and a hook the transition lacks: not in the hooks directory
    /// for its event (or `@any`), and never run for it (a watcher with `--hooks DIR` records
    /// what it ran). The watcher would refuse it anyway, but only on its own console.
    package func requestRerun(_ id: String, transition: Int?, hook: String?) throws(ChatFlowError) -> RerunReceipt {
        try Identifiers.validateInstanceID(id)
        guard let state = try freshStatus(id) else { throw .notFound(instanceID: id, root: storeDescription) }
        let end = state.historyLength + (state.status.isFinished ? 1 : 0)
        if let transition, transition < 0 || transition >= end {
            throw .invalidJSON(what: "transition \(transition)", reason: "\(id) has transitions 0 to \(end - 1)")
        }
        let chosen = transition ?? end - 1
        if let hook { try checkRerunHook(hook, of: state, transition: chosen) }
        let request = try RerunRequest.submit(layout, instanceID: id, transition: transition, hook: hook)
        return RerunReceipt(request: request, transition: chosen, watcherRunning: LockFile.isHeld(layout.watchLockFile))
    }

    private func checkRerunHook(_ hook: String, of state: InstanceState, transition: Int) throws(ChatFlowError) {
        let event: String
        if transition == state.historyLength {
            event = state.status == .completed ? "@completed" : "@failed"
        } else if transition == state.historyLength - 1 {
            event = state.currentPhase
        } else {
            event = try history(of: state, from: transition).first?.phase ?? state.currentPhase
        }
        let catalog = HookCatalog(directory: layout.hooksDirectory)
        var names: [String] = []
        for lookup in [catalog.hooks(for: event), catalog.hooks(for: "@any")] {
            names += lookup.hooks.map(\.name) + lookup.refused.map { catalog.name(of: $0.path) }
        }
        names += try hookRuns.runs(of: state.instanceID).ended.filter { $0.transition == transition }.map(\.hook)
        guard !names.contains(hook) else { return }
        var known: [String] = []
        for name in names where !known.contains(name) { known.append(name) }
        let listed = known.isEmpty ? "it has none" : "its hooks: " + known.joined(separator: ", ")
        throw .invalidJSON(
            what: "hook \(IdentifierKind.quote(hook))",
            reason: "transition \(transition) of \(state.instanceID) (\(event)) has no such hook; \(listed)")
    }
}
