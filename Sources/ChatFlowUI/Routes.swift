import ChatFlow
import ChatFlowWatch
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Every route: pages, the JSON API (`APIRoutes`, over the operations catalogue), `/api/events`
/// (server-sent events) and the log follow.
struct Routes: Sendable {
    let engine: WorkflowEngine
    let events: EventLog
    let changes: any InstanceChangeSource
    let configuration: UIConfiguration
    let logger: Logger

    func register(on router: Router<UIRequestContext>) {
        let engine = engine
        let board = Board(engine: engine)

        // Pages: a shell each; the script renders from the API.
        let pageMeta = configuration.actions ? ["chatflow-actions": "on", "chatflow-token": configuration.token ?? ""] : [:]
        @Sendable func page(_ name: String, _ title: String, _ extra: [String: String] = [:]) -> Response {
            Reply.bytes(Array(Assets.page(name, title: title, meta: pageMeta.merging(extra) { $1 }).utf8), type: "text/html; charset=utf-8")
        }
        router.get("/") { _, _ in page("board", "ChatFlow") }
        router.get("/instances/:id") { _, context in
            let id = try context.parameters.require("id")
            return page("instance", "ChatFlow · \(id)", ["chatflow-id": id])
        }
        router.get("/features/:feature") { _, context in
            let feature = try context.parameters.require("feature")
            return page("feature", "ChatFlow · \(feature)", ["chatflow-feature": feature])
        }
        router.get("/favicon.ico") { _, _ in Reply.bytes(Array(Assets.icon.utf8), type: "image/svg+xml") }
        router.get("/static/app.js") { _, _ in Reply.bytes(Array(Assets.script.utf8), type: "text/javascript; charset=utf-8") }
        router.get("/static/app.css") { _, _ in Reply.bytes(Array(Assets.style.utf8), type: "text/css; charset=utf-8") }

        // The board's own view: cards, not an operation's document.
        router.get("/api/board") { request, _ in
            Reply.replying {
                let arguments = try OperationArguments(
                    operation: "board", values: request.queryValues(["feature", "status", "id"]), allowed: ["feature", "status", "id"])
                return .object([
                    "instances": .array(
                        try board.cards(feature: arguments.string("feature"), status: arguments.status("status"), only: arguments.string("id"))),
                    "now": .number(JSONNumber(Timestamps.unix())),
                ])
            }
        }
        router.get("/api/features/:feature") { _, context in
            Reply.replying {
                let feature = try context.parameters.require("feature")
                let result = try Operations.require("feature").prepare(["feature": .string(feature)], engine: engine).immediate
                var members = result?.document.objectValue ?? [:]
                members["instances"] = .array(try board.cards(feature: feature))
                return .object(members)
            }
        }
        router.get("/api/instances/:id/artifacts/:name") { _, context in
            do {
                let id = try context.parameters.require("id"), name = try context.parameters.require("name")
                let bytes = try engine.artifacts.read(id, name: name)
                return Reply.bytes(bytes, type: "application/octet-stream", extra: [.contentDisposition: "attachment; filename=\"\(name)\""])
            } catch {
                return Reply.error(error)
            }
        }
        router.get("/api/instances/:id/logs/follow") { request, context in
            do {
                let id = try context.parameters.require("id")
                let run = try engine.hookRuns.latestRun(of: id, transition: request.query("transition").flatMap(Int.init), hook: request.query("hook"))
                return LogStream.response(engine: engine, id: id, run: run, channel: context.channel)
            } catch {
                return Reply.error(error)
            }
        }
        router.get("/api/events") { request, context in
            await EventStream.response(events, after: request.header("Last-Event-ID") ?? request.query("last_event_id"), channel: context.channel)
        }
        APIRoutes(engine: engine, changes: changes, actions: ActionGuard(enabled: configuration.actions, token: configuration.token), logger: logger)
            .register(on: router)
    }
}
