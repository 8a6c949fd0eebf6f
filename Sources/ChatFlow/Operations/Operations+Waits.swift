/// Waiting for changes, and claims.
extension Operations {
    static let waits: [Operation] = [
        Operation(
            "wait",
            "Block until an instance reaches a phase, a status or moves past a transition (give id and one of phase, status, after_transition), or until any instance (of feature) is in phase (give phase without id). Returns the state. Event-driven; returns at once if it already holds; an error at once if it never can (a phase the workflow lacks, an instance that finished).",
            readOnly: true,
            properties: [
                "id": ArgumentSchema.id,
                "phase": ArgumentSchema.string("Until the current phase is this."),
                "status": ArgumentSchema.string("Until the status is this.", oneOf: InstanceStatus.names),
                "after_transition": ArgumentSchema.integer("Until the instance has moved past transition N (or finished).", minimum: 0),
                "feature": ArgumentSchema.string("Without id: only this feature's instances."),
                "timeout_seconds": ArgumentSchema.timeout,
            ]
        ) { (arguments, engine) throws(ChatFlowError) -> WaitPlan<OperationResult> in
            let timeout = try arguments.timeout(arguments.waits)
            let phase = try arguments.string("phase"), status = try arguments.status("status"), after = try arguments.int("after_transition")
            let feature = try arguments.string("feature")
            let found: @Sendable (InstanceState) -> OperationResult = { state in OperationResult(document: state.report, text: state.line) }
            guard let id = try arguments.string("id") else {
                guard let phase, status == nil, after == nil else {
                    throw .invalidJSON(what: "arguments of wait", reason: "without id, give phase (and optionally feature)")
                }
                return try engine.waitPlan(anyIn: phase, feature: feature, timeout: timeout).map(found)
            }
            guard feature == nil else { throw .invalidJSON(what: "argument feature of wait", reason: "goes with the form without id") }
            let condition: WaitCondition
            switch (phase, status, after) {
            case (let phase?, nil, nil): condition = .phase(phase)
            case (nil, let status?, nil): condition = .status(status)
            case (nil, nil, let after?): condition = .afterTransition(after)
            default: throw .invalidJSON(what: "arguments of wait", reason: "give exactly one of phase, status or after_transition")
            }
            return try engine.waitPlan(for: id, until: condition, timeout: timeout).map(found)
        }
    ]

    static let claims: [Operation] = [
        Operation(
            "claim",
            "Take the oldest instance in phase that is unclaimed (or whose lease expired): exactly one caller wins. Returns instance_id, transition and the claim token; pass both to trigger when done, renew with heartbeat, give up with release.",
            properties: [
                "phase": ArgumentSchema.string("The phase to take work from."),
                "as": ArgumentSchema.string("Who claims (this agent's name)."),
                "feature": ArgumentSchema.string("Only this feature's instances."),
                "ttl": ArgumentSchema.duration("The lease (default 300 s)."),
                "wait": ArgumentSchema.boolean("Wait (event-driven) until something is claimable, up to timeout_seconds."),
                "timeout_seconds": ArgumentSchema.timeout,
            ], required: ["phase", "as"]
        ) { (arguments, engine) throws(ChatFlowError) -> WaitPlan<OperationResult> in
            let phase = try arguments.required("phase"), owner = try arguments.required("as"), feature = try arguments.string("feature")
            let ttl = try arguments.duration("ttl") ?? 300
            let plan = try engine.claimPlan(
                phase: phase, owner: owner, feature: feature, ttl: ttl, waiting: try arguments.bool("wait"), timeout: try arguments.timeout(arguments.waits))
            return plan.map { grant in
                OperationResult(
                    document: grant.json,
                    text: "claimed \(grant.instanceID) (transition \(grant.transition)) as \(owner) until \(Timestamps.text(grant.claim.expiresAt)); token \(grant.claim.token)")
            }
        },
        Operation(
            "heartbeat", "Renew a claim's lease (a `conflict` error if the token is wrong or expired).",
            properties: ["id": ArgumentSchema.id, "token": ArgumentSchema.token, "ttl": ArgumentSchema.duration("The new lease, from now (default 300 s).")],
            required: ["id", "token"]
        ) { (arguments, engine) throws(ChatFlowError) -> OperationResult in
            let id = try arguments.required("id")
            let state = try engine.heartbeat(id, token: try arguments.required("token"), ttl: try arguments.duration("ttl") ?? 300)
            let expires = state.currentEntry?.claim?.expiresAt ?? 0
            return OperationResult(
                document: ["instance_id": .string(id), "owner": .string(state.currentEntry?.claim?.owner ?? ""), "expires_at": .number(JSONNumber(expires))],
                text: "\(id): claimed until \(Timestamps.text(expires))")
        },
        Operation(
            "release", "Give a claim up, so another agent can take the work.", properties: ["id": ArgumentSchema.id, "token": ArgumentSchema.token],
            required: ["id", "token"]
        ) { (arguments, engine) throws(ChatFlowError) -> OperationResult in
            let id = try arguments.required("id")
            _ = try engine.release(id, token: try arguments.required("token"))
            return OperationResult(document: ["instance_id": .string(id), "released": true], text: "\(id): released")
        },
    ]
}
