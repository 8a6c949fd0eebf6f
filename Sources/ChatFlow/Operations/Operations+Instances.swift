/// Starting, moving and reading instances.
extension Operations {
    static let instances: [Operation] = [
        Operation(
            "start", "Start a workflow instance in its first phase. Returns its state (instance_id, current_phase, …).",
            properties: [
                "feature": ArgumentSchema.string("The feature this instance belongs to."),
                "phases": ["type": "array", "items": ["type": "string"], "description": "The phase names, in order (or give schema)."],
                "schema": ArgumentSchema.object("A workflow schema: {\"name\": …, \"phases\": [{\"name\": …, \"task\": …}]} (or give phases)."),
                "workflow": ArgumentSchema.string("The workflow name (default: the schema's, or 'default')."),
                "context": ArgumentSchema.object("Initial variables."),
                "meta": ArgumentSchema.object("Metadata."),
            ], required: ["feature"]
        ) { (arguments, engine) throws(ChatFlowError) -> OperationResult in
            let feature = try arguments.required("feature")
            var schema: WorkflowSchema
            switch (arguments.json("phases"), arguments.json("schema")) {
            case (let phases?, nil):
                guard let list = phases.arrayValue, case let names = list.compactMap(\.stringValue), names.count == list.count else {
                    throw .invalidJSON(what: "argument phases of start", reason: "must be an array of phase names")
                }
                schema = WorkflowSchema(name: "default", phaseNames: names)
            case (nil, let json?):
                schema = try WorkflowSchema(json: json)
            default:
                throw .invalidJSON(what: "arguments of start", reason: "give exactly one of phases or schema")
            }
            if let workflow = try arguments.string("workflow") { schema.name = workflow }
            let id = try engine.start(
                schema: schema, featureID: feature, context: try arguments.object("context") ?? [:], meta: try arguments.object("meta") ?? [:])
            guard let state = try engine.status(id) else { throw .notFound(instanceID: id, root: engine.storeDescription) }
            return OperationResult(document: state.report, text: "started \(id) (feature \(feature)) in phase \(state.currentPhase)")
        },
        Operation(
            "trigger",
            "Close the instance's current phase and enter the next one (or `to`); completes after the last. Pass expect_transition (from status or claim) so a stale agent cannot move work that moved on, and the claim token if you claimed it.",
            properties: [
                "id": ArgumentSchema.id,
                "data": ArgumentSchema.any("Trigger data, any JSON; an object is merged into the variables."),
                "meta": ArgumentSchema.object("Metadata to merge."),
                "to": ArgumentSchema.string("Enter this phase instead of the next (e.g. send a review back)."),
                "expect_transition": ArgumentSchema.integer(
                    "Trigger only if the last phase entered is still this history index; else a `conflict` error.", minimum: 0),
                "token": ArgumentSchema.token,
                "force": ArgumentSchema.boolean("Trigger a claimed instance without its token."),
            ], required: ["id"]
        ) { (arguments, engine) throws(ChatFlowError) -> OperationResult in
            let state = try engine.trigger(
                try arguments.required("id"), data: arguments.json("data") ?? .emptyObject, meta: try arguments.object("meta") ?? [:],
                to: try arguments.string("to"), expectedTransition: try arguments.int("expect_transition"), token: try arguments.string("token"),
                force: try arguments.bool("force"))
            // The state records the phase just left; completing stays in the last phase.
            let left = state.status == .completed ? state.currentPhase : state.previousPhase ?? "-"
            let to = state.status == .completed ? "completed" : "\(state.currentPhase) (\(state.status.rawValue))"
            return OperationResult(document: state.report, text: "\(state.instanceID): \(left) → \(to)")
        },
        Operation(
            "fail", "Mark an instance failed, with a reason.",
            properties: [
                "id": ArgumentSchema.id, "reason": ArgumentSchema.string("Why it failed (stored in the history)."), "token": ArgumentSchema.token,
                "force": ArgumentSchema.boolean("Fail a claimed instance without its token."),
            ], required: ["id"]
        ) { (arguments, engine) throws(ChatFlowError) -> OperationResult in
            let state = try engine.fail(
                try arguments.required("id"), reason: try arguments.string("reason"), token: try arguments.string("token"),
                force: try arguments.bool("force"))
            return OperationResult(document: state.report, text: "\(state.instanceID): failed at \(state.currentPhase)")
        },
        Operation(
            "status",
            "An instance's state: phase, status, variables, meta, its whole history, its transition (what trigger's expect_transition takes), its claim and its running hooks.",
            readOnly: true, properties: ["id": ArgumentSchema.id], required: ["id"]
        ) { (arguments, engine) throws(ChatFlowError) -> OperationResult in
            let id = try arguments.required("id")
            guard let state = try engine.freshStatus(id) else { throw .notFound(instanceID: id, root: engine.storeDescription) }
            let now = Timestamps.unix()
            let running = engine.hookRuns.runningHooks(of: id)
            return OperationResult(
                document: try engine.statusDocument(state, running: running, now: now), text: state.statusText(running: running, now: now))
        },
        Operation(
            "feature", "A feature's aggregate status: counts of its instances by status, and the latest.", readOnly: true,
            properties: ["feature": ArgumentSchema.string("The feature id.")], required: ["feature"]
        ) { (arguments, engine) throws(ChatFlowError) -> OperationResult in
            let feature = try arguments.required("feature")
            let status = try engine.featureStatus(feature)
            guard status.totalInstances > 0 else { throw .featureNotFound(featureID: feature, root: engine.storeDescription) }
            return OperationResult(
                document: status.json,
                text: """
                    feature    \(status.featureID)
                    status     \(status.status)
                    instances  \(status.totalInstances) (\(status.runningCount) running, \(status.completedCount) completed, \(status.failedCount) failed)
                    latest     \(status.latestInstanceID ?? "-")
                    """)
        },
        Operation(
            "list",
            "List instances, optionally of one feature, status and/or phase; with claimable (and phase), only those claim could take now, oldest first. Unreadable state files are listed apart, with their error.",
            readOnly: true,
            properties: [
                "feature": ArgumentSchema.string("Only this feature's instances."),
                "status": ArgumentSchema.status,
                "phase": ArgumentSchema.string("Only instances whose current phase is this."),
                "claimable": ArgumentSchema.boolean("With phase: only unclaimed (or lease-expired) instances."),
            ]
        ) { (arguments, engine) throws(ChatFlowError) -> OperationResult in
            let feature = try arguments.string("feature"), phase = try arguments.string("phase"), status = try arguments.status("status")
            if let phase { try Identifiers.validateName(phase, kind: .phaseName) }
            var unreadable: [JSONValue] = []
            let states: [InstanceState]
            if try arguments.bool("claimable") {
                guard let phase else { throw .invalidJSON(what: "argument claimable of list", reason: "goes with phase") }
                states = try engine.claimable(phase: phase, feature: feature)
            } else {
                states = try engine.list(feature: feature, status: status, phase: phase) { id, error in
                    unreadable.append(["instance_id": .string(id), "error": ErrorDocument.json(for: error)["error"] ?? .null])
                }
            }
            return OperationResult(
                document: ["instances": .array(states.map(\.report)), "unreadable": .array(unreadable)],
                text: states.map(\.line).joined(separator: "\n"), listing: "instances")
        },
        Operation(
            "history", "Every phase an instance entered, oldest first, with its trigger data.", readOnly: true,
            properties: ["id": ArgumentSchema.id], required: ["id"]
        ) { (arguments, engine) throws(ChatFlowError) -> OperationResult in
            let id = try arguments.required("id")
            let entries = try engine.history(id)
            let lines = entries.enumerated().map { index, entry in
                let data = entry.triggerDataSnapshot.isNull ? "" : "  " + entry.triggerDataSnapshot.compactText
                return "\(index)  \(entry.phase)  \(entry.status.rawValue)  \(Timestamps.text(entry.startedAt)) → \(Timestamps.text(entry.endedAt))\(data)"
            }
            return OperationResult(
                document: ["instance_id": .string(id), "history": .array(entries.map(\.report))], text: lines.joined(separator: "\n"),
                listing: "history")
        },
    ]
}
