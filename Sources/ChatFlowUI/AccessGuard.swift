import HTTPTypes
import Hummingbird

/// Who may ask: on loopback without a token, only requests whose Host is a loopback name (a
/// page on another site that rebinds its name to 127.0.0.1 is refused); with a token, only
/// requests that carry it (`Authorization: Bearer`, `X-ChatFlow-Token`, the cookie a
/// `?token=` visit sets). Actions are checked again where they are handled (`ActionGuard`).
struct AccessGuard<Context: RequestContext>: RouterMiddleware {
    let token: String?
    let bindHost: String

    static var loopbackNames: Set<String> { ["127.0.0.1", "localhost", "[::1]", "::1"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token else {
            let host = Self.hostName(request.head.authority ?? "")
            guard Self.loopbackNames.contains(host) || host == bindHost else {
                return Reply.error(code: "forbidden", message: "Host \(host) is not this server's (loopback only without a token)", status: .forbidden)
            }
            return try await next(request, context)
        }
        if Self.presented(request) == token { return try await next(request, context) }
        if request.query("token") == token {
            // A link with ?token= signs the browser in with a cookie, then drops the token from the address.
            // To this server's own path only: `//evil.example/` is a protocol-relative address.
            let path = "/" + request.uri.path.drop { $0 == "/" || $0 == "\\" }
            var response = Response(status: .seeOther, headers: [.location: String(path)])
            response.headers[.setCookie] = "chatflow_token=\(token); HttpOnly; SameSite=Strict; Path=/"
            return response
        }
        return Reply.error(code: "unauthorized", message: "this server needs its access token (open the URL it printed, with ?token=…)", status: .unauthorized)
    }

    /// The token a request carries, if any.
    static func presented(_ request: Request) -> String? {
        if let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer ") {
            return String(authorization.dropFirst(7))
        }
        if let header = request.header("X-ChatFlow-Token") { return header }
        for cookie in request.headers[values: .cookie].flatMap({ $0.split(separator: ";") }) {
            let parts = cookie.trimmingPrefix(" ").split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == "chatflow_token" { return String(parts[1]) }
        }
        return nil
    }

    /// `host:port` → `host` (`[::1]:8080` → `[::1]`).
    static func hostName(_ authority: String) -> String {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") { return String(authority[...close]) }
        return String(authority.split(separator: ":").first ?? "")
    }
}

/// What an action (a write) must show besides access: actions are on (`--actions`), the token is
/// in a header (a cross-site form or image cannot set one; a cookie alone is not enough), the
/// request is JSON, and no browser says it comes from another origin.
struct ActionGuard: Sendable {
    let enabled: Bool
    let token: String?

    func check(_ request: Request) throws(UIError) {
        guard enabled, let token else {
            throw UIError(code: "forbidden", message: "actions are off: start chatflow ui with --actions")
        }
        let header = request.header("X-ChatFlow-Token") ?? request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        guard header == token else {
            throw UIError(code: "forbidden", message: "an action needs the access token in the X-ChatFlow-Token header")
        }
        let host = request.head.authority ?? ""
        if let origin = request.headers[.origin], origin != "http://\(host)" {
            throw UIError(code: "forbidden", message: "a request from origin \(origin) may not act here (cross-site)")
        }
        if let site = request.header("Sec-Fetch-Site"), site != "same-origin", site != "none" {
            throw UIError(code: "forbidden", message: "a \(site) request may not act here")
        }
        let mediaType = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard mediaType == "application/json" else {
            throw UIError(code: "forbidden", message: "an action's body must be application/json")
        }
    }
}

/// Headers on every response: no page of this server is framed by another site
/// (`frame-ancestors`, `X-Frame-Options`), and its pages run only this server's script (CSP;
/// the script sets style attributes, so inline style is allowed), so text from state files can
/// never run as script even if it reached markup.
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        return response
    }
}
