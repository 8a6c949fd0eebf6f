import ChatFlow
import ChatFlowWatch
import HTTPTypes
import Hummingbird

/// Responses in the command's shapes: JSON as its `--json`, errors as its `--json` errors.
enum Reply {
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        bytes(Array(value.prettyText.utf8) + [0x0A], type: "application/json; charset=utf-8", status: status)
    }

    static func bytes(_ bytes: [UInt8], type: String, status: HTTPResponse.Status = .ok, extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.contentType: type, .cacheControl: "no-store", HTTPField.Name("X-Content-Type-Options")!: "nosniff"]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func error(code: String, message: String, status: HTTPResponse.Status) -> Response {
        json(["error": ["code": .string(code), "message": .string(message)]], status: status)
    }

    /// A thrown error as the one error document, with the HTTP status its code means.
    static func error(_ error: any Error) -> Response {
        let (code, message) = ErrorDocument.describe(error)
        return Self.error(code: code, message: message, status: (error as? UIError)?.status ?? status(for: code))
    }

    /// The JSON `body` returns, or its error.
    static func replying(_ body: () throws -> JSONValue) -> Response {
        do { return json(try body()) } catch { return Reply.error(error) }
    }

    static func status(for code: String) -> HTTPResponse.Status {
        switch code {
        case "not_found": .notFound
        case "invalid_input": .badRequest
        case "conflict", "finished": .conflict
        case "forbidden": .forbidden
        case "unauthorized": .unauthorized
        case "timeout": .gatewayTimeout
        default: .internalServerError
        }
    }
}

/// A refusal by the web view itself (a request or its configuration, not the engine).
public struct UIError: CodedError, Sendable {
    public var code: String
    public var message: String
    /// The HTTP status, where the code's own is not the one (a body too large is 413).
    var status: HTTPResponse.Status?

    public init(code: String, message: String) {
        (self.code, self.message) = (code, message)
    }

    init(code: String, message: String, status: HTTPResponse.Status) {
        (self.code, self.message, self.status) = (code, message, status)
    }
}

extension Request {
    /// A query parameter, if given and not empty.
    func query(_ name: String) -> String? {
        guard let value = uri.queryParameters.get(name), !value.isEmpty else { return nil }
        return String(value)
    }

    func header(_ name: String) -> String? {
        headers[HTTPField.Name(name)!]
    }
}
