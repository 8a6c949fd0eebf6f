import ChatFlow
import ChatFlowWatch
import Logging
import MCP

/// `chatflow-mcp`: the engine's operations as MCP tools and its instances as resources, over
/// any transport (stdio in the executable). Logs go to `logger`, never to the transport.
public struct ChatFlowMCPServer: Sendable {
    public let engine: WorkflowEngine
    public let changes: any InstanceChangeSource
    public let logger: Logger

    /// `changes` defaults to inotify on the engine's `instances/`.
    public init(engine: WorkflowEngine, changes: (any InstanceChangeSource)? = nil, logger: Logger) {
        self.engine = engine
        self.changes = changes ?? FileChangeSource(layout: engine.layout)
        self.logger = logger
    }

    static let instructions = """
        ChatFlow keeps the shared record of where each piece of work stands: workflow instances, each in \
        a phase. To work a role: claim (phase, as) takes the oldest unclaimed instance in that phase and \
        returns its id, transition and token; do the work; then trigger (id, expect_transition, token) \
        moves it on (or trigger with to sends it back, or fail). wait blocks until something changes \
        (bounded by timeout_seconds; call again on a timeout error). Errors are tool errors with a code: \
        not_found, invalid_input, conflict (the instance moved on, or a claim token is wrong), finished, \
        corrupt, io, timeout.
        """

    /// Serves until the transport closes (the client went away).
    public func run(transport: any Transport) async throws {
        try engine.prepare()
        let server = Server(
            name: "chatflow", version: ChatFlow.version, title: "ChatFlow", instructions: Self.instructions,
            capabilities: .init(resources: .init(subscribe: true, listChanged: true), tools: .init(listChanged: false)))
        let resources = InstanceResources(engine: engine)
        let logger = logger
        await resources.prime()

        let engine = engine, changes = changes
        await server.withMethodHandler(ListTools.self) { _ in .init(tools: ChatFlowTools.all) }
        await server.withMethodHandler(CallTool.self) { call in
            let started = ContinuousClock.now
            let result = await ChatFlowTools.call(call.name, call.arguments, engine: engine, changes: changes)
            logger.debug("tool call", metadata: ["tool": "\(call.name)", "error": "\(result.isError ?? false)", "took": "\(ContinuousClock.now - started)"])
            return result
        }
        await server.withMethodHandler(ListResources.self) { _ in .init(resources: try await resources.list()) }
        await server.withMethodHandler(ListResourceTemplates.self) { _ in .init(templates: [InstanceResources.template]) }
        await server.withMethodHandler(ReadResource.self) { request in try await resources.read(request.uri) }
        await server.withMethodHandler(ResourceSubscribe.self) { request in
            try await resources.subscribe(request.uri)
            return Empty()
        }
        await server.withMethodHandler(ResourceUnsubscribe.self) { request in
            await resources.unsubscribe(request.uri)
            return Empty()
        }

        // Changes are handed from the source's thread to one task, which sends in order.
        let (stream, continuation) = AsyncStream.makeStream(of: InstanceChange.self)
        // The cache entry goes first, on the source's thread, so a read after the notification
        // (or any read once the change is seen) is of the new state, not a cached one.
        let token = try await changes.subscribe(LiveInvalidation.invalidating(engine) { continuation.yield($0) })
        let notifier = Task {
            for await change in stream {
                let (updated, listChanged) = await resources.notifications(for: change)
                do {
                    for uri in updated { try await server.notify(ResourceUpdatedNotification.message(.init(uri: uri))) }
                    if listChanged { try await server.notify(ResourceListChangedNotification.message()) }
                } catch {
                    logger.debug("notification not sent", metadata: ["error": "\(error)"])
                }
            }
        }
        try await server.start(transport: transport)
        logger.info("serving", metadata: ["root": "\(engine.root)", "tools": "\(ChatFlowTools.all.count)"])
        await server.waitUntilCompleted()
        // (The transport ends its stream only once every request read has been answered.)
        await changes.unsubscribe(token)
        continuation.finish()
        await notifier.value
        await server.stop()
    }
}
