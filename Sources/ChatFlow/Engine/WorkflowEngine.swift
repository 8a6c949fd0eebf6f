import Glibc
import Synchronization

/// The ChatFlow engine: records workflow state under one state directory, shared safely by
/// every thread, task and process that uses it. It never runs tasks.
///
/// Each change is a read-modify-write under an exclusive `flock` on `.locks/<id>.lock`, reading
/// fresh from disk; reads are served from a cache with a 30 s TTL that this process's own writes
/// and `invalidate` keep current.
public final class WorkflowEngine: Sendable {
    /// Default TTL of the read cache, as in the original design.
    public static let defaultCacheTTL = 30.0

    /// Where state lives (the store seam) and this engine's cache of it; replaced whole by `use(root:)`.
    final class Backend: Sendable {
        let layout: Layout
        let store: any WorkflowStore
        let cache: StateCache
        init(root: String, ttl: Double, store: (any WorkflowStore)? = nil) {
            layout = Layout(root: root)
            self.store = store ?? StateStore(layout: layout)
            cache = StateCache(timeToLive: ttl)
        }
    }

    private let backendStorage: Mutex<Backend?>
    private let cacheTTL: Double
    /// A store other than the files under the root (a database), kept by `use(root:)`.
    private let storeOverride: (any WorkflowStore)?

    /// An engine on `root` (the state directory itself, e.g. `./.chatflow`).
    public init(root: String, cacheTTL: Double = WorkflowEngine.defaultCacheTTL) {
        self.cacheTTL = cacheTTL
        storeOverride = nil
        backendStorage = Mutex(Backend(root: root, ttl: cacheTTL))
    }

    /// An engine whose instances live in `store` (e.g. `ChatFlowPostgres`'s); `root` still holds
    /// what stays on this host: hooks, hook runs and their logs, artifacts.
    package init(root: String, store: any WorkflowStore, cacheTTL: Double = WorkflowEngine.defaultCacheTTL) {
        self.cacheTTL = cacheTTL
        storeOverride = store
        backendStorage = Mutex(Backend(root: root, ttl: cacheTTL, store: store))
    }

    /// The store's own description (the file store's root, or a database URL without password).
    public var storeDescription: String { backend.store.description }

    /// An engine whose root is resolved at first use: `$CHATFLOW_ROOT` or `./.chatflow`.
    init(lazyWithTTL cacheTTL: Double) {
        self.cacheTTL = cacheTTL
        storeOverride = nil
        backendStorage = Mutex(nil)
    }

    var backend: Backend {
        backendStorage.withLock { backend in
            if let backend { return backend }
            let created = Backend(root: WorkflowEngine.defaultRoot(), ttl: cacheTTL)
            backend = created
            return created
        }
    }

    /// `$CHATFLOW_ROOT` when set, else the nearest existing `.chatflow` from the current
    /// directory upward, else `./.chatflow` (see `StateDirectory`).
    public static func defaultRoot() -> String { StateDirectory.zeroConfigRoot() }

    /// Switches this engine to another state directory and empties the cache
    /// (the original's `chatflow.init(path)`).
    public func use(root: String) {
        let created = Backend(root: root, ttl: cacheTTL, store: storeOverride)
        backendStorage.withLock { $0 = created }
    }

    /// Where state lives.
    public var layout: Layout { backend.layout }

    /// The absolute state directory.
    public var root: String { layout.root }

    /// Creates the state directory layout (done implicitly by the first write).
    public func prepare() throws(ChatFlowError) {
        try backend.store.prepare()
    }

    // MARK: Writes

    /// Starts an instance in the schema's first phase and adds it to the feature's link.
    /// `context` becomes `variables`. Returns the new instance id.
    /// The original's `start_workflow_instance`.
    public func start(
        schema: WorkflowSchema, featureID: String, context: [String: JSONValue] = [:],
        meta: [String: JSONValue] = [:]
    ) throws(ChatFlowError) -> String {
        try schema.validate()
        try Identifiers.validateName(featureID, kind: .featureID)
        try StoredLimits.check(context, what: "context")
        try StoredLimits.check(meta, what: "meta")
        let backend = backend
        let store = backend.store
        try store.prepare()
        while true {
            let id = Identifiers.newInstanceID()
            let created = try store.withInstanceLock(id) { () throws(ChatFlowError) -> Bool in
                guard !store.exists(id) else { return false }
                let now = Timestamps.unix()
                let first = schema.phases[0]
                var state = InstanceState(
                    instanceID: id, featureID: featureID, workflowName: schema.name, schema: schema,
                    currentPhase: first.name, status: .created, variables: context, meta: meta,
                    createdAt: now, updatedAt: now, historyLength: 1, historyBytes: 0,
                    currentEntry: HistoryEntry(phase: first.name, task: first.task, startedAt: now))
                try store.addToFeature(featureID, id: id)
                try store.commit(&state, closing: [], isNew: true)
                backend.cache.store(state)
                return true
            }
            if created { return id }
        }
    }

    /// Closes the current phase with `data` as its snapshot, merges `data` (when an object) into
    /// `variables` and `meta` into `meta` (top-level keys, new values win), and enters the next
    /// phase, or `target` when given. At the last phase without a target, completes the instance.
    /// With `expectedTransition`, triggers only if the last phase entered is still that history
    /// index (compare-and-set: a hook re-run after a crash cannot advance the instance twice).
    /// The original's `trigger_next_step`.
    @discardableResult
    public func trigger(
        _ id: String, data: JSONValue = .emptyObject, meta: [String: JSONValue] = [:], to target: String? = nil,
        expectedTransition: Int? = nil, token: String? = nil, force: Bool = false
    ) throws(ChatFlowError) -> InstanceState {
        try Identifiers.validateInstanceID(id)
        if let target { try Identifiers.validateName(target, kind: .phaseName) }
        try StoredLimits.check(data, what: "trigger data")
        try StoredLimits.check(meta, what: "meta")
        return try modify(id) { (state, closed) throws(ChatFlowError) in
            try WorkflowEngine.checkClaim(state, token: token, force: force)
            if let expectedTransition, expectedTransition != state.lastTransition {
                throw .transitionMismatch(instanceID: id, expected: expectedTransition, actual: state.lastTransition)
            }
            let nextIndex: Int?
            if let target {
                guard let index = state.schema.index(of: target) else {
                    throw .unknownPhase(phase: target, instanceID: id, known: state.schema.phaseNames)
                }
                nextIndex = index
            } else {
                let index = state.schema.index(of: state.currentPhase)!
                nextIndex = index + 1 < state.schema.phases.count ? index + 1 : nil
            }
            let now = Timestamps.unix()
            var closing = state.currentEntry!
            closing.endedAt = now
            closing.claim = nil
            closing.status = .completed
            closing.triggerDataSnapshot = data
            closed.append(closing)
            if let members = data.objectValue { state.variables.merge(members) { _, new in new } }
            state.meta.merge(meta) { _, new in new }
            state.updatedAt = now
            if let nextIndex {
                let phase = state.schema.phases[nextIndex]
                state.previousPhase = state.currentPhase
                state.currentPhase = phase.name
                state.currentEntry = HistoryEntry(phase: phase.name, task: phase.task, startedAt: now)
                state.historyLength += 1
                state.status = .running
            } else {
                state.currentEntry = nil
                state.status = .completed
            }
        }
    }

    /// Marks the instance failed, closing its current phase with `{"reason": …}` as the snapshot.
    @discardableResult
    public func fail(
        _ id: String, reason: String? = nil, meta: [String: JSONValue] = [:], token: String? = nil, force: Bool = false
    ) throws(ChatFlowError) -> InstanceState {
        try Identifiers.validateInstanceID(id)
        try StoredLimits.check(meta, what: "meta")
        return try modify(id) { (state, closed) throws(ChatFlowError) in
            try WorkflowEngine.checkClaim(state, token: token, force: force)
            let now = Timestamps.unix()
            var closing = state.currentEntry!
            closing.endedAt = now
            closing.status = .failed
            closing.claim = nil
            closing.triggerDataSnapshot = ["reason": JSONValue(reason)]
            closed.append(closing)
            state.meta.merge(meta) { _, new in new }
            state.updatedAt = now
            state.currentEntry = nil
            state.status = .failed
        }
    }

    /// The read-modify-write every change goes through (also for claims, in `+Claims`): lock, read
    /// fresh from disk (never the cache, recovering a state a crash left behind its history), refuse
    /// finished instances, change (appending the entries it closes), commit, refresh the cache.
    func modify(
        _ id: String, _ change: (inout InstanceState, inout [HistoryEntry]) throws(ChatFlowError) -> Void
    ) throws(ChatFlowError) -> InstanceState {
        let backend = backend
        let store = backend.store
        let changed = try store.modify(id) { (state) throws(ChatFlowError) -> [HistoryEntry] in
            var closed = WorkflowEngine.adoptForeignEntries(&state)
            guard !state.status.isFinished else { throw .instanceFinished(instanceID: id, status: state.status) }
            try change(&state, &closed)
            return closed
        } committed: { state in
            backend.cache.store(state)
        }
        guard let changed else { throw .notFound(instanceID: id, root: backend.store.description) }
        return changed
    }

    /// Takes the entries another writer left in the state file (in order, to be committed before
    /// anything new), so the next commit writes this format and keeps every entry.
    private static func adoptForeignEntries(_ state: inout InstanceState) -> [HistoryEntry] {
        guard state.foreignLayout != nil else { return [] }
        let entries = state.foreignEntries
        state.foreignEntries = []
        state.foreignLayout = nil
        return entries
    }

    /// Rewrites an instance left in another writer's layout in this format, keeping every
    /// entry; `false` when it already was (or is gone). `doctor --fix` and the watcher use it.
    @discardableResult
    public func migrate(_ id: String) throws(ChatFlowError) -> Bool {
        try Identifiers.validateInstanceID(id)
        let backend = backend
        let store = backend.store
        return try store.withInstanceLock(id) { () throws(ChatFlowError) -> Bool in
            guard var state = try store.readLocked(id, skipping: [])?.state, state.foreignLayout != nil else { return false }
            let closed = WorkflowEngine.adoptForeignEntries(&state)
            try store.commit(&state, closing: closed, isNew: false)
            backend.cache.store(state)
            return true
        }
    }

    // MARK: Cache

    /// Drops one cached state, so the next read goes to disk.
    public func invalidate(_ id: String) { backend.cache.invalidate(id) }

    /// Drops every cached state.
    public func invalidateAll() { backend.cache.invalidateAll() }
}

func getenvString(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}
