import ChatFlow
import ChatFlowCommand
import ChatFlowPostgres

// `chatflow` with the PostgreSQL store linked: `chatflow --store postgres://…` execs this.
CommandMain.run(
    openingStore: { (url, root) throws(ChatFlowError) in try WorkflowEngine.postgres(url: url, root: root) },
    migrating: { (from, to) throws(ChatFlowError) in try StoreMigration.migrate(from: from, to: to).json })
