import ChatFlow
import ChatFlowWatch
import Dispatch
import Glibc
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// `chatflow-watch --store postgres://…`: several watchers (one per host) share the hook work of
/// one database. Each transition is a row of `chatflow_dispatch`, written by the commit that
/// made it; a watcher takes rows with `FOR UPDATE SKIP LOCKED` (the earliest unfinished row of
/// an instance only, so per-instance order holds across watchers), holds a lease it renews
/// while the hooks run, and finishes fenced by owner and attempt: a watcher whose lease expired
/// (it died, or stalled past the lease) cannot mark a newer attempt's row. Notifications only
/// wake it; the table is the truth, so a notification lost while no one listened, or a server
/// restart, costs nothing but the next poll (docs/SCALE-OUT.md).
package final class PostgresWatcher: Sendable {
    package struct Settings: Sendable {
        package var lease: Double = 30
        package var poll: Double = 2
        package var listen = true
        package var once = false
        package init() {}
    }

    struct Job: Sendable {
        var instanceID: String
        var position: Int64
        var attempt: Int32
        var transition: Transition
        var stateText: [UInt8]
    }

    let store: PostgresStore
    let hooks: TransitionHooks
    let settings: Settings
    let jobs: Int
    /// `--shutdown-grace`: seconds running hooks get after the first stop request.
    let shutdownGrace: Double
    let logger: Logger
    /// This watcher's name in the dispatch table: `host:pid:random:root`, the last the CRC-32
    /// of its state directory's path (a restarted watcher is another owner, so its predecessor's
    /// leases are not mistaken for its own; host, pid and root tell it which were its own
    /// predecessor's: `releaseDeadPredecessors`).
    package let owner: String
    let host: String
    let rootTag: String
    let held = Mutex<[String: Job]>([:])
    let inFlight = Atomic<Int>(0)
    let stopping = Atomic<Bool>(false)
    /// The change source's subscription while it lasts (LISTEN, reconnecting on its own).
    let listening = Mutex<Int?>(nil)
    let wakes: AsyncStream<Void>
    let wake: AsyncStream<Void>.Continuation

    package init(store: PostgresStore, root: String, configuration: WatchConfiguration, settings: Settings, logger: Logger) throws(ChatFlowError) {
        self.store = store
        self.settings = settings
        self.logger = logger
        jobs = configuration.jobs
        shutdownGrace = configuration.shutdownGrace
        hooks = try TransitionHooks(root: root, configuration: configuration, logger: logger)
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.host = host
        rootTag = String(CRC32.checksum(Array(FileSystem.absolute(root).utf8)), radix: 16)
        owner = "\(host):\(getpid()):\(String(UInt32.random(in: 0...UInt32.max), radix: 36)):\(rootTag)"
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Takes and runs transitions until `shutdown` (or, with `once`, until none is left).
    package func run(shutdown: ShutdownSignal, onReady: @Sendable () -> Void) async throws(ChatFlowError) {
        try store.prepare()
        try register()
        try releaseDeadPredecessors()
        onReady()
        // As the file watcher: stop taking work, let running hooks finish within the grace, then
        // end them (TERM, KILL after the kill grace); a second request ends them at once. Ended
        // hooks are handed back (`execute`), never marked done.
        shutdown.onRequest { [self] in
            stopping.store(true, ordering: .relaxed)
            wake.yield()
            logger.info("stopping: letting running hooks finish", metadata: ["grace": "\(shutdownGrace)"])
            let hooks = hooks, logger = logger, grace = shutdownGrace
            DispatchQueue.global().asyncAfter(deadline: .now() + grace) {
                let count = hooks.terminateAll()
                if count > 0 {
                    logger.warning("grace period over: ending running hooks; their transitions are handed back", metadata: ["count": "\(count)"])
                }
            }
        }
        shutdown.onImmediateRequest { [self] in
            let count = hooks.terminateAll(grace: 1)
            logger.warning(
                "second stop request: ending running hooks now (TERM, then KILL after 1 s); their transitions are handed back",
                metadata: ["count": "\(count)"])
        }
        let changes = settings.listen && !settings.once ? PostgresChangeSource(location: store.connector.location, logger: logger) : nil
        await withTaskGroup(of: Void.self) { group in
            if let changes { group.addTask { await self.listen(changes) } }
            group.addTask { await self.tick() }
            wake.yield()
            for await _ in wakes {
                // Stopping: take nothing more, but keep renewing (`tick`) until what runs is recorded.
                if stopping.load(ordering: .relaxed) {
                    if inFlight.load(ordering: .relaxed) == 0 { break }
                    continue
                }
                let free = jobs - inFlight.load(ordering: .relaxed)
                var taken: [Job] = []
                if free > 0 {
                    do {
                        taken = try take(free)
                    } catch {
                        logger.warning("could not take transitions: \(error); retrying in \(settings.poll) s")
                    }
                }
                for job in taken {
                    inFlight.add(1, ordering: .relaxed)
                    group.addTask {
                        await self.execute(job)
                        self.inFlight.subtract(1, ordering: .relaxed)
                        self.wake.yield()
                    }
                }
                if settings.once, taken.isEmpty, inFlight.load(ordering: .relaxed) == 0, (try? openCount()) == 0 { break }
            }
            stopping.store(true, ordering: .relaxed)
            group.cancelAll()
            await group.waitForAll()
        }
        if let changes, let token = listening.withLock({ $0 }) { await changes.unsubscribe(token) }
        try? unregister()
    }

    // MARK: Waking

    /// Polls every `poll` seconds (expired leases are found so; and where LISTEN is unavailable,
    /// every change), renewing leases every third of the lease.
    func tick() async {
        var lastRenewal = Timestamps.unix()
        while !stopping.load(ordering: .relaxed) || inFlight.load(ordering: .relaxed) > 0 {
            try? await Task.sleep(for: .seconds(min(settings.poll, settings.lease / 3)))
            if Task.isCancelled { return }
            if Timestamps.unix() - lastRenewal >= settings.lease / 3 {
                do {
                    try renew()
                    lastRenewal = Timestamps.unix()
                } catch {
                    logger.warning("could not renew leases: \(error)")
                }
            }
            wake.yield()
        }
    }

    /// Subscribes to the store's notifications (`PostgresChangeSource`: its own connection,
    /// reconnects with backoff, `.rescanAll` after each): every report wakes the taker, which
    /// reads the table, so what was committed while disconnected is caught up. A first
    /// connection that fails is retried here, polling meanwhile.
    func listen(_ changes: PostgresChangeSource) async {
        var backoff = 0.1
        while !stopping.load(ordering: .relaxed), !Task.isCancelled {
            do throws(WatchError) {
                let token = try await changes.subscribe { _ in self.wake.yield() }
                listening.withLock { $0 = token }
                logger.debug("listening on \(PostgresSchema.channel)")
                wake.yield()   // caught up after connecting
                return
            } catch {
                logger.warning("cannot LISTEN: \(error); polling every \(settings.poll) s, retrying in \(backoff) s")
            }
            try? await Task.sleep(for: .seconds(backoff))
            backoff = min(backoff * 2, 5)
        }
    }
}
