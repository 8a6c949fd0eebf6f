import ChatFlow

/// What `WorkflowEngine.wait` waits for.
public enum WaitCondition: Sendable, Hashable {
    /// The instance's current phase is this.
    case phase(String)
    case status(InstanceStatus)
    /// The instance has moved past transition N (or finished).
    case afterTransition(Int)

    public func holds(for state: InstanceState) -> Bool {
        switch self {
        case .phase(let phase): state.currentPhase == phase
        case .status(let status): state.status == status
        case .afterTransition(let transition): state.lastTransition > transition || state.status.isFinished
        }
    }
}

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
    /// for an unknown id, `WaitError.timedOut` after `timeout`. The library form of `chatflow wait`.
    public func wait(
        for id: String, until condition: WaitCondition, timeout: Duration? = nil, changes: (any InstanceChangeSource)? = nil
    ) async throws -> InstanceState {
        enum Tick: Sendable { case changed, deadline }
        let source = changes ?? FileChangeSource(layout: layout)
        let (stream, continuation) = AsyncStream.makeStream(of: Tick.self, bufferingPolicy: .bufferingNewest(4))
        let token = try await source.subscribe { change in
            switch change {
            case .instance(let changed) where changed == id: continuation.yield(.changed)
            case .rescanAll: continuation.yield(.changed)
            default: break
            }
        }
        let timer = timeout.map { timeout in
            Task {
                try? await Task.sleep(for: timeout)
                continuation.yield(.deadline)
            }
        }
        func finish() async {
            timer?.cancel()
            continuation.finish()
            await source.unsubscribe(token)
        }
        do {
            var iterator = stream.makeAsyncIterator()
            while true {
                guard let state = try freshStatus(id) else { throw ChatFlowError.notFound(instanceID: id, root: root) }
                if condition.holds(for: state) {
                    await finish()
                    return state
                }
                let tick = await iterator.next()
                if tick == .deadline || tick == nil { throw WaitError.timedOut(after: timeout ?? .zero) }
            }
        } catch {
            await finish()
            throw error
        }
    }
}
