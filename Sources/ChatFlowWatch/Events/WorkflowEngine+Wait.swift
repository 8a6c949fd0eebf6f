import ChatFlow

/// What wakes an awaited wait.
private enum WaitTick: Sendable { case changed(InstanceChange), wake, deadline }

extension WaitPlan {
    /// Awaits the plan on `changes`, a source shared by every waiter of the process (the
    /// servers; the command blocks on its own descriptor instead, `run(watching:)`). Checked
    /// once the subscription is armed, so a change in between is not missed. Throws what the
    /// check throws, `ChatFlowError.timedOut` once the timeout has passed, and `WatchError`
    /// when the source cannot be watched.
    public func run(changes source: any InstanceChangeSource) async throws -> Value {
        if let immediate { return immediate }
        let (stream, continuation) = AsyncStream.makeStream(of: WaitTick.self)
        let token = try await source.subscribe { continuation.yield(.changed($0)) }
        let timers = [
            timeout.map { seconds in
                Task {
                    try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                    continuation.yield(.deadline)
                }
            },
            recheckEvery.map { seconds in
                Task {
                    while (try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))) != nil { continuation.yield(.wake) }
                }
            },
        ].compactMap { $0 }
        defer {
            for timer in timers { timer.cancel() }
            continuation.finish()
        }
        do {
            if let value = try check(.any) {
                await source.unsubscribe(token)
                return value
            }
            for await tick in stream {
                let value: Value?
                switch tick {
                case .deadline: throw timedOut
                case .wake, .changed(.rescanAll): value = try check(.any)
                case .changed(.instance(let id)): value = try check(.instance(id))
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

/// The library forms of `chatflow wait` and `claim --wait`: the engine's wait plans, awaited.
extension WorkflowEngine {
    /// Waits until `condition` holds for instance `id` and returns its state (see
    /// `waitPlan(for:until:timeout:)`); `changes` defaults to inotify on this engine's `instances/`.
    public func wait(
        for id: String, until condition: WaitCondition, timeout: Duration? = nil, changes: (any InstanceChangeSource)? = nil
    ) async throws -> InstanceState {
        try await waitPlan(for: id, until: condition, timeout: timeout.map(\.seconds)).run(changes: changes ?? FileChangeSource(layout: layout))
    }

    /// Waits until any instance (of `feature`) is in `phase` and returns it; one already there counts.
    public func waitForAny(
        phase: String, feature: String? = nil, timeout: Duration? = nil, changes: (any InstanceChangeSource)? = nil
    ) async throws -> InstanceState {
        try await waitPlan(anyIn: phase, feature: feature, timeout: timeout.map(\.seconds)).run(changes: changes ?? FileChangeSource(layout: layout))
    }

    /// `claim`, waiting (event-driven) until something in `phase` is claimable.
    public func claim(
        phase: String, owner: String, feature: String? = nil, ttl: Double = 300, waitingUpTo timeout: Duration?,
        recheck: Duration = .seconds(5), changes: (any InstanceChangeSource)? = nil
    ) async throws -> ClaimGrant {
        try await claimPlan(
            phase: phase, owner: owner, feature: feature, ttl: ttl, waiting: true, timeout: timeout.map(\.seconds), recheck: recheck.seconds
        ).run(changes: changes ?? FileChangeSource(layout: layout))
    }
}

extension Duration {
    /// In seconds, as a `Double`.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension WatchError: CodedError {
    public var code: String { "io" }
    public var message: String { description }
}
