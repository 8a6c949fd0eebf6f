import ChatFlow
import ChatFlowWatch
import MCP

/// What a tool returns: structured content (the command's `--json` shape) and a short text for
/// clients that show only text.
struct ToolOutput: Sendable {
    var structured: JSONValue
    var text: String

    var result: CallTool.Result {
        let content: MCP.Value? = structured.mcpValue
        return CallTool.Result(content: [.text(text: text, annotations: nil, _meta: nil)], structuredContent: content, isError: false)
    }
}

/// A failed tool call as a tool error (`isError`), not a protocol error: the model sees it and
/// can act on it. Its structured content is the command's `--json` error object, with the same
/// codes (`not_found`, `invalid_input`, `conflict`, `finished`, `corrupt`, `io`) and `timeout`
/// for a wait that ran out.
struct ToolFailure: Error, Sendable {
    var code: String
    var message: String

    init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    init(_ error: any Error) {
        switch error {
        case let error as ToolFailure: self = error
        case let error as ChatFlowError: self.init(code: error.code, message: error.description)
        case let error as WaitError:
            switch error {
            case .timedOut: self.init(code: "timeout", message: error.description + " (call again to keep waiting)")
            case .failed(let reason): self.init(code: "io", message: reason)
            }
        case let error as WatchError: self.init(code: "io", message: error.description)
        case is CancellationError: self.init(code: "cancelled", message: "the call was cancelled")
        default: self.init(code: "internal", message: "\(error)")
        }
    }

    var result: CallTool.Result {
        let object: JSONValue = ["error": ["code": .string(code), "message": .string(message)]]
        let content: MCP.Value? = object.mcpValue
        return CallTool.Result(
            content: [.text(text: "error (\(code)): \(message)", annotations: nil, _meta: nil)], structuredContent: content, isError: true)
    }
}
