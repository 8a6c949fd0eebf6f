import ChatFlow
import ChatFlowWatch
import Foundation
import MCP

/// What every tool call works on.
struct ToolContext: Sendable {
    let engine: WorkflowEngine
    let changes: any InstanceChangeSource

    /// Waits end well before the common client request timeout (60 s in the TypeScript and
    /// Python SDKs): a wait that runs out returns `timeout`, and the agent calls again.
    static let defaultWait = 25.0
    static let maximumWait = 55.0
}

/// One tool: its description and input schema for `tools/list`, and what a call does.
struct ChatFlowTool: Sendable {
    let tool: Tool
    let arguments: Set<String>
    let run: @Sendable (ToolArguments, ToolContext) async throws -> ToolOutput

    init(
        _ name: String, _ description: String, readOnly: Bool = false, properties: [String: Value] = [:], required: [String] = [],
        run: @escaping @Sendable (ToolArguments, ToolContext) async throws -> ToolOutput
    ) {
        tool = Tool(
            name: name, description: description, inputSchema: Schema.object(properties, required: required),
            annotations: .init(readOnlyHint: readOnly, destructiveHint: false, openWorldHint: false))
        arguments = Set(properties.keys)
        self.run = run
    }

    func call(_ values: [String: Value]?, context: ToolContext) async -> CallTool.Result {
        do {
            let arguments = try ToolArguments(tool: tool.name, values: values, allowed: arguments)
            return try await run(arguments, context).result
        } catch {
            return ToolFailure(error).result
        }
    }
}

/// The tools, one per `chatflow` operation, with the same JSON as its `--json`.
enum ChatFlowTools {
    static let all: [ChatFlowTool] = instances + claims + runs

    static func named(_ name: String) -> ChatFlowTool? { all.first { $0.tool.name == name } }

    private static let waitTimeout = Schema.number(
        "Give up after this many seconds (default \(Int(ToolContext.defaultWait)), at most \(Int(ToolContext.maximumWait))): the result is then a `timeout` error; call again to keep waiting.",
        maximum: ToolContext.maximumWait)

    static let instances: [ChatFlowTool] = [
        ChatFlowTool(
            "start", "Start a workflow instance in its first phase. Returns its state (instance_id, current_phase, …).",
            properties: [
                "feature": Schema.string("The feature this instance belongs to."),
                "phases": ["type": "array", "items": ["type": "string"], "description": "The phase names, in order (or give schema)."],
                "schema": Schema.jsonObject("A workflow schema: {\"name\": …, \"phases\": [{\"name\": …, \"task\": …}]} (or give phases)."),
                "workflow": Schema.string("The workflow name (default: the schema's, or 'default')."),
                "context": Schema.jsonObject("Initial variables."),
                "meta": Schema.jsonObject("Metadata."),
            ], required: ["feature"]
        ) { arguments, context in
            let feature = try arguments.required("feature")
            var schema: WorkflowSchema
            switch (arguments.json("phases"), arguments.json("schema")) {
            case (let phases?, nil):
                guard let names = phases.arrayValue?.compactMap(\.stringValue), names.count == phases.arrayValue?.count else {
                    throw ChatFlowError.invalidJSON(what: "argument phases of start", reason: "must be an array of phase names")
                }
                schema = WorkflowSchema(name: "default", phaseNames: names)
            case (nil, let json?):
                schema = try WorkflowSchema(json: json)
            default:
                throw ChatFlowError.invalidJSON(what: "arguments of start", reason: "give exactly one of phases or schema")
            }
            if let workflow = try arguments.string("workflow") { schema.name = workflow }
            let id = try context.engine.start(
                schema: schema, featureID: feature, context: try arguments.object("context") ?? [:], meta: try arguments.object("meta") ?? [:])
            guard let state = try context.engine.status(id) else { throw ChatFlowError.notFound(instanceID: id, root: context.engine.storeDescription) }
            return ToolOutput(structured: state.report, text: "started \(id) (feature \(feature)) in phase \(state.currentPhase)")
        },
        ChatFlowTool(
            "trigger",
            "Close the instance's current phase and enter the next one (or `to`); completes after the last. Pass expect_transition (from status or claim) so a stale agent cannot move work that moved on, and the claim token if you claimed it.",
            properties: [
                "id": Schema.id,
                "data": ["description": "Trigger data, any JSON; an object is merged into the variables."],
                "meta": Schema.jsonObject("Metadata to merge."),
                "to": Schema.string("Enter this phase instead of the next (e.g. send a review back)."),
                "expect_transition": Schema.integer("Trigger only if the last phase entered is still this history index; else a `conflict` error.", minimum: 0),
                "token": Schema.token,
                "force": Schema.boolean("Trigger a claimed instance without its token."),
            ], required: ["id"]
        ) { arguments, context in
            let state = try context.engine.trigger(
                try arguments.required("id"), data: arguments.json("data") ?? .emptyObject, meta: try arguments.object("meta") ?? [:],
                to: try arguments.string("to"), expectedTransition: try arguments.int("expect_transition"), token: try arguments.string("token"),
                force: try arguments.bool("force"))
            let left = state.status == .completed ? state.currentPhase : state.previousPhase ?? "-"
            let to = state.status == .completed ? "completed" : "\(state.currentPhase) (\(state.status.rawValue))"
            return ToolOutput(structured: state.report, text: "\(state.instanceID): \(left) → \(to), transition \(state.lastTransition)")
        },
        ChatFlowTool(
            "fail", "Mark an instance failed, with a reason.",
            properties: [
                "id": Schema.id, "reason": Schema.string("Why it failed (stored in the history)."), "token": Schema.token,
                "force": Schema.boolean("Fail a claimed instance without its token."),
            ], required: ["id"]
        ) { arguments, context in
            let state = try context.engine.fail(
                try arguments.required("id"), reason: try arguments.string("reason"), token: try arguments.string("token"),
                force: try arguments.bool("force"))
            return ToolOutput(structured: state.report, text: "\(state.instanceID): failed at \(state.currentPhase)")
        },
        ChatFlowTool(
            "status",
            "An instance's state: phase, status, variables, meta, its whole history, its transition (what trigger's expect_transition takes), its claim and its running hooks.",
            readOnly: true, properties: ["id": Schema.id], required: ["id"]
        ) { arguments, context in
            let id = try arguments.required("id")
            guard let state = try context.engine.status(id) else { throw ChatFlowError.notFound(instanceID: id, root: context.engine.storeDescription) }
            let now = Timestamps.unix()
            let running = context.engine.runningHooks(of: id)
            let text = ([state.summaryText + "\ntransition \(state.lastTransition)"] + running.map {
                "hook      \($0.hook) running for #\($0.transition) (pid \($0.pid), \(HookOutcome.seconds(now - $0.startedAt)))"
            }).joined(separator: "\n")
            return ToolOutput(structured: try context.engine.statusDocument(state, now: now), text: text)
        },
        ChatFlowTool(
            "feature", "A feature's aggregate status: counts of its instances by status, and the latest.", readOnly: true,
            properties: ["feature": Schema.string("The feature id.")], required: ["feature"]
        ) { arguments, context in
            let feature = try arguments.required("feature")
            let status = try context.engine.featureStatus(feature)
            guard status.totalInstances > 0 else { throw ChatFlowError.featureNotFound(featureID: feature, root: context.engine.storeDescription) }
            return ToolOutput(
                structured: status.json,
                text: "feature \(feature): \(status.status), \(status.totalInstances) instances (\(status.runningCount) running, \(status.completedCount) completed, \(status.failedCount) failed)")
        },
        ChatFlowTool(
            "list",
            "List instances, optionally of one feature, status and/or phase; with claimable (and phase), only those claim could take now, oldest first.",
            readOnly: true,
            properties: [
                "feature": Schema.string("Only this feature's instances."),
                "status": Schema.string("Only this status (running includes created).", oneOf: ["created", "running", "completed", "failed"]),
                "phase": Schema.string("Only instances whose current phase is this."),
                "claimable": Schema.boolean("With phase: only unclaimed (or lease-expired) instances."),
            ]
        ) { arguments, context in
            let feature = try arguments.string("feature"), phase = try arguments.string("phase")
            var wanted: InstanceStatus?
            if let status = try arguments.string("status") {
                guard let parsed = InstanceStatus(rawValue: status) else {
                    throw ChatFlowError.invalidJSON(what: "argument status of list", reason: "must be created, running, completed or failed")
                }
                wanted = parsed
            }
            if let phase { try Identifiers.validateName(phase, kind: .phaseName) }
            var unreadable: [JSONValue] = []
            let states: [InstanceState]
            if try arguments.bool("claimable") {
                guard let phase else { throw ChatFlowError.invalidJSON(what: "argument claimable of list", reason: "goes with phase") }
                states = try context.engine.claimable(phase: phase, feature: feature)
            } else {
                states = try context.engine.list(feature: feature, status: wanted, phase: phase) { id, error in
                    unreadable.append(["instance_id": .string(id), "error": ["code": .string(error.code), "message": .string(error.description)]])
                }
            }
            let text = states.isEmpty ? "no instances match" : states.map(\.line).joined(separator: "\n")
            return ToolOutput(
                structured: ["instances": .array(states.map(\.report)), "unreadable": .array(unreadable)],
                text: text + (unreadable.isEmpty ? "" : "\n(\(unreadable.count) unreadable state files skipped)"))
        },
        ChatFlowTool(
            "history", "Every phase an instance entered, oldest first, with its trigger data.", readOnly: true,
            properties: ["id": Schema.id], required: ["id"]
        ) { arguments, context in
            let id = try arguments.required("id")
            let entries = try context.engine.history(id)
            let lines = entries.enumerated().map { index, entry in
                "\(index)  \(entry.phase)  \(entry.status.rawValue)  \(Timestamps.text(entry.startedAt)) → \(Timestamps.text(entry.endedAt))"
            }
            return ToolOutput(structured: ["instance_id": .string(id), "history": .array(entries.map(\.report))], text: lines.joined(separator: "\n"))
        },
        ChatFlowTool(
            "wait",
            "Block until an instance reaches a phase, a status or moves past a transition (give id and one of phase, status, after_transition), or until any instance (of feature) is in phase (give phase without id). Returns the state. Event-driven; returns at once if it already holds.",
            readOnly: true,
            properties: [
                "id": Schema.id,
                "phase": Schema.string("Until the current phase is this."),
                "status": Schema.string("Until the status is this.", oneOf: ["created", "running", "completed", "failed"]),
                "after_transition": Schema.integer("Until the instance has moved past transition N (or finished).", minimum: 0),
                "feature": Schema.string("Without id: only this feature's instances."),
                "timeout_seconds": waitTimeout,
            ]
        ) { arguments, context in
            let timeout = try waitSeconds(arguments)
            let phase = try arguments.string("phase"), status = try arguments.string("status"), after = try arguments.int("after_transition")
            let feature = try arguments.string("feature")
            guard let id = try arguments.string("id") else {
                guard let phase, status == nil, after == nil else {
                    throw ChatFlowError.invalidJSON(what: "arguments of wait", reason: "without id, give phase (and optionally feature)")
                }
                let state = try await context.engine.waitForAny(phase: phase, feature: feature, timeout: timeout, changes: context.changes)
                return ToolOutput(structured: state.report, text: state.line)
            }
            guard feature == nil else { throw ChatFlowError.invalidJSON(what: "argument feature of wait", reason: "goes with the form without id") }
            let condition: WaitCondition
            switch (phase, status, after) {
            case (let phase?, nil, nil): condition = .phase(phase)
            case (nil, let status?, nil):
                guard let parsed = InstanceStatus(rawValue: status) else {
                    throw ChatFlowError.invalidJSON(what: "argument status of wait", reason: "must be created, running, completed or failed")
                }
                condition = .status(parsed)
            case (nil, nil, let after?): condition = .afterTransition(after)
            default: throw ChatFlowError.invalidJSON(what: "arguments of wait", reason: "give exactly one of phase, status or after_transition")
            }
            let state = try await context.engine.wait(for: id, until: condition, timeout: timeout, changes: context.changes)
            return ToolOutput(structured: state.report, text: state.line)
        },
    ]

    static let claims: [ChatFlowTool] = [
        ChatFlowTool(
            "claim",
            "Take the oldest instance in phase that is unclaimed (or whose lease expired): exactly one caller wins. Returns instance_id, transition and the claim token; pass both to trigger when done, renew with heartbeat, give up with release.",
            properties: [
                "phase": Schema.string("The phase to take work from."),
                "as": Schema.string("Who claims (this agent's name)."),
                "feature": Schema.string("Only this feature's instances."),
                "ttl": Schema.duration("The lease (default 300 s)."),
                "wait": Schema.boolean("Wait (event-driven) until something is claimable, up to timeout_seconds."),
                "timeout_seconds": waitTimeout,
            ], required: ["phase", "as"]
        ) { arguments, context in
            let phase = try arguments.required("phase"), owner = try arguments.required("as"), feature = try arguments.string("feature")
            let ttl = try arguments.duration("ttl") ?? 300
            let grant: ClaimGrant
            if try arguments.bool("wait") {
                grant = try await context.engine.claim(
                    phase: phase, owner: owner, feature: feature, ttl: ttl, waitingUpTo: try waitSeconds(arguments), changes: context.changes)
            } else {
                guard let taken = try context.engine.claim(phase: phase, owner: owner, feature: feature, ttl: ttl) else {
                    throw ToolFailure(code: "not_found", message: "nothing in phase \(IdentifierKind.quote(phase)) is claimable (pass wait: true to wait for it)")
                }
                grant = taken
            }
            return ToolOutput(
                structured: grant.json,
                text: "claimed \(grant.instanceID) (transition \(grant.transition)) as \(owner) until \(Timestamps.text(grant.claim.expiresAt)); token \(grant.claim.token)")
        },
        ChatFlowTool(
            "heartbeat", "Renew a claim's lease (a `conflict` error if the token is wrong or expired).",
            properties: ["id": Schema.id, "token": Schema.token, "ttl": Schema.duration("The new lease, from now (default 300 s).")],
            required: ["id", "token"]
        ) { arguments, context in
            let id = try arguments.required("id")
            let state = try context.engine.heartbeat(id, token: try arguments.required("token"), ttl: try arguments.duration("ttl") ?? 300)
            let expires = state.currentEntry?.claim?.expiresAt ?? 0
            return ToolOutput(
                structured: ["instance_id": .string(id), "owner": .string(state.currentEntry?.claim?.owner ?? ""), "expires_at": .number(JSONNumber(expires))],
                text: "\(id): claimed until \(Timestamps.text(expires))")
        },
        ChatFlowTool(
            "release", "Give a claim up, so another agent can take the work.", properties: ["id": Schema.id, "token": Schema.token],
            required: ["id", "token"]
        ) { arguments, context in
            let id = try arguments.required("id")
            _ = try context.engine.release(id, token: try arguments.required("token"))
            return ToolOutput(structured: ["instance_id": .string(id), "released": true], text: "\(id): released")
        },
    ]

    static let runs: [ChatFlowTool] = [
        ChatFlowTool(
            "runs", "Hook runs recorded by chatflow-watch (of one instance, if id is given): finished ones with their outcome, then running ones.",
            readOnly: true, properties: ["id": Schema.id]
        ) { arguments, context in
            let (ended, running) = try context.engine.runs(of: try arguments.string("id"))
            let now = Timestamps.unix()
            let lines =
                ended.map { "\($0.instanceID)  #\($0.transition) \($0.phase)  \($0.hook)  \($0.outcome.summary)  \(HookOutcome.seconds($0.endedAt - $0.startedAt))" }
                + running.map { "\($0.instanceID)  #\($0.transition) \($0.phase)  \($0.hook)  running (\(HookOutcome.seconds(now - $0.startedAt)))" }
            return ToolOutput(
                structured: ["runs": .array(ended.map(\.json) + running.map { $0.report(now: now) })],
                text: lines.isEmpty ? "no hook runs recorded" : lines.joined(separator: "\n"))
        },
        ChatFlowTool(
            "logs",
            "A hook run's output: the newest run of the instance (or of transition and hook). Without offset, its last max_bytes; with offset (the next_offset of an earlier call), what was written since: call again while running is true to follow it.",
            readOnly: true,
            properties: [
                "id": Schema.id, "transition": Schema.integer("Only runs of this transition (#N in runs).", minimum: 0),
                "hook": Schema.string("Only runs of this hook (its path in the hooks directory)."),
                "offset": Schema.integer("Read from this byte of the log.", minimum: 0),
                "max_bytes": Schema.integer("At most this many bytes (default 65536, at most 1048576).", minimum: 1),
            ], required: ["id"]
        ) { arguments, context in
            let id = try arguments.required("id")
            let maxBytes = try arguments.int("max_bytes") ?? 65536
            guard (1...(1 << 20)).contains(maxBytes) else {
                throw ChatFlowError.invalidJSON(what: "argument max_bytes of logs", reason: "must be 1 to 1048576")
            }
            let (report, run, text) = try context.engine.logReport(
                of: id, transition: try arguments.int("transition"), hook: try arguments.string("hook"), offset: try arguments.int("offset"),
                maxBytes: maxBytes)
            let header = "== \(run.hook) for #\(run.transition): " + (run.ended.map { $0.outcome.summary } ?? "running") + " =="
            return ToolOutput(structured: report, text: header + "\n" + text)
        },
        ChatFlowTool(
            "artifacts", "The names of an instance's task artifacts.", readOnly: true, properties: ["id": Schema.id], required: ["id"]
        ) { arguments, context in
            let id = try arguments.required("id")
            let names = try context.engine.artifacts(id)
            return ToolOutput(
                structured: ["instance_id": .string(id), "artifacts": .array(names.map(JSONValue.string))],
                text: names.isEmpty ? "no artifacts" : names.joined(separator: "\n"))
        },
        ChatFlowTool(
            "artifact", "One task artifact's content: text if it is UTF-8, else base64.", readOnly: true,
            properties: ["id": Schema.id, "name": Schema.string("The artifact name.")], required: ["id", "name"]
        ) { arguments, context in
            let id = try arguments.required("id"), name = try arguments.required("name")
            let bytes = try context.engine.artifact(id, name: name)
            var structured: [String: JSONValue] = ["instance_id": .string(id), "name": .string(name), "size": .number(JSONNumber(bytes.count))]
            if let text = String(validating: bytes, as: UTF8.self) {
                structured["text"] = .string(text)
                return ToolOutput(structured: .object(structured), text: text)
            }
            structured["base64"] = .string(Data(bytes).base64EncodedString())
            return ToolOutput(structured: .object(structured), text: "\(name): \(bytes.count) bytes of binary data (see base64)")
        },
        ChatFlowTool(
            "save_artifact", "Save text (or base64 bytes) as a task artifact of an instance, replacing one of the same name.",
            properties: [
                "id": Schema.id, "name": Schema.string("The artifact name (letters, digits, '.', '_', '-')."),
                "text": Schema.string("The content, as text."), "base64": Schema.string("The content, base64-encoded (instead of text)."),
            ], required: ["id", "name"]
        ) { arguments, context in
            let id = try arguments.required("id"), name = try arguments.required("name")
            let bytes: [UInt8]
            switch (try arguments.string("text"), try arguments.string("base64")) {
            case (let text?, nil): bytes = Array(text.utf8)
            case (nil, let encoded?):
                guard let data = Data(base64Encoded: encoded) else {
                    throw ChatFlowError.invalidJSON(what: "argument base64 of save_artifact", reason: "is not valid base64")
                }
                bytes = Array(data)
            default: throw ChatFlowError.invalidJSON(what: "arguments of save_artifact", reason: "give exactly one of text or base64")
            }
            try context.engine.saveArtifact(id, name: name, bytes: bytes)
            let path = context.engine.layout.tasksDirectory(id) + "/" + name
            return ToolOutput(structured: ["instance_id": .string(id), "name": .string(name), "path": .string(path)], text: path)
        },
    ]

    private static func waitSeconds(_ arguments: ToolArguments) throws(ChatFlowError) -> Duration {
        let seconds = try arguments.double("timeout_seconds") ?? ToolContext.defaultWait
        guard seconds >= 0, seconds <= ToolContext.maximumWait else {
            throw .invalidJSON(what: "argument timeout_seconds of \(arguments.tool)", reason: "must be 0 to \(Int(ToolContext.maximumWait)) seconds")
        }
        return .milliseconds(Int(seconds * 1000))
    }
}
