import ChatFlow
import ChatFlowWatch
import Dispatch
import Glibc
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The dispatch table: transitions claimed with SKIP LOCKED under a lease, finished fenced by it.
extension PostgresWatcher {
    /// Marks up to `limit` transitions running for this owner: pending ones, and running ones
    /// whose lease expired (their holder died or stalled; never this watcher's own, which it still
    /// holds, say while a store outage keeps it from recording them), each the earliest unfinished
    /// transition of its instance. One statement: the rows stay locked until it commits.
    func take(_ limit: Int) throws(ChatFlowError) -> [Job] {
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

    func key(_ job: Job) -> String { "\(job.instanceID) \(job.position)" }

    func execute(_ job: Job) async {
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
    static func pause(_ seconds: Double) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { continuation.resume() }
        }
    }

    /// Records how the job's hooks ended and finishes (or hands back) its row; `false` when the
    /// store could not be reached (the caller retries).
    func record(_ job: Job, started: Double, completed: Bool) -> Bool {
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
    func finish(_ id: String, _ position: Int64, _ attempt: Int32, succeeded: Bool) throws(ChatFlowError) {
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

    func openCount() throws(ChatFlowError) -> Int64 {
        let rows = try store.rows("SELECT count(*) FROM chatflow_dispatch WHERE status <> 'done'", "count open transitions")
        return try store.decode(rows[0], Int64.self, "count open transitions")
    }

    /// Extends the leases of every transition this watcher runs (a third of the lease apart).
    func renew() throws(ChatFlowError) {
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

    func register() throws(ChatFlowError) {
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
    func releaseDeadPredecessors() throws(ChatFlowError) {
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

    func unregister() throws(ChatFlowError) {
        _ = try store.rows("DELETE FROM chatflow_watchers WHERE owner = \(owner)", "unregister the watcher")
    }
}
