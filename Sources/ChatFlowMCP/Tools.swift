import ChatFlow
import ChatFlowWatch
import MCP

/// The MCP tools: `Operations.all`, one tool each, named as the operation. A tool's structured
/// content is the operation's document; its text, the operation's text. A failed call is a tool
/// error (`isError`), not a protocol error, so the model sees it and can act on it; its
/// structured content is the one error document (`ErrorDocument`).
enum ChatFlowTools {
    static let all: [Tool] = Operations.all.map(tool)

    static func tool(_ operation: Operation) -> Tool {
        Tool(
            name: operation.name, description: operation.summary, inputSchema: operation.inputSchema.mcpValue,
            annotations: .init(readOnlyHint: operation.readOnly, destructiveHint: false, openWorldHint: false))
    }

    /// Calls the operation named `name`. Waits are bounded (`WaitBounds.request`): a wait that
    /// runs out is a `timeout` error, and the agent calls again.
    static func call(
        _ name: String, _ arguments: [String: Value]?, engine: WorkflowEngine, changes: any InstanceChangeSource
    ) async -> CallTool.Result {
        do {
            let operation = try Operations.require(name)
            let plan = try operation.prepare((arguments ?? [:]).mapValues(JSONValue.init), engine: engine, waits: .request)
            let result = try await plan.run(changes: changes)
            let structured: MCP.Value? = result.document.mcpValue
            return CallTool.Result(
                content: [.text(text: result.text.isEmpty ? "(none)" : result.text, annotations: nil, _meta: nil)],
                structuredContent: structured, isError: false)
        } catch {
            return failure(error)
        }
    }

    static func failure(_ error: any Error) -> CallTool.Result {
        let (code, message) = ErrorDocument.describe(error)
        let structured: MCP.Value? = ErrorDocument.json(code: code, message: message).mcpValue
        return CallTool.Result(
            content: [.text(text: "error (\(code)): \(message)", annotations: nil, _meta: nil)], structuredContent: structured, isError: true)
    }
}
