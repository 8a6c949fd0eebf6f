import ChatFlow
import Foundation
import Logging
import MCP

import Glibc

/// MCP over stdin/stdout, newline-delimited, with blocking I/O on a thread of its own.
///
/// The SDK's `StdioTransport` makes stdin non-blocking and sleeps 10 ms whenever a read finds
/// nothing, so every request waits up to 10 ms and an idle server wakes 100 times a second.
/// Measured by `chatflow-bench --only mcp`: a `status` call took 10.2 ms at p50 through it
/// (slower than spawning `chatflow status --json`, 7.4 ms); see docs/DESIGN.md for this one.
public actor StandardIOTransport: Transport {
    public nonisolated let logger: Logger
    private let input: Int32
    private let output: Int32
    private let stream: AsyncThrowingStream<Data, any Error>
    private let continuation: AsyncThrowingStream<Data, any Error>.Continuation
    private var connected = false
    /// Requests read and not yet answered: at the end of input the stream ends only once they
    /// are, so a client that sends and closes still gets every answer.
    private let unanswered = Unanswered()

    public init(input: Int32 = 0, output: Int32 = 1, logger: Logger) {
        self.input = input
        self.output = output
        self.logger = logger
        (stream, continuation) = AsyncThrowingStream.makeStream(of: Data.self)
    }

    public func connect() async throws {
        guard !connected else { return }
        connected = true
        let input = input, continuation = continuation, logger = logger, unanswered = unanswered
        let reader = Thread {
            var pending: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = chunk.withUnsafeMutableBytes { Glibc.read(input, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else {
                    if count < 0 { logger.error("reading standard input failed", metadata: ["errno": "\(errno)"]) }
                    break
                }
                pending += chunk[..<count]
                var start = 0
                while let newline = pending[start...].firstIndex(of: 0x0A) {
                    if newline > start {
                        let message = Array(pending[start..<newline])
                        if Self.isRequest(message) { unanswered.add(1) }
                        continuation.yield(Data(message))
                    }
                    start = newline + 1
                }
                pending.removeFirst(start)
            }
            unanswered.waitForNone()
            continuation.finish()
        }
        reader.name = "chatflow-mcp stdin"
        reader.start()
    }

    public func disconnect() async {
        connected = false
        continuation.finish()
    }

    public func send(_ data: Data) async throws {
        var bytes = [UInt8](data)
        let answers = Self.isResponse(bytes) ? 1 : 0
        bytes.append(0x0A)
        defer { if answers > 0 { unanswered.add(-answers) } }
        do {
            try writeAll(output, bytes, operation: "write", path: "standard output")
        } catch {
            throw MCPError.transportError(error)
        }
    }

    /// A JSON-RPC request: a `method` and an `id` (a notification has no id).
    static func isRequest(_ message: [UInt8]) -> Bool {
        guard let object = (try? JSONValue(parsing: message))?.objectValue else { return false }
        return object["method"] != nil && object["id"] != nil
    }

    /// A response: an `id` and a `result` or an `error`, no `method`.
    static func isResponse(_ message: [UInt8]) -> Bool {
        guard let object = (try? JSONValue(parsing: message))?.objectValue else { return false }
        return object["method"] == nil && object["id"] != nil && (object["result"] != nil || object["error"] != nil)
    }

    public nonisolated func receive() -> AsyncThrowingStream<Data, any Error> { stream }
}

/// A count the reader thread can wait on.
final class Unanswered: @unchecked Sendable {
    private let condition = NSCondition()
    private var count = 0

    func add(_ delta: Int) {
        condition.lock()
        count += delta
        if count <= 0 { condition.broadcast() }
        condition.unlock()
    }

    func waitForNone() {
        condition.lock()
        while count > 0 { condition.wait() }
        condition.unlock()
    }
}
