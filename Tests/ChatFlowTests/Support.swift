import ChatFlow
import ChatFlowTestSupport

/// A fresh state directory (inside a `TemporaryDirectory`) and an engine on it.
struct TemporaryRoot: ~Copyable {
    private let directory = TemporaryDirectory()
    var path: String { directory.root }
    var engine: WorkflowEngine { WorkflowEngine(root: path) }
}

let fourPhases = WorkflowSchema(name: "dev", phaseNames: ["design", "implement", "testing", "review"])
