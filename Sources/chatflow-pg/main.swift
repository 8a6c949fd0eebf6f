import ChatFlow
import ChatFlowCommand
import ChatFlowPostgres

// `chatflow` with the PostgreSQL store linked: `chatflow --store postgres://…` execs this.
CommandMain.run(
    driver: .init(
        open: { (url, root) throws(ChatFlowError) in try WorkflowEngine.postgres(url: url, root: root) },
        migrate: { (from, to) throws(ChatFlowError) in try StoreMigration.migrate(from: from, to: to).json },
        changes: { (url) throws(ChatFlowError) in try PostgresChangeWaiter(url: url) }))
