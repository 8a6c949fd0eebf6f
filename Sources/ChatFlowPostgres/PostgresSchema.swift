/// The tables of a PostgreSQL store, as numbered migrations (docs/SCALE-OUT.md). A migration is
/// never edited once released: a change is a new one. Applied in one transaction under an
/// advisory lock, so concurrent `chatflow init --store` calls apply each exactly once.
package enum PostgresSchema {
    /// The advisory lock key migrations hold ("chatflow" in ASCII, as a number).
    static let migrationLock = 0x6368_6174_666C_6F77

    /// The notification channel: every commit notifies it with the instance id alone (a payload
    /// must stay under 8,000 bytes, and the tables say the rest).
    package static let channel = "chatflow_changes"

    package static let migrations: [(version: Int, name: String, statements: [String])] = [
        (1, "instances, history, feature index, dispatch, hook runs, watchers", [
            "CREATE SEQUENCE chatflow_change_seq",
            // One row per instance: the state as the file store's view text, and what queries need.
            """
            CREATE TABLE chatflow_instances (
                id text PRIMARY KEY,
                feature_id text NOT NULL,
                workflow_name text NOT NULL,
                current_phase text NOT NULL,
                status text NOT NULL,
                version bigint NOT NULL,
                change_seq bigint NOT NULL,
                state text NOT NULL,
                created_at double precision NOT NULL,
                updated_at double precision NOT NULL)
            """,
            // The feature index is a query; this index serves it in id order.
            "CREATE INDEX chatflow_instances_feature ON chatflow_instances (feature_id, id COLLATE \"C\")",
            "CREATE INDEX chatflow_instances_change ON chatflow_instances (change_seq)",
            """
            CREATE TABLE chatflow_history (
                instance_id text NOT NULL REFERENCES chatflow_instances (id) ON DELETE CASCADE,
                position bigint NOT NULL,
                entry text NOT NULL,
                PRIMARY KEY (instance_id, position))
            """,
            // The watchers' dispatch state: one row per transition, written by the commit that
            // made it (so nothing is lost while no watcher listens), taken by one watcher.
            """
            CREATE TABLE chatflow_dispatch (
                instance_id text NOT NULL REFERENCES chatflow_instances (id) ON DELETE CASCADE,
                position bigint NOT NULL,
                event text NOT NULL,
                change_seq bigint NOT NULL,
                transition text NOT NULL,
                state_text text NOT NULL,
                status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done')),
                owner text,
                attempt integer NOT NULL DEFAULT 0,
                lease_until timestamptz,
                finished_at timestamptz,
                succeeded boolean,
                PRIMARY KEY (instance_id, position))
            """,
            "CREATE INDEX chatflow_dispatch_open ON chatflow_dispatch (change_seq) WHERE status <> 'done'",
            """
            CREATE TABLE chatflow_hook_runs (
                instance_id text NOT NULL,
                position bigint NOT NULL,
                hook text NOT NULL,
                attempt integer NOT NULL,
                owner text NOT NULL,
                started_at double precision NOT NULL,
                ended_at double precision NOT NULL,
                outcome text NOT NULL,
                succeeded boolean NOT NULL,
                PRIMARY KEY (instance_id, position, hook, attempt, owner))
            """,
            """
            CREATE TABLE chatflow_watchers (
                owner text PRIMARY KEY,
                host text NOT NULL,
                pid integer NOT NULL,
                started_at timestamptz NOT NULL DEFAULT now(),
                seen_at timestamptz NOT NULL DEFAULT now())
            """,
        ]),
    ]

    package static var latestVersion: Int { migrations.last!.version }
}
