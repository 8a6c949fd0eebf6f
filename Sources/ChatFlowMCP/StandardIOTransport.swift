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

    /// The longest message read (a `save_artifact` of the largest artifact, base64, fits): a
    /// longer line is dropped unread and answered with an error.
    static let maximumLineBytes = 96 << 20
    /// How long, after the end of input, answers still being worked on are waited for (from the
    /// last one sent): the client has gone, so no answer may hold the process for ever.
    static let drainSeconds = 60.0

    public func connect() async throws {
        guard !connected else { return }
        connected = true
        let input = input, output = output, continuation = continuation, logger = logger, unanswered = unanswered
        let reader = Thread {
            var pending: [UInt8] = []
            var scanned = 0
            var discarding = false
            var initialized = false
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
                // Only the new bytes are searched for a newline: a long line costs its length once.
                while let newline = pending[max(start, scanned)...].firstIndex(of: 0x0A) {
                    if discarding {
                        discarding = false
                    } else if newline > start {
                        let message = Array(pending[start..<newline])
                        switch Self.classify(message, initialized: initialized) {
                        case .request:
                            unanswered.add(1)
                            continuation.yield(Data(message))
                        case .initialize:
                            initialized = true
                            unanswered.add(1)
                            continuation.yield(Data(message))
                        case .other:
                            continuation.yield(Data(message))
                        case .notInitialized(let id):
                            Self.answer(output, id: id, code: -32002, message: "the server is not initialized: send initialize first")
                        }
                    }
                    start = newline + 1
                    scanned = start
                }
                scanned = pending.count
                pending.removeFirst(start)
                scanned -= start
                if !discarding, pending.count > Self.maximumLineBytes {
                    logger.error("dropping a message larger than the limit", metadata: ["limit": "\(Self.maximumLineBytes)"])
                    Self.answer(output, id: .null, code: -32600, message: "message larger than \(Self.maximumLineBytes >> 20) MiB: dropped")
                    discarding = true
                }
                if discarding {
                    pending.removeAll(keepingCapacity: false)
                    scanned = 0
                }
            }
            unanswered.waitForNone(idleSeconds: Self.drainSeconds)
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

    enum Kind: Equatable {
        /// A request the server answers: a `method` and an id MCP allows (a string or an integer).
        case request
        case initialize
        /// A notification, an answer, or what the SDK itself refuses (an id of another kind):
        /// nothing is waited for.
        case other
        /// A request before `initialize` (but `ping`), answered here with an error.
        case notInitialized(id: JSONValue)
    }

    static func classify(_ message: [UInt8], initialized: Bool) -> Kind {
        guard let object = (try? JSONValue(parsing: message))?.objectValue, let method = object["method"]?.stringValue,
              let id = object["id"]
        else { return .other }
        let answered: Bool
        switch id {
        case .string: answered = true
        case .number(let number): answered = number.intValue != nil
        default: answered = false
        }
        guard answered else { return .other }
        if method == "initialize" { return .initialize }
        if !initialized && method != "ping" { return .notInitialized(id: id) }
        return .request
    }

    /// An answer the SDK sent: anything that is not itself a request or a notification (one it
    /// cannot parse counts as an answer, so the end of input is never held up by it).
    static func isResponse(_ message: [UInt8]) -> Bool {
        guard let object = (try? JSONValue(parsing: message))?.objectValue else { return true }
        return object["method"] == nil && object["id"] != nil
    }

    /// A JSON-RPC error written straight to the output.
    static func answer(_ output: Int32, id: JSONValue, code: Int, message: String) {
        let reply: JSONValue = ["jsonrpc": "2.0", "id": id, "error": ["code": JSONValue(code), "message": .string(message)]]
        try? writeAll(output, Array((reply.compactText + "\n").utf8), operation: "write", path: "standard output")
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

    /// Returns when none is left, or when `idleSeconds` pass without an answer.
    func waitForNone(idleSeconds: Double) {
        condition.lock()
        var last = count
        while count > 0 {
            if !condition.wait(until: Date().addingTimeInterval(idleSeconds)) && count >= last { break }
            last = count
        }
        condition.unlock()
    }
}
