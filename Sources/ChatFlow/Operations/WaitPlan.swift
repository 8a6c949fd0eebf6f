/// What a wait waits for, apart from what wakes it: checked once armed, then at each change
/// (and every `recheckEvery`, for what changes no file, such as a lease running out), until
/// `check` returns a value or `timeout` passes. One plan per wait (`wait`, `claim --wait`); two
/// drivers: `run(watching:)` blocks a thread on a raw inotify descriptor (the command, which
/// starts no threads), and the servers' `run(changes:)` awaits a change source shared by every
/// waiter of the process (ChatFlowWatch).
public struct WaitPlan<Value: Sendable>: Sendable {
    /// Set when no wait is needed.
    public let immediate: Value?
    /// Seconds; nil waits for ever.
    public let timeout: Double?
    public let recheckEvery: Double?
    /// The condition, in words, for the timeout's error.
    public let condition: String
    public let check: @Sendable (WaitChange) throws(ChatFlowError) -> Value?
    /// Something the waiter should be told before waiting (a phase no workflow has yet).
    public var warning: String?

    public init(
        timeout: Double?, recheckEvery: Double? = nil, condition: String, check: @escaping @Sendable (WaitChange) throws(ChatFlowError) -> Value?
    ) {
        immediate = nil
        (self.timeout, self.recheckEvery, self.condition, self.check) = (timeout, recheckEvery, condition, check)
    }

    private init(immediate: Value) {
        self.immediate = immediate
        (timeout, recheckEvery, condition, check) = (nil, nil, "", { _ in immediate })
    }

    /// A call that needed no wait.
    public static func done(_ value: Value) -> WaitPlan { WaitPlan(immediate: value) }

    /// The same wait, its value transformed.
    public func map<Other: Sendable>(_ transform: @escaping @Sendable (Value) -> Other) -> WaitPlan<Other> {
        if let immediate { return .done(transform(immediate)) }
        let check = check
        var plan = WaitPlan<Other>(timeout: timeout, recheckEvery: recheckEvery, condition: condition) { (change) throws(ChatFlowError) -> Other? in
            try check(change).map(transform)
        }
        plan.warning = warning
        return plan
    }

    public var timedOut: ChatFlowError { .timedOut(seconds: timeout ?? 0, what: condition) }

    /// Blocks until the plan yields; `watching` is called (and so armed) before the first
    /// check, only if a wait is needed.
    package func run(watching: () throws(ChatFlowError) -> any InstanceChangeWaiting) throws(ChatFlowError) -> Value {
        if let immediate { return immediate }
        let watch = try watching()
        let deadline = timeout.map { Timestamps.unix() + $0 }
        if let value = try check(.any) { return value }
        while true {
            guard let changed = try watch.nextChange(deadline: deadline, wakeAtLeastEvery: recheckEvery) else { throw timedOut }
            if changed.isEmpty {
                if let value = try check(.any) { return value }
            }
            for id in changed {
                if let value = try check(.instance(id)) { return value }
            }
        }
    }
}

/// What a wait's check is told: armed, or anything may have changed; or this instance changed.
public enum WaitChange: Sendable, Equatable {
    case any
    case instance(String)
}

/// How long a surface lets a wait last: the command for ever unless told; the servers bounded,
/// well before the common client request timeout (60 s in the TypeScript and Python MCP SDKs).
public struct WaitBounds: Sendable {
    public var defaultSeconds: Double?
    public var maximumSeconds: Double?

    public static let unbounded = WaitBounds(defaultSeconds: nil, maximumSeconds: nil)
    public static let request = WaitBounds(defaultSeconds: 25, maximumSeconds: 55)
}
