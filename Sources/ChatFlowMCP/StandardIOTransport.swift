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

    public init(input: Int32 = 0, output: Int32 = 1, logger: Logger) {
        self.input = input
        self.output = output
        self.logger = logger
        (stream, continuation) = AsyncThrowingStream.makeStream(of: Data.self)
    }

    public func connect() async throws {
        guard !connected else { return }
        connected = true
        let input = input, continuation = continuation, logger = logger
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
                    if newline > start { continuation.yield(Data(pending[start..<newline])) }
                    start = newline + 1
                }
                pending.removeFirst(start)
            }
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
        bytes.append(0x0A)
        do {
            try writeAll(output, bytes, operation: "write", path: "standard output")
        } catch {
            throw MCPError.transportError(error)
        }
    }

    public nonisolated func receive() -> AsyncThrowingStream<Data, any Error> { stream }
}
