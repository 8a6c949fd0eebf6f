import ChatFlow
import ChatFlowWatch
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

import Glibc

/// Every route: pages, `/api/…` (the command's `--json`), `/api/events` (server-sent events)
/// and, behind `ActionGuard`, the actions.
struct Routes: Sendable {
    let engine: WorkflowEngine
    let events: EventLog
    let configuration: UIConfiguration
    let logger: Logger

    private var actions: ActionGuard { ActionGuard(enabled: configuration.actions, token: configuration.token) }

    func register(on router: Router<UIRequestContext>) {
        let engine = engine, events = events, actions = actions, logger = logger
        let board = Board(engine: engine)

        // Pages: a shell each; the script renders from the API.
        let pageMeta = configuration.actions ? ["chatflow-actions": "on", "chatflow-token": configuration.token ?? ""] : [:]
        router.get("/") { _, _ in Reply.bytes(Array(Assets.page("board", title: "ChatFlow", meta: pageMeta).utf8), type: "text/html; charset=utf-8") }
        router.get("/instances/:id") { _, context in
            let id = try context.parameters.require("id")
            return Reply.bytes(Array(Assets.page("instance", title: "ChatFlow · \(id)", meta: pageMeta.merging(["chatflow-id": id]) { $1 }).utf8), type: "text/html; charset=utf-8")
        }
        router.get("/features/:feature") { _, context in
            let feature = try context.parameters.require("feature")
            return Reply.bytes(Array(Assets.page("feature", title: "ChatFlow · \(feature)", meta: pageMeta.merging(["chatflow-feature": feature]) { $1 }).utf8), type: "text/html; charset=utf-8")
        }
        router.get("/favicon.ico") { _, _ in
            Reply.bytes(Array(Assets.icon.utf8), type: "image/svg+xml")
        }
        router.get("/static/app.js") { _, _ in Reply.bytes(Array(Assets.script.utf8), type: "text/javascript; charset=utf-8") }
        router.get("/static/app.css") { _, _ in Reply.bytes(Array(Assets.style.utf8), type: "text/css; charset=utf-8") }

        // The JSON API.
        router.get("/api/board") { request, _ in
            Self.replying {
                let status = try request.query("status").map(Self.status)
                return .object([
                    "instances": .array(try board.cards(feature: request.query("feature"), status: status, only: request.query("id"))),
                    "now": .number(JSONNumber(Timestamps.unix())),
                ])
            }
        }
        router.get("/api/instances") { request, _ in
            Self.replying {
                let phase = request.query("phase")
                if request.query("claimable") == "true" {
                    guard let phase else { throw UIError(code: "invalid_input", message: "claimable=true goes with phase=P") }
                    return .array(try engine.claimable(phase: phase, feature: request.query("feature")).map(\.report))
                }
                let status = try request.query("status").map(Self.status)
                return .array(try engine.list(feature: request.query("feature"), status: status, phase: phase, unreadable: { _, _ in }).map(\.report))
            }
        }
        router.get("/api/instances/:id") { _, context in
            Self.replying {
                let id = try context.parameters.require("id")
                guard let state = try engine.freshStatus(id) else { throw ChatFlowError.notFound(instanceID: id, root: engine.storeDescription) }
                return try engine.statusDocument(state)
            }
        }
        router.get("/api/instances/:id/history") { _, context in
            Self.replying { .array(try engine.history(try context.parameters.require("id")).map(\.report)) }
        }
        router.get("/api/instances/:id/runs") { _, context in
            Self.replying {
                let (ended, running) = try engine.runs(of: try context.parameters.require("id"))
                let now = Timestamps.unix()
                return .array(ended.map(\.json) + running.map { $0.report(now: now) })
            }
        }
        router.get("/api/instances/:id/logs") { request, context in
            Self.replying {
                let id = try context.parameters.require("id")
                return try engine.logReport(
                    of: id, transition: request.query("transition").flatMap(Int.init), hook: request.query("hook"),
                    offset: request.query("offset").flatMap(Int.init), maxBytes: 1 << 20
                ).report
            }
        }
        router.get("/api/instances/:id/logs/follow") { request, context in
            do {
                let id = try context.parameters.require("id")
                let run = try engine.latestRun(of: id, transition: request.query("transition").flatMap(Int.init), hook: request.query("hook"))
                let follow = LogStream.follow(engine: engine, id: id, run: run)
                ClientGone.watch(context.channel, follow.stop)
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
            } catch {
                return Reply.error(error)
            }
        }
        router.get("/api/instances/:id/artifacts") { _, context in
            Self.replying { .array(try engine.artifacts(try context.parameters.require("id")).map(JSONValue.string)) }
        }
        router.get("/api/instances/:id/artifacts/:name") { _, context in
            do {
                let id = try context.parameters.require("id"), name = try context.parameters.require("name")
                let bytes = try engine.artifact(id, name: name)
                return Reply.bytes(bytes, type: "application/octet-stream", extra: [.contentDisposition: "attachment; filename=\"\(name)\""])
            } catch {
                return Reply.error(error)
            }
        }
        router.get("/api/features/:feature") { _, context in
            Self.replying {
                let feature = try context.parameters.require("feature")
                let status = try engine.featureStatus(feature)
                guard status.totalInstances > 0 else { throw ChatFlowError.featureNotFound(featureID: feature, root: engine.storeDescription) }
                var members = status.json.objectValue ?? [:]
                members["instances"] = .array(try board.cards(feature: feature))
                return .object(members)
            }
        }
        router.get("/api/events") { request, context in
            let subscription = await events.subscribe(after: request.header("Last-Event-ID") ?? request.query("last_event_id"))
            // A page that leaves frees its stream now, not at the next ping.
            ClientGone.watch(context.channel) { Task { await events.unsubscribe(subscription.id) } }
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
                body: ResponseBody { writer in
                    let pinger = Task {
                        while (try? await Task.sleep(for: .seconds(15))) != nil { await events.ping(subscription.id) }
                    }
                    do {
                        try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
                        if subscription.missed { try await writer.write(ByteBuffer(string: Self.frame(nil, epoch: events.epoch))) }
                        for event in subscription.replay { try await writer.write(ByteBuffer(string: Self.frame(event, epoch: events.epoch))) }
                        // An event stream never ends by itself: shutting down ends it, so that
                        // the server's graceful shutdown does not wait for the pages to go.
                        try await withGracefulShutdownHandler {
                            for await event in subscription.stream {
                                try await writer.write(ByteBuffer(string: event.sequence == 0 ? ": ping\n\n" : Self.frame(event, epoch: events.epoch)))
                            }
                        } onGracefulShutdown: {
                            Task { await events.unsubscribe(subscription.id) }
                        }
                    } catch {
                        pinger.cancel()
                        await events.unsubscribe(subscription.id)
                        throw error
                    }
                    pinger.cancel()
                    await events.unsubscribe(subscription.id)
                    try await writer.finish(nil)
                })
        }

        // Actions: recorded like any other write (a trigger's meta says it came from here).
        router.post("/api/instances/:id/trigger") { request, context in
            await Self.acting(request, actions) { body in
                let id = try context.parameters.require("id")
                let state = try engine.trigger(
                    id, data: body["data"] ?? .emptyObject, meta: ["triggered_by": "chatflow ui"], to: body["to"]?.stringValue,
                    expectedTransition: body["expect_transition"]?.intValue, force: body["force"] == .bool(true))
                logger.notice("action: trigger", metadata: ["instance": "\(id)", "phase": "\(state.currentPhase)"])
                return state.json
            }
        }
        router.post("/api/instances/:id/release") { request, context in
            await Self.acting(request, actions) { _ in
                let id = try context.parameters.require("id")
                guard let claim = try engine.freshStatus(id)?.currentEntry?.claim else {
                    throw UIError(code: "not_found", message: "\(id) has no claim to release")
                }
                let state = try engine.release(id, token: claim.token)
                logger.notice("action: release", metadata: ["instance": "\(id)", "owner": "\(claim.owner)"])
                return state.json
            }
        }
        router.post("/api/instances/:id/rerun") { request, context in
            await Self.acting(request, actions) { body in
                let id = try context.parameters.require("id")
                guard try engine.freshStatus(id) != nil else { throw ChatFlowError.notFound(instanceID: id, root: engine.storeDescription) }
                _ = try RerunRequest.submit(engine.layout, instanceID: id, transition: body["transition"]?.intValue, hook: body["hook"]?.stringValue)
                logger.notice("action: rerun", metadata: ["instance": "\(id)"])
                return ["instance_id": .string(id), "requested": true, "watcher_running": .bool(LockFile.isHeld(engine.layout.watchLockFile))]
            }
        }
    }

    static func status(_ text: String) throws(UIError) -> InstanceStatus {
        guard let status = InstanceStatus(rawValue: text) else {
            throw UIError(code: "invalid_input", message: "status must be created, running, completed or failed")
        }
        return status
    }

    static func replying(_ body: () throws -> JSONValue) -> Response {
        do { return Reply.json(try body()) } catch { return Reply.error(error) }
    }

    static func acting(_ request: Request, _ guardian: ActionGuard, _ body: (JSONValue) throws -> JSONValue) async -> Response {
        var request = request
        do {
            try guardian.check(request)
            let bytes = try await request.collectBody(upTo: 1 << 20)
            let json = bytes.readableBytes == 0 ? JSONValue.emptyObject : try JSONValue(parsing: Array(bytes.readableBytesView))
            guard case .object = json else { throw UIError(code: "invalid_input", message: "the body must be a JSON object") }
            return Reply.json(try body(json))
        } catch let error as JSONParseError {
            return Reply.error(code: "invalid_input", message: "the body is not JSON: \(error)", status: .badRequest)
        } catch is NIOTooManyBytesError {
            return Reply.error(code: "invalid_input", message: "the body is larger than 1 MiB", status: .contentTooLarge)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            return Reply.error(code: "invalid_input", message: "the body is larger than 1 MiB", status: .contentTooLarge)
        } catch {
            return Reply.error(error)
        }
    }

    /// One server-sent event: `change` for an instance, `rescan` (read everything) for none.
    static func frame(_ event: EventLog.Event?, epoch: String) -> String {
        guard let event, let id = event.instanceID else {
            return (event.map { "id: \(epoch)-\($0.sequence)\n" } ?? "") + "event: rescan\ndata: {}\n\n"
        }
        return "id: \(epoch)-\(event.sequence)\nevent: change\ndata: {\"instance_id\":\"\(id)\"}\n\n"
    }
}

/// A run's log as it is written: `RunLogFollower` (the code behind `chatflow logs --follow`)
/// on a thread writes into a pipe; the response reads the pipe. Ended by `stop` (the client
/// left, or the server is shutting down): a second pipe wakes the follower, which then closes
/// its end, which ends the reader, so nothing outlives the response.
enum LogStream {
    struct Follow: Sendable {
        let stream: AsyncStream<ByteBuffer>
        let stop: @Sendable () -> Void
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
            let follower = RunLogFollower(logPath: logPath, root: engine.layout.root, journalPath: journalPath, pid: pid) { engine.runHasEnded(id, startedAt: startedAt) }
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

/// The request context of the web view: the connection too, so that a response that waits (a
/// log follow) can end the moment its client leaves rather than at its next write.
struct UIRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Calls `gone` when the client closes its side of the connection (or the connection ends),
/// passing every event on unchanged.
final class ClientGone: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    private let gone: @Sendable () -> Void

    init(_ gone: @escaping @Sendable () -> Void) { self.gone = gone }

    /// Calls `gone` once the client of `channel` leaves: a client that leaves while its response
    /// is quiet is seen here, not at the next write (the server allows half-closed connections,
    /// so its end of input is the sign).
    static func watch(_ channel: any Channel, _ gone: @escaping @Sendable () -> Void) {
        channel.eventLoop.execute {
            _ = try? channel.pipeline.syncOperations.addHandler(ClientGone(gone), position: .first)
        }
        channel.closeFuture.whenComplete { _ in gone() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { gone() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        gone()
        context.fireChannelInactive()
    }
}
