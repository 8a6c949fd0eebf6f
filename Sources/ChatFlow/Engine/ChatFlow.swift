/// The process-wide engine: zero configuration, state under `$CHATFLOW_ROOT` or `./.chatflow`
/// (resolved at first use). Every module of a process that uses `ChatFlow.engine` shares it.
/// Switch the root with `ChatFlow.engine.use(root:)`.
public let engine = WorkflowEngine(lazyWithTTL: WorkflowEngine.defaultCacheTTL)

/// ChatFlow's version, the one source `chatflow --version` and `chatflow-watch --version` print.
public let version = "0.5.0"
