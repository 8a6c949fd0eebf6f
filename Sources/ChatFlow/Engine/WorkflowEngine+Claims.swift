import Glibc

/// What `claim` hands the winner.
public struct ClaimGrant: Sendable, Hashable {
    public var instanceID: String
    /// The transition claimed (what `--expect-transition` takes).
    public var transition: Int
    public var claim: Claim

    public var json: JSONValue {
        [
            "instance_id": .string(instanceID), "transition": .number(JSONNumber(transition)), "owner": .string(claim.owner),
            "token": .string(claim.token), "expires_at": .number(JSONNumber(claim.expiresAt)),
        ]
    }
}

/// Claims with leases: an agent takes the work of an open phase, proves it with a token, renews
/// the lease while it works, and the next transition clears it. Everything under the instance's
/// lock, so concurrent claimers get exactly one winner.
extension WorkflowEngine {
    /// Takes the oldest instance in `phase` (of `feature`) that is unclaimed or whose lease has
    /// expired; `nil` when there is none.
    public func claim(phase: String, owner: String, feature: String? = nil, ttl: Double = 300) throws(ChatFlowError) -> ClaimGrant? {
        try Identifiers.validateName(phase, kind: .phaseName)
        guard !owner.isEmpty, owner.count <= 200, !owner.unicodeScalars.contains(where: Terminal.isUnsafe) else {
            throw .invalidIdentifier(
                kind: .featureID, value: owner,
                reason: "an owner is 1 to 200 characters on one line, without control or bidirectional formatting characters")
        }
        guard ttl > 0, ttl.isFinite else { throw .invalidJSON(what: "--ttl", reason: "must be a positive number of seconds") }
        let now = Timestamps.unix()
        let candidates = try claimable(phase: phase, feature: feature, at: now)
        for candidate in candidates {
            let grant = try modifyIfOpen(candidate.instanceID) { (state) throws(ChatFlowError) -> ClaimGrant? in
                // Checked again under the lock: another claimer may have won since the scan.
                let now = Timestamps.unix()
                guard state.currentPhase == phase, var entry = state.currentEntry,
                    entry.claim.map({ !$0.isLive(at: now) }) ?? true
                else { return nil }
                let claim = Claim(owner: owner, token: WorkflowEngine.newToken(), expiresAt: now + ttl)
                entry.claim = claim
                state.currentEntry = entry
                return ClaimGrant(instanceID: state.instanceID, transition: state.lastTransition, claim: claim)
            }
            if let grant { return grant }
        }
        return nil
    }

    /// Instances in `phase` with no live claim, oldest phase entry first, read fresh (a cached
    /// state could hide an instance that has just entered the phase).
    public func claimable(phase: String, feature: String? = nil, at time: Double? = nil) throws(ChatFlowError) -> [InstanceState] {
        let now = time ?? Timestamps.unix()
        invalidateAll()
        let states = try list(feature: feature, phase: phase, unreadable: { _, _ in })
        return states.filter { state in
            guard !state.status.isFinished, let entry = state.currentEntry else { return false }
            return entry.claim.map { !$0.isLive(at: now) } ?? true
        }.sorted { ($0.currentEntry?.startedAt ?? 0, $0.instanceID) < ($1.currentEntry?.startedAt ?? 0, $1.instanceID) }
    }

    /// Renews a live claim for `ttl` seconds from now.
    @discardableResult
    public func heartbeat(_ id: String, token: String, ttl: Double = 300) throws(ChatFlowError) -> InstanceState {
        guard ttl > 0, ttl.isFinite else { throw .invalidJSON(what: "--ttl", reason: "must be a positive number of seconds") }
        return try modifyClaim(id, token: token) { claim in claim.expiresAt = Timestamps.unix() + ttl }
    }

    /// Gives a live claim up; the instance is claimable again.
    @discardableResult
    public func release(_ id: String, token: String) throws(ChatFlowError) -> InstanceState {
        try modifyClaim(id, token: token, release: true) { _ in }
    }

    /// Refuses a change of a claimed instance without its token (unless `force`), and any change
    /// with a wrong or expired token.
    static func checkClaim(_ state: InstanceState, token: String?, force: Bool) throws(ChatFlowError) {
        let now = Timestamps.unix()
        let live = state.currentEntry?.claim.flatMap { $0.isLive(at: now) ? $0 : nil }
        if let token {
            guard let live, live.token == token else {
                throw .claimMismatch(
                    instanceID: state.instanceID,
                    reason: live == nil ? "the claim of that token has expired or was released" : "the token is not the claim's (claimed by \(Terminal.printable(live!.owner)))")
            }
            return
        }
        if let live, !force {
            throw .claimMismatch(
                instanceID: state.instanceID, reason: "claimed by \(Terminal.printable(live.owner)) until \(Timestamps.text(live.expiresAt)); pass its --token, or --force")
        }
    }

    private func modifyClaim(
        _ id: String, token: String, release: Bool = false, _ change: (inout Claim) -> Void
    ) throws(ChatFlowError) -> InstanceState {
        try Identifiers.validateInstanceID(id)
        return try modify(id) { (state, _) throws(ChatFlowError) in
            try WorkflowEngine.checkClaim(state, token: token, force: false)
            var entry = state.currentEntry!
            var claim = entry.claim!
            change(&claim)
            entry.claim = release ? nil : claim
            state.currentEntry = entry
        }
    }

    /// `modify` for a claim attempt: `nil` (and nothing written) when `change` declines.
    private func modifyIfOpen(
        _ id: String, _ change: (inout InstanceState) throws(ChatFlowError) -> ClaimGrant?
    ) throws(ChatFlowError) -> ClaimGrant? {
        var grant: ClaimGrant?
        do {
            _ = try modify(id) { (state, _) throws(ChatFlowError) in
                grant = try change(&state)
                if grant == nil { throw .claimMismatch(instanceID: id, reason: "not claimable") }
            }
        } catch {
            if case .claimMismatch = error, grant == nil { return nil }
            if case .instanceFinished = error { return nil }
            throw error
        }
        return grant
    }

    /// 128 random bits as hex.
    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.padded(generator.next(), width: 16) + Hex.padded(generator.next(), width: 16)
    }
}
