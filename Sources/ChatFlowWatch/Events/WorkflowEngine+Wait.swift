import ChatFlow

/// What wakes a wait.
private enum WaitTick: Sendable { case changed(InstanceChange), wake, deadline }

/// Why a wait ended without its condition.
public enum WaitError: Error, Sendable, CustomStringConvertible {
    case timedOut(after: Duration)
    case failed(String)

    public var description: String {
        switch self {
        case .timedOut(let after): "the condition did not hold within \(after)"
        case .failed(let reason): reason
        }
    }
}

extension WorkflowEngine {
    /// Waits until `condition` holds for instance `id` and returns its state: woken by
    /// `changes` (by default inotify on this engine's `instances/`), checked again after the
    /// subscription is armed so a change in between is not missed. Throws `ChatFlowError.notFound`
    /// for an unknown id, `WaitError.timedOut` after `timeout`, and at once what
    /// `WaitCondition.impossibility` names when the condition can never hold (a phase the
    /// instance's workflow lacks, an instance that finished without it). The library form of
    /// `chatflow wait`.
    public func wait(
        for id: String, until condition: WaitCondition, timeout: Duration? = nil, changes: (any InstanceChangeSource)? = nil
    ) async throws -> InstanceState {
        try Identifiers.validateInstanceID(id)
        return try await untilChange(timeout: timeout, changes: changes) { (change) throws(ChatFlowError) -> InstanceState? in
            if case .instance(let other) = change, other != id { return nil }
            guard let state = try freshStatus(id) else { throw .notFound(instanceID: id, root: storeDescription) }
            if condition.holds(for: state) { return state }
            if let impossible = condition.impossibility(for: state) { throw impossible }
            return nil
        }
    }

    /// Waits until any instance (of `feature`) is in `phase` and returns it; one already there
    /// counts. A phase no instance's workflow has yet is waited for too (see
    /// `unknownPhaseWarning`). The library form of `chatflow wait --phase P`.
    public func waitForAny(
        phase: String, feature: String? = nil, timeout: Duration? = nil, changes: (any InstanceChangeSource)? = nil
    ) async throws -> InstanceState {
        try Identifiers.validateName(phase, kind: .phaseName)
        if let feature { try Identifiers.validateName(feature, kind: .featureID) }
        return try await untilChange(timeout: timeout, changes: changes) { (change) throws(ChatFlowError) -> InstanceState? in
            guard case .instance(let id) = change else {
                // Armed (or events were lost): look at every instance.
                invalidateAll()
                return try list(feature: feature, phase: phase, unreadable: { _, _ in }).first
            }
            guard let state = try? freshStatus(id), state.currentPhase == phase, feature == nil || state.featureID == feature
            else { return nil }
            return state
        }
    }

    /// `claim`, waiting (event-driven) until something in `phase` is claimable. A lease that
    /// expires changes no file, so it also looks again every `recheck`.
    public func claim(
        phase: String, owner: String, feature: String? = nil, ttl: Double = 300, waitingUpTo timeout: Duration?,
        recheck: Duration = .seconds(5), changes: (any InstanceChangeSource)? = nil
    ) async throws -> ClaimGrant {
        try await untilChange(timeout: timeout, wakeEvery: recheck, changes: changes) { (_) throws(ChatFlowError) -> ClaimGrant? in
            try claim(phase: phase, owner: owner, feature: feature, ttl: ttl)
        }
    }

    /// Calls `check` once the subscription to `changes` is armed (with `nil`), then with each
    /// change (`nil` again after every `wakeEvery`), until it returns a value; throws
    /// `WaitError.timedOut` once `timeout` has passed.
    func untilChange<Value: Sendable>(
        timeout: Duration?, wakeEvery: Duration? = nil, changes: (any InstanceChangeSource)?,
        check: (InstanceChange?) throws(ChatFlowError) -> Value?
    ) async throws -> Value {
        let source = changes ?? FileChangeSource(layout: layout)
        let (stream, continuation) = AsyncStream.makeStream(of: WaitTick.self)
        let token = try await source.subscribe { continuation.yield(.changed($0)) }
        let timers = [
            timeout.map { timeout in
                Task {
                    try? await Task.sleep(for: timeout)
                    continuation.yield(.deadline)
                }
            },
            wakeEvery.map { interval in
                Task {
                    while (try? await Task.sleep(for: interval)) != nil { continuation.yield(.wake) }
                }
            },
        ].compactMap { $0 }
        defer {
            for timer in timers { timer.cancel() }
            continuation.finish()
        }
        do {
            if let value = try check(nil) {
                await source.unsubscribe(token)
                return value
            }
            for await tick in stream {
                let value: Value?
                switch tick {
                case .deadline: throw WaitError.timedOut(after: timeout ?? .zero)
                case .wake: value = try check(nil)
                case .changed(let change): value = try check(change)
                }
                if let value {
                    await source.unsubscribe(token)
                    return value
                }
            }
            throw CancellationError()
        } catch {
            await source.unsubscribe(token)
            throw error
        }
    }
}
