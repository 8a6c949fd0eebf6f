import ChatFlow
import ChatFlowPostgres
import ChatFlowTestSupport

/// A fresh state directory (inside a `TemporaryDirectory`) and an engine on it.
struct TemporaryRoot: ~Copyable {
    private let directory = TemporaryDirectory()
    var path: String { directory.root }
    var engine: WorkflowEngine { WorkflowEngine(root: path) }
}

let fourPhases = WorkflowSchema(name: "dev", phaseNames: ["design", "implement", "testing", "review"])

/// The stores the conformance tests run on: the files always, PostgreSQL when the tests have a
/// server (`$CHATFLOW_TEST_POSTGRES`; scripts/test.sh always gives them one).
enum StoreKind: String, CustomStringConvertible, Sendable {
    case files, postgres
    static var available: [StoreKind] { TestDatabase.server == nil ? [.files] : [.files, .postgres] }
    var description: String { rawValue }
}

/// A fresh store of a kind (a state directory, and a database of its own for PostgreSQL) with
/// engines on it; each `engine` is a new engine (its own connections), as another process would be.
struct TestStore: ~Copyable {
    let root = TemporaryRoot()
    let database: TestDatabase?

    init(_ kind: StoreKind) throws {
        database = kind == .postgres ? try TestDatabase() : nil
    }

    var engine: WorkflowEngine {
        get throws {
            guard let database else { return root.engine }
            return try WorkflowEngine.postgres(url: database.url, root: root.path)
        }
    }
}
