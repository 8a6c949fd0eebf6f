import ChatFlowPostgres
import ChatFlowTestSupport
import Testing
@testable import ChatFlow

/// The engine's behaviour on every store (with the parametrised tests of `EngineTests`): what a
/// caller sees must not depend on where state lives.
@Suite("Store conformance")
struct ConformanceTests {
    @Test("a guarded trigger (expected transition) advances once; the loser sees a conflict and nothing is written", arguments: StoreKind.available)
    func guardedTrigger(_ kind: StoreKind) throws {
        let store = try TestStore(kind)
        let engine = try store.engine
        let id = try engine.start(schema: fourPhases, featureID: "f")
        try engine.trigger(id, expectedTransition: 0)
        #expect(throws: ChatFlowError.transitionMismatch(instanceID: id, expected: 0, actual: 1)) {
            try engine.trigger(id, expectedTransition: 0)
        }
        let other = try store.engine
        #expect(try other.freshStatus(id)?.currentPhase == "implement")
        #expect(try other.history(id).map(\.phase) == ["design", "implement"])
    }

    @Test("claims: one winner, the token guards changes, release frees the work", arguments: StoreKind.available)
    func claims(_ kind: StoreKind) throws {
        let store = try TestStore(kind)
        let engine = try store.engine
        let id = try engine.start(schema: fourPhases, featureID: "f")
        try engine.trigger(id)
        let grant = try #require(try engine.claim(phase: "implement", owner: "agent-a"))
        #expect(grant.instanceID == id)
        #expect(try store.engine.claim(phase: "implement", owner: "agent-b") == nil)
        #expect(throws: ChatFlowError.self) { try engine.trigger(id) }
        #expect(throws: ChatFlowError.self) { try engine.trigger(id, token: "wrong") }
        try engine.release(id, token: grant.claim.token)
        let again = try #require(try store.engine.claim(phase: "implement", owner: "agent-b"))
        try engine.trigger(id, token: again.claim.token)
        #expect(try engine.freshStatus(id)?.currentPhase == "testing")
    }

    @Test("hostile input through the store: quotes, control characters, NUL, long and non-ASCII text, SQL, are kept byte for byte", arguments: StoreKind.available)
    func hostileInput(_ kind: StoreKind) throws {
        let store = try TestStore(kind)
        let engine = try store.engine
        let nasty: [String] = [
            "'; DROP TABLE chatflow_instances; --", "\"quoted\" \\ back", "nul\u{0}inside", "\u{1}\u{1f}\u{7f}", "ünïcødé 漢字 🚀",
            String(repeating: "x", count: 100_000), "$1 $2 %s %n", "\r\n\t",
        ]
        let schema = WorkflowSchema(name: "w", phases: [
            .init(name: "phase.1", task: nasty[0]), .init(name: "phase-2_x", task: nasty[2]), .init(name: "p3", task: "ünï 🚀"),
        ])
        var context: [String: JSONValue] = [:]
        for (index, text) in nasty.enumerated() { context["k\(index)" + text.prefix(20)] = .string(text) }
        let id = try engine.start(schema: schema, featureID: "feature.with-odd_chars", context: context, meta: ["m": .string(nasty[1])])
        let data: JSONValue = .object(["nested": .array(nasty.map(JSONValue.string)), "n": 1e300, "neg": -0.5])
        try engine.trigger(id, data: data)
        let read = try #require(try store.engine.freshStatus(id))
        #expect(read.variables["nested"] == .array(nasty.map(JSONValue.string)))
        for (index, text) in nasty.enumerated() { #expect(read.variables["k\(index)" + text.prefix(20)] == .string(text)) }
        #expect(read.meta["m"] == .string(nasty[1]))
        #expect(read.schema == schema)
        #expect(try store.engine.history(id).first?.triggerDataSnapshot == data)
        #expect(try store.engine.list(feature: "feature.with-odd_chars").map(\.instanceID) == [id])
        for bad in ["wfi_'; --", "../../etc", "wfi_0000000000\u{0}0"] {
            #expect(throws: ChatFlowError.self) { try engine.trigger(bad) }
            #expect(throws: ChatFlowError.self) { try engine.status(bad) }
        }
        #expect(throws: ChatFlowError.self) { try engine.start(schema: fourPhases, featureID: "x'; --") }
        #expect(throws: ChatFlowError.self) { try engine.trigger(id, to: "no'phase") }
        #expect(try engine.list().count == 1)
    }
}

@Suite("PostgreSQL store", .enabled(if: TestDatabase.server != nil, "needs $CHATFLOW_TEST_POSTGRES (scripts/test.sh starts a server)"))
struct PostgresStoreTests {
    @Test("migrations apply once, concurrently too, and are recorded; a newer database is refused with what to do")
    func migrations() async throws {
        let database = try TestDatabase()
        let url = database.url
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 { group.addTask { try WorkflowEngine.postgres(url: url, root: "/nonexistent").prepare() } }
            try await group.waitForAll()
        }
        #expect(try database.sql("SELECT version FROM chatflow_schema_migrations ORDER BY version") == "\(PostgresSchema.latestVersion)\n")
        try database.sql("INSERT INTO chatflow_schema_migrations (version, name) VALUES (999, 'from the future')")
        #expect {
            try WorkflowEngine.postgres(url: url, root: "/nonexistent").prepare()
        } throws: { error in
            "\(error)".contains("newer than this chatflow")
        }
    }

    @Test("doctor on a database store reads every instance and its history, and names a damaged one without touching it")
    func doctor() throws {
        let store = try TestStore(.postgres)
        let engine = try store.engine
        let healthy = try engine.start(schema: fourPhases, featureID: "f")
        let damaged = try engine.start(schema: fourPhases, featureID: "f")
        try engine.trigger(healthy)
        try engine.trigger(damaged)
        guard let database = store.database else { Issue.record("no database"); return }
        let before = try engine.diagnose(fix: false)
        #expect(before.isEmpty, "\(before)")
        try database.sql("DELETE FROM chatflow_history WHERE instance_id = '\(damaged)'")
        let findings = try engine.diagnose(fix: true)
        #expect(findings.count == 1)
        #expect(findings.first?.problem.contains(damaged) == true, "\(findings)")
        #expect(findings.first?.fixed == false)
        #expect(try database.sql("SELECT count(*) FROM chatflow_instances") == "2\n", "nothing was removed")
    }

    @Test("each change is one commit: the history row, the instance's version, the transition for the watchers")
    func tables() throws {
        let store = try TestStore(.postgres)
        let engine = try store.engine
        let id = try engine.start(schema: fourPhases, featureID: "f")
        try engine.trigger(id)
        try engine.trigger(id, to: "review")
        guard let database = store.database else { Issue.record("no database"); return }
        #expect(try database.sql("SELECT version, current_phase, status FROM chatflow_instances") == "3|review|running\n")
        #expect(try database.sql("SELECT position FROM chatflow_history ORDER BY position") == "0\n1\n")
        #expect(try database.sql("SELECT position || ' ' || event FROM chatflow_dispatch ORDER BY position") == "0 design\n1 implement\n2 review\n")
        try engine.trigger(id)
        #expect(try database.sql("SELECT event FROM chatflow_dispatch WHERE position = 3") == "@completed\n")
    }

    @Test("a server that cannot be reached is an I/O error naming the store, without its password")
    func unreachable() throws {
        let engine = try WorkflowEngine.postgres(url: "postgres://u:secret@127.0.0.1:1/db", root: "/nonexistent")
        #expect {
            try engine.prepare()
        } throws: { error in
            let text = "\(error)"
            return (error as? ChatFlowError)?.code == "io" && text.contains("postgres://u@127.0.0.1:1/db") && !text.contains("secret")
        }
        #expect(throws: ChatFlowError.self) { _ = try WorkflowEngine.postgres(url: "postgres://h:notaport/db") }
    }
}
