import ChatFlow
import Glibc
import Hummingbird
import ServiceLifecycle
import NIOCore
import Synchronization

/// A run's log as it is written: `RunLogFollower` (the code behind `chatflow logs --follow`)
/// on a thread writes into a pipe; the response reads the pipe. Ended by `stop` (the client
/// left, or the server is shutting down): a second pipe wakes the follower, which then closes
/// its end, which ends the reader, so nothing outlives the response.
enum LogStream {
    struct Follow: Sendable {
        let stream: AsyncStream<ByteBuffer>
        let stop: @Sendable () -> Void
    }

    /// The response of `GET /api/instances/ID/logs/follow`: the log as text, until the run
    /// ends, the client leaves or the server shuts down.
    static func response(engine: WorkflowEngine, id: String, run: RunSelection, channel: any Channel) -> Response {
        let follow = follow(engine: engine, id: id, run: run)
        ClientGone.watch(channel, follow.stop)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody { writer in
                // Ended with the client (the stream's termination) or at shutdown.
                try await withGracefulShutdownHandler {
                    for await chunk in follow.stream { try await writer.write(chunk) }
                } onGracefulShutdown: {
                    follow.stop()
                }
                follow.stop()
                try await writer.finish(nil)
            })
    }

    static func follow(engine: WorkflowEngine, id: String, run: RunSelection) -> Follow {
        var fds: [Int32] = [0, 0], wake: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return Follow(stream: AsyncStream { $0.finish() }, stop: {}) }
        guard pipe(&wake) == 0 else {
            fds.forEach { _ = close($0) }
            return Follow(stream: AsyncStream { $0.finish() }, stop: {})
        }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        let (cancelRead, cancelWrite) = (wake[0], wake[1])
        for fd in fds + wake { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let stopped = Mutex(false)
        let stop: @Sendable () -> Void = {
            let first = stopped.withLock { done in
                defer { done = true }
                return !done
            }
            if first {
                _ = Glibc.write(cancelWrite, "x", 1)
                _ = close(cancelWrite)
            }
        }
        let logPath = run.logPath, journalPath = engine.layout.runJournalFile, pid = run.running?.pid, startedAt = run.startedAt
        let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        continuation.onTermination = { _ in stop() }
        // Under a thread limit: say so, and end the stream (its descriptors are given back).
        let noThread: () -> Follow = {
            continuation.yield(ByteBuffer(string: "chatflow-ui: cannot follow the log now (no thread available); try again\n"))
            continuation.finish()
            return Follow(stream: stream, stop: {})
        }
        let following = startDetachedThread {
            let follower = RunLogFollower(logPath: logPath, root: engine.layout.root, journalPath: journalPath, pid: pid) { engine.hookRuns.runHasEnded(id, startedAt: startedAt) }
            try? follower.run(follow: pid != nil, out: writeEnd, cancel: cancelRead)
            close(writeEnd)
            close(cancelRead)
        }
        guard following else {
            // No thread to follow with (a thread limit): every descriptor goes back now, and
            // `stop` must not write to a number that may be reused.
            stopped.withLock { $0 = true }
            [readEnd, writeEnd, cancelRead, cancelWrite].forEach { _ = close($0) }
            return noThread()
        }
        let reading = startDetachedThread {
            var chunk = [UInt8](repeating: 0, count: 16384)
            while true {
                let count = chunk.withUnsafeMutableBytes { Glibc.read(readEnd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                if case .terminated = continuation.yield(ByteBuffer(bytes: chunk[..<count])) { break }
            }
            // Closing the read end makes the follower's next write fail, which ends it.
            close(readEnd)
            continuation.finish()
            stop()
        }
        guard reading else {
            // The follower is running: stopping it makes it close its ends; the read end is ours.
            stop()
            close(readEnd)
            return noThread()
        }
        return Follow(stream: stream, stop: stop)
    }
}

