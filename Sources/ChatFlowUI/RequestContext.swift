import Hummingbird
import NIOCore

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
