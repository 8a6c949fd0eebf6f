import ChatFlow
import ChatFlowWatch
import Hummingbird
import Logging
import NIOCore

/// The JSON API over the operations catalogue. Every operation is at `/api/call/NAME` (`GET`
/// with query arguments for one that changes nothing; `POST` with a JSON body for any, behind
/// `ActionGuard`); the REST routes the pages use are the same operations under their own paths,
/// printing what the command's `--json` prints. Errors are the one error document.
struct APIRoutes: Sendable {
    let engine: WorkflowEngine
    let changes: any InstanceChangeSource
    let actions: ActionGuard
    let logger: Logger

    /// A REST route: an operation, its path's parameters as arguments, and what the web view
    /// adds to a call (a trigger's meta says it came from here).
    struct Route: Sendable {
        var path: RouterPath
        var operation: String
        var post = false
        var adjust: @Sendable (inout [String: JSONValue], WorkflowEngine) throws(ChatFlowError) -> Void = { _, _ in }
    }

    static let routes: [Route] = [
        Route(path: "/api/instances", operation: "list"),
        Route(path: "/api/instances/:id", operation: "status"),
        Route(path: "/api/instances/:id/history", operation: "history"),
        Route(path: "/api/instances/:id/runs", operation: "runs"),
        Route(path: "/api/instances/:id/logs", operation: "logs") { values, _ in
            if values["max_bytes"] == nil { values["max_bytes"] = .number(JSONNumber(1 << 20)) }
        },
        Route(path: "/api/instances/:id/artifacts", operation: "artifacts"),
        Route(path: "/api/instances/:id/trigger", operation: "trigger", post: true) { values, _ in
            var meta = values["meta"]?.objectValue ?? [:]
            meta["triggered_by"] = "chatflow ui"
            values["meta"] = .object(meta)
        },
        // The page's release is its user's: it gives up whoever's claim, without the token.
        Route(path: "/api/instances/:id/release", operation: "release", post: true) { (values, engine) throws(ChatFlowError) in
            guard values["token"] == nil, let id = values["id"]?.stringValue else { return }
            guard let claim = try engine.freshStatus(id)?.currentEntry?.claim else {
                throw .claimMismatch(instanceID: id, reason: "it has no claim to release")
            }
            values["token"] = .string(claim.token)
        },
        Route(path: "/api/instances/:id/rerun", operation: "rerun", post: true),
    ]

    func register(on router: Router<UIRequestContext>) {
        for route in Self.routes {
            let operation = try! Operations.require(route.operation)
            if route.post {
                router.post(route.path) { request, context in
                    await serve(request, context, operation, listing: false, action: true, adjust: route.adjust)
                }
            } else {
                router.get(route.path) { request, context in
                    await serve(request, context, operation, listing: true, action: false, adjust: route.adjust)
                }
            }
        }
        router.get("/api/call/:operation") { request, context in
            do {
                let operation = try Operations.require(try context.parameters.require("operation"))
                guard operation.readOnly else {
                    throw UIError(code: "invalid_input", message: "\(operation.name) changes the record: POST it, as an action")
                }
                return await serve(request, context, operation, listing: false, action: false)
            } catch {
                return Reply.error(error)
            }
        }
        router.post("/api/call/:operation") { request, context in
            do {
                return await serve(request, context, try Operations.require(try context.parameters.require("operation")), listing: false, action: true)
            } catch {
                return Reply.error(error)
            }
        }
    }

    /// One call: the arguments from the query (a read) or from the body behind `ActionGuard`
    /// (an action), the path's parameters over them, what the route adds, then the operation.
    private func serve(
        _ request: Request, _ context: UIRequestContext, _ operation: Operation, listing: Bool, action: Bool,
        adjust: @Sendable (inout [String: JSONValue], WorkflowEngine) throws(ChatFlowError) -> Void = { _, _ in }
    ) async -> Response {
        do {
            if action { try actions.check(request) }
            var values = action ? try await Self.body(request) : try request.arguments(for: operation)
            for (name, value) in context.parameters where name != "operation" { values[String(name)] = .string(String(value)) }
            try adjust(&values, engine)
            let response = try await call(operation, values, listing: listing)
            if action { logger.notice("action", metadata: ["operation": "\(operation.name)", "instance": "\(values["id"]?.stringValue ?? "-")"]) }
            return response
        } catch {
            return Reply.error(error)
        }
    }

    private func call(_ operation: Operation, _ values: [String: JSONValue], listing: Bool) async throws -> Response {
        let result = try await operation.prepare(values, engine: engine, waits: .request).run(changes: changes)
        return Reply.json(listing ? result.printed : result.document)
    }

    /// An action's body: a JSON object of at most 1 MiB (none is `{}`).
    static func body(_ request: Request) async throws -> [String: JSONValue] {
        var request = request
        let bytes: ByteBuffer
        do {
            bytes = try await request.collectBody(upTo: 1 << 20)
        } catch is NIOTooManyBytesError {
            throw UIError(code: "invalid_input", message: "the body is larger than 1 MiB", status: .contentTooLarge)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw UIError(code: "invalid_input", message: "the body is larger than 1 MiB", status: .contentTooLarge)
        }
        guard bytes.readableBytes > 0 else { return [:] }
        let json: JSONValue
        do {
            json = try JSONValue(parsing: Array(bytes.readableBytesView))
        } catch {
            throw UIError(code: "invalid_input", message: "the body is not JSON: \(error)")
        }
        guard case .object(let members) = json else { throw UIError(code: "invalid_input", message: "the body must be a JSON object") }
        return members
    }
}

extension Request {
    /// The query's parameters as an operation's arguments, each read as its schema's type
    /// (`?expect_transition=3` is the integer 3); a value that is not of it stays a string, so
    /// the operation names it in its error.
    func arguments(for operation: Operation) throws(UIError) -> [String: JSONValue] {
        var values: [String: JSONValue] = [:]
        for (key, value) in uri.queryParameters where !value.isEmpty {
            let name = String(key), text = String(value)
            guard values[name] == nil else { throw UIError(code: "invalid_input", message: "query parameter \(name) is given twice") }
            let type = operation.properties[name]?["type"]
            switch type?.stringValue {
            case "string": values[name] = .string(text)
            case "boolean": values[name] = text == "true" ? true : text == "false" ? false : .string(text)
            default:
                // Numbers, objects, arrays and anything-goes take JSON text; a duration may be `5m`.
                values[name] = (try? JSONValue(parsing: Array(text.utf8))) ?? .string(text)
            }
        }
        return values
    }

    /// The named query parameters that are given, as strings.
    func queryValues(_ names: [String]) -> [String: JSONValue] {
        var values: [String: JSONValue] = [:]
        for name in names { if let value = query(name) { values[name] = .string(value) } }
        return values
    }
}
