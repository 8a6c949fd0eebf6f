import ChatFlow

/// The snippets that register `chatflow-mcp` with the coding agents' MCP clients
/// (`chatflow-mcp --print-config CLIENT`; docs/AGENTS.md shows the same).
public enum ClientConfiguration: String, CaseIterable, Sendable {
    case claudeCode = "claude-code"
    case codex
    case gemini
    case vscode

    /// Where the snippet goes.
    public var file: String {
        switch self {
        case .claudeCode: ".mcp.json (in the project; or `claude mcp add chatflow -- COMMAND ARGS…`)"
        case .codex: "~/.codex/config.toml"
        case .gemini: ".gemini/settings.json (in the project) or ~/.gemini/settings.json"
        case .vscode: ".vscode/mcp.json (in the workspace)"
        }
    }

    /// The snippet for a server started as `command arguments…`. The waits end within 55 s;
    /// where a client has a tool timeout, it is set above that.
    public func snippet(command: String, arguments: [String]) -> String {
        let json: (String) -> String = { JSONValue.string($0).compactText }
        let args = "[" + arguments.map(json).joined(separator: ", ") + "]"
        switch self {
        case .claudeCode:
            return """
                {
                  "mcpServers": {
                    "chatflow": {
                      "type": "stdio",
                      "command": \(json(command)),
                      "args": \(args)
                    }
                  }
                }
                """
        case .codex:
            return """
                [mcp_servers.chatflow]
                command = \(json(command))
                args = \(args)
                tool_timeout_sec = 70
                """
        case .gemini:
            return """
                {
                  "mcpServers": {
                    "chatflow": {
                      "command": \(json(command)),
                      "args": \(args),
                      "timeout": 70000
                    }
                  }
                }
                """
        case .vscode:
            return """
                {
                  "servers": {
                    "chatflow": {
                      "type": "stdio",
                      "command": \(json(command)),
                      "args": \(args)
                    }
                  }
                }
                """
        }
    }
}
