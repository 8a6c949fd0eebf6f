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

    private struct Job: Sendable {
        var instanceID: String
        var position: Int64
        var attempt: Int32
        var transition: Transition
        var stateText: [UInt8]
    }

    private let store: PostgresStore
    private let hooks: TransitionHooks
    private let settings: Settings
    private let jobs: Int
    /// `--shutdown-grace`: seconds running hooks get after the first stop request.
    private let shutdownGrace: Double
    private let logger: Logger
    /// This watcher's name in the dispatch table: `host:pid:random:root`, the last the CRC-32
    /// of its state directory's path (a restarted watcher is another owner, so its predecessor's
    /// leases are not mistaken for its own; host, pid and root tell it which were its own
    /// predecessor's: `releaseDeadPredecessors`).
    package let owner: String
    private let host: String
    private let rootTag: String
    private let held = Mutex<[String: Job]>([:])
    private let inFlight = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    /// The change source's subscription while it lasts (LISTEN, reconnecting on its own).
    private let listening = Mutex<Int?>(nil)
    private let wakes: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

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

    // MARK: The dispatch table

    /// Marks up to `limit` transitions running for this owner: pending ones, and running ones
    /// whose lease expired (their holder died or stalled; never this watcher's own, which it still
    /// holds, say while a store outage keeps it from recording them), each the earliest unfinished
    /// transition of its instance. One statement: the rows stay locked until it commits.
    private func take(_ limit: Int) throws(ChatFlowError) -> [Job] {
        let rows = try store.rows(
            """
            WITH candidates AS (
                SELECT d.instance_id, d.position FROM chatflow_dispatch d
                WHERE d.status <> 'done' AND (d.status = 'pending' OR (d.lease_until < now() AND d.owner IS DISTINCT FROM \(owner)))
                  AND NOT EXISTS (
                      SELECT 1 FROM chatflow_dispatch e
                      WHERE e.instance_id = d.instance_id AND e.position < d.position AND e.status <> 'done')
                ORDER BY d.change_seq
                LIMIT \(Int64(limit))
                FOR UPDATE OF d SKIP LOCKED)
            UPDATE chatflow_dispatch d
            SET status = 'running', owner = \(owner), attempt = d.attempt + 1,
                lease_until = now() + make_interval(secs => \(settings.lease))
            FROM candidates c WHERE d.instance_id = c.instance_id AND d.position = c.position
            RETURNING d.instance_id, d.position, d.attempt, d.transition, d.state_text
            """, "take transitions")
        var taken: [Job] = []
        for row in rows {
            let (id, position, attempt, text, state) = try store.decode(row, (String, Int64, Int32, String, String).self, "take transitions")
            guard let transition = PostgresTransitions.transition(text) else {
                logger.error("transition \(id) #\(position) is not readable; marked done without hooks: \(text)")
                try finish(id, position, attempt, succeeded: false)
                continue
            }
            let job = Job(instanceID: id, position: position, attempt: attempt, transition: transition, stateText: Array(state.utf8))
            if attempt > 1 {
                logger.notice("took over \(id) #\(position) (attempt \(attempt)): the previous holder's lease expired")
            }
            held.withLock { $0[key(job)] = job }
            taken.append(job)
        }
        return taken
    }

    private func key(_ job: Job) -> String { "\(job.instanceID) \(job.position)" }

    private func execute(_ job: Job) async {
        let started = Timestamps.unix()
        let completed = await hooks.run(job.transition, stateText: job.stateText, stopping: { self.stopping.load(ordering: .relaxed) })
        // Held, its lease renewed, until it is recorded: a store outage now must not let the lease
        // lapse and the transition run again. Retried with backoff; when stopping, for the grace.
        var backoff = 0.1
        let giveUp = Timestamps.unix() + max(shutdownGrace, settings.lease)
        while !record(job, started: started, completed: completed) {
            if stopping.load(ordering: .relaxed) && Timestamps.unix() > giveUp {
                logger.warning("gave up recording \(job.instanceID) #\(job.position) while stopping; another watcher runs it again once the lease ends")
                break
            }
            await PostgresWatcher.pause(backoff)
            backoff = min(backoff * 2, 5)
        }
        held.withLock { _ = $0.removeValue(forKey: key(job)) }
    }

    /// A wait that a cancelled task still waits out (`Task.sleep` would return at once).
    private static func pause(_ seconds: Double) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { continuation.resume() }
        }
    }

    /// Records how the job's hooks ended and finishes (or hands back) its row; `false` when the
    /// store could not be reached (the caller retries).
    private func record(_ job: Job, started: Double, completed: Bool) -> Bool {
        do {
            _ = try store.rows(
                """
                INSERT INTO chatflow_hook_runs (instance_id, position, hook, attempt, owner, started_at, ended_at, outcome, succeeded)
                VALUES (\(job.instanceID), \(job.position), \(hooks.hookNames(for: job.transition).joined(separator: ",")), \(job.attempt),
                    \(owner), \(started), \(Timestamps.unix()), \(completed ? "ran" : "interrupted"), \(completed))
                ON CONFLICT DO NOTHING
                """, "record the runs of \(job.instanceID)")
            if completed {
                try finish(job.instanceID, job.position, job.attempt, succeeded: true)
            } else {
                // Shutdown ended it: hand it back at once rather than at the lease's end.
                _ = try store.rows(
                    """
                    UPDATE chatflow_dispatch SET status = 'pending', owner = NULL, lease_until = NULL
                    WHERE instance_id = \(job.instanceID) AND position = \(job.position) AND owner = \(owner)
                      AND attempt = \(job.attempt) AND status = 'running'
                    """, "hand back \(job.instanceID)")
            }
            return true
        } catch {
            logger.warning("could not record \(job.instanceID) #\(job.position): \(error); retrying (its lease is renewed meanwhile)")
            return false
        }
    }

    /// Done, only if this owner's attempt still holds the row: a late finisher changes nothing.
    private func finish(_ id: String, _ position: Int64, _ attempt: Int32, succeeded: Bool) throws(ChatFlowError) {
        let rows = try store.rows(
            """
            UPDATE chatflow_dispatch SET status = 'done', finished_at = now(), succeeded = \(succeeded), lease_until = NULL
            WHERE instance_id = \(id) AND position = \(position) AND owner = \(owner) AND attempt = \(attempt) AND status = 'running'
            RETURNING 1
            """, "finish \(id)")
        if rows.isEmpty {
            logger.warning("\(id) #\(position): the lease of attempt \(attempt) was lost (another watcher took it over); its record is left to the newer attempt")
        }
    }

    private func openCount() throws(ChatFlowError) -> Int64 {
        let rows = try store.rows("SELECT count(*) FROM chatflow_dispatch WHERE status <> 'done'", "count open transitions")
        return try store.decode(rows[0], Int64.self, "count open transitions")
    }

    /// Extends the leases of every transition this watcher runs (a third of the lease apart).
    private func renew() throws(ChatFlowError) {
        let jobs = held.withLock { Array($0.values) }
        _ = try store.rows("UPDATE chatflow_watchers SET seen_at = now() WHERE owner = \(owner)", "renew")
        // A watcher unseen for three leases is dead (a live one renews every third of one).
        _ = try store.rows(
            "DELETE FROM chatflow_watchers WHERE seen_at < now() - make_interval(secs => \(settings.lease * 3))", "forget dead watchers")
        guard !jobs.isEmpty else { return }
        let rows = try store.rows(
            """
            UPDATE chatflow_dispatch d SET lease_until = now() + make_interval(secs => \(settings.lease))
            FROM unnest(\(jobs.map(\.instanceID))::text[], \(jobs.map(\.position))::bigint[], \(jobs.map { Int64($0.attempt) })::bigint[]) AS h(id, p, a)
            WHERE d.instance_id = h.id AND d.position = h.p AND d.attempt = h.a AND d.owner = \(owner) AND d.status = 'running'
            RETURNING 1
            """, "renew leases")
        if rows.count < jobs.count {
            logger.warning("\(jobs.count - rows.count) lease(s) were lost before renewal (this watcher stalled past --lease); their hooks may run twice")
        }
    }

    private func register() throws(ChatFlowError) {
        _ = try store.rows(
            "DELETE FROM chatflow_watchers WHERE seen_at < now() - make_interval(secs => \(settings.lease * 3))", "forget dead watchers")
        _ = try store.rows(
            """
            INSERT INTO chatflow_watchers (owner, host, pid) VALUES (\(owner), \(owner.split(separator: ":").first.map(String.init) ?? ""), \(Int32(getpid())))
            ON CONFLICT (owner) DO UPDATE SET seen_at = now()
            """, "register the watcher")
    }

    /// Hands back at once what a dead watcher of this host and state directory held: its hooks
    /// were ended when this one started (`TransitionHooks`), so no one need wait for its lease,
    /// and nothing it ran is still running when another watcher takes it. A predecessor whose
    /// pid is alive (reused) is left to its lease.
    private func releaseDeadPredecessors() throws(ChatFlowError) {
        let rows = try store.rows(
            "SELECT DISTINCT owner FROM chatflow_dispatch WHERE status = 'running' AND owner LIKE \(host + ":%")", "find predecessors")
        var dead: [String] = []
        for row in rows {
            let name = try store.decode(row, String.self, "find predecessors")
            let parts = name.split(separator: ":")
            guard parts.count == 4, parts[0] == host, parts[3] == rootTag, name != owner, let pid = Int32(parts[1]),
                  kill(pid, 0) != 0, errno == ESRCH
            else { continue }
            dead.append(name)
        }
        guard !dead.isEmpty else { return }
        let released = try store.rows(
            """
            UPDATE chatflow_dispatch SET status = 'pending', owner = NULL, lease_until = NULL
            WHERE status = 'running' AND owner = ANY(\(dead)::text[])
            RETURNING 1
            """, "hand back a dead predecessor's transitions")
        logger.notice("handed back \(released.count) transition(s) a dead watcher of this host held; its hooks were ended")
    }

    private func unregister() throws(ChatFlowError) {
        _ = try store.rows("DELETE FROM chatflow_watchers WHERE owner = \(owner)", "unregister the watcher")
    }

    // MARK: Waking

    /// Polls every `poll` seconds (expired leases are found so; and where LISTEN is unavailable,
    /// every change), renewing leases every third of the lease.
    private func tick() async {
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
    private func listen(_ changes: PostgresChangeSource) async {
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
