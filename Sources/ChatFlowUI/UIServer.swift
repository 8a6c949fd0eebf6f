import ChatFlow
import ChatFlowWatch
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix
import Logging
import ServiceLifecycle

import Glibc

/// How `chatflow ui` serves.
public struct UIConfiguration: Sendable {
    public var bind: String
    public var port: Int
    /// Required for a non-loopback bind and for actions.
    public var token: String?
    /// Rerun, release, trigger from the page (behind the token).
    public var actions: Bool
    /// Seconds a connection may send nothing outside a request before it is closed.
    public var idleTimeout: Double = 60

    public init(bind: String = "127.0.0.1", port: Int = 8750, token: String? = nil, actions: Bool = false) {
        self.bind = bind
        self.port = port
        self.token = token
        self.actions = actions
    }

    public var isLoopback: Bool { AccessGuard<UIRequestContext>.loopbackNames.contains(bind) || bind.hasPrefix("127.") }

    /// Refuses what would expose the state without a token.
    public func validate() throws(UIError) {
        if !isLoopback && token == nil {
            throw UIError(
                code: "invalid_input",
                message: "refusing to bind \(bind) without an access token: give --token-file FILE or $CHATFLOW_UI_TOKEN (loopback needs none)")
        }
        if actions && token == nil {
            throw UIError(code: "invalid_input", message: "--actions needs an access token (--token-file FILE or $CHATFLOW_UI_TOKEN)")
        }
    }
}

extension UIError: CustomStringConvertible {
    public var description: String { message }
}

/// The web view: pages, the JSON API (the command's `--json` shapes) and the live events.
public struct UIServer: Sendable {
    public let engine: WorkflowEngine
    public let configuration: UIConfiguration
    public let changes: any InstanceChangeSource
    public let logger: Logger

    public init(engine: WorkflowEngine, configuration: UIConfiguration, changes: (any InstanceChangeSource)? = nil, logger: Logger) {
        self.engine = engine
        self.configuration = configuration
        self.changes = changes ?? FileChangeSource(layout: engine.layout)
        self.logger = logger
    }

    /// Runs Swift concurrency's jobs on the server's event-loop threads, which are started once
    /// and kept. The default pool starts threads on demand: under a process or user thread limit
    /// it has none left to run the shutdown that SIGTERM asks for. Call first in `main`, once.
    public static func runConcurrencyOnEventLoops() {
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }

    /// Serves until cancelled (SIGINT/SIGTERM in the executable); `onRunning` gets the bound port.
    public func run(onRunning: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        try configuration.validate()
        try engine.prepare()
        let events = EventLog(epoch: String(Int(Timestamps.unix() * 1000), radix: 36))
        // Armed before the server accepts a request: no change after a page's first read is missed.
        let (stream, continuation) = AsyncStream.makeStream(of: InstanceChange.self)
        // The engine's cache is dropped first, so a page that refetches on the event reads the change.
        let token = try await changes.subscribe(LiveInvalidation.invalidating(engine) { continuation.yield($0) })
        let feeder = Task { for await change in stream { await events.append(change) } }
        defer {
            continuation.finish()
            feeder.cancel()
        }
        let router = Router(context: UIRequestContext.self)
        router.add(middleware: SecurityHeaders())
        router.add(middleware: AccessGuard(token: configuration.token, bindHost: configuration.bind))
        Routes(engine: engine, events: events, changes: changes, configuration: configuration, logger: logger).register(on: router)
        let app = Application(
            router: router,
            // A connection that sends nothing for `idleTimeout` outside a request is closed (a
            // response in progress, such as the event stream, is not).
            server: .http1(configuration: .init(idleTimeout: .milliseconds(Int64(configuration.idleTimeout * 1000)))),
            configuration: .init(address: .hostname(configuration.bind, port: configuration.port), serverName: "chatflow-ui"),
            onServerRunning: { channel in onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
        do {
            // SIGTERM and SIGINT through a thread that is already running (`SignalThread`).
            let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
            if !SignalThread.start([SIGTERM, SIGINT], { _ in Task { await group.triggerGracefulShutdown() } }) {
                logger.warning("no thread for signals: SIGTERM and SIGINT end the server at once")
            }
            try await group.run()
        } catch {
            await changes.unsubscribe(token)
            if let failure = error as? IOError, failure.errnoCode == EADDRINUSE {
                throw UIError(
                    code: "in_use",
                    message: "port \(configuration.port) on \(configuration.bind) is already in use: pick another with --port N, or --port 0 for any free one")
            }
            throw error
        }
        await changes.unsubscribe(token)
    }
}
