import ChatFlow
import Hummingbird
import NIOCore
import ServiceLifecycle

/// `GET /api/events`: server-sent events, `change` for an instance and `rescan` (read
/// everything) when changes may have been missed; a comment every 15 s keeps proxies open.
enum EventStream {
    static func response(_ events: EventLog, after lastEventID: String?, channel: any Channel) async -> Response {
        let subscription = await events.subscribe(after: lastEventID)
        // A page that leaves frees its stream now, not at the next ping.
        ClientGone.watch(channel) { Task { await events.unsubscribe(subscription.id) } }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
            body: ResponseBody { writer in
                let pinger = Task {
                    while (try? await Task.sleep(for: .seconds(15))) != nil { await events.ping(subscription.id) }
                }
                do {
                    try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
                    if subscription.missed { try await writer.write(ByteBuffer(string: frame(nil, epoch: events.epoch))) }
                    for event in subscription.replay { try await writer.write(ByteBuffer(string: frame(event, epoch: events.epoch))) }
                    // An event stream never ends by itself: shutting down ends it, so that the
                    // server's graceful shutdown does not wait for the pages to go.
                    try await withGracefulShutdownHandler {
                        for await event in subscription.stream {
                            try await writer.write(ByteBuffer(string: event.sequence == 0 ? ": ping\n\n" : frame(event, epoch: events.epoch)))
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

    /// One server-sent event: `change` for an instance, `rescan` (read everything) for none.
    static func frame(_ event: EventLog.Event?, epoch: String) -> String {
        guard let event, let id = event.instanceID else {
            return (event.map { "id: \(epoch)-\($0.sequence)\n" } ?? "") + "event: rescan\ndata: {}\n\n"
        }
        return "id: \(epoch)-\(event.sequence)\nevent: change\ndata: {\"instance_id\":\"\(id)\"}\n\n"
    }
}
