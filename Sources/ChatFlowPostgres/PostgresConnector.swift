import ChatFlow
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// Where a PostgreSQL store lives: parsed from `postgres://user:password@host:port/database`
/// (or `postgresql://`; `?host=/run/postgresql` for a Unix socket directory).
package struct PostgresLocation: Sendable, CustomStringConvertible {
    package var host: String
    package var port: Int
    package var user: String
    package var password: String?
    package var database: String
    package var socketDirectory: String?

    package init(url: String) throws(ChatFlowError) {
        func bad(_ reason: String) -> ChatFlowError {
            .invalidJSON(what: "store URL \(PostgresLocation.redact(url))", reason: reason + " (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)")
        }
        guard let scheme = url.range(of: "://"), StoreSelection.isPostgres(url) else { throw bad("not a postgres:// URL") }
        var rest = Substring(url[scheme.upperBound...])
        var query: [String: String] = [:]
        if let mark = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: mark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                query[String(parts[0])] = parts.count > 1 ? PostgresLocation.percentDecoded(parts[1]) : ""
            }
            rest = rest[..<mark]
        }
        var authority = rest
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        }
        var credentials: Substring = ""
        if let at = authority.lastIndex(of: "@") {
            credentials = authority[..<at]
            authority = authority[authority.index(after: at)...]
        }
        let userParts = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        user = userParts.first.map { PostgresLocation.percentDecoded($0) } ?? ""
        if user.isEmpty { user = query["user"] ?? "postgres" }
        password = userParts.count > 1 ? PostgresLocation.percentDecoded(userParts[1]) : query["password"]
        port = 5432
        if let colon = authority.lastIndex(of: ":") {
            guard let number = Int(authority[authority.index(after: colon)...]), (1...65535).contains(number) else {
                throw bad("the port is not a number from 1 to 65535")
            }
            port = number
            authority = authority[..<colon]
        }
        host = authority.isEmpty ? "localhost" : String(authority)
        socketDirectory = query["host"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        database = path.isEmpty ? user : PostgresLocation.percentDecoded(path)
    }

    /// The URL without its password, for messages and logs.
    package var description: String {
        "postgres://\(user)@\(socketDirectory ?? host):\(port)/\(database)"
    }

    static func redact(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
        let credentials = url[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }

    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    var configuration: PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if let socketDirectory {
            configuration = .init(
                unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            configuration = .init(host: host, port: port, username: user, password: password, database: database, tls: .disable)
        }
        configuration.options.connectTimeout = .seconds(10)
        return configuration
    }
}

/// Connections to one server, opened on first use and reused; each is held by one caller at a
/// time (a transaction needs its connection to itself). The engine's calls are synchronous, so
/// they wait on NIO futures; the event loop is NIO's own thread, never a caller's.
package final class PostgresConnector: Sendable {
    package let location: PostgresLocation
    private let idle = Mutex<[PostgresConnection]>([])
    private let nextID = Atomic<Int>(1)
    private let logger: Logger

    package init(location: PostgresLocation, logger: Logger = Logger(label: "chatflow.postgres", factory: { _ in SwiftLogNoOpLogHandler() })) {
        self.location = location
        self.logger = logger
    }

    deinit {
        for connection in idle.withLock({ $0 }) { try? (connection.close() as EventLoopFuture<Void>).wait() }
    }

    /// A new connection of its own (the watcher's LISTEN connection is one).
    package func connect() throws(ChatFlowError) -> PostgresConnection {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        return try wait(
            PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.any(), configuration: location.configuration, id: id, logger: logger),
            "connect")
    }

    /// Runs `body` with a connection no one else uses meanwhile; one that failed is not reused.
    package func withConnection<T>(_ body: (PostgresConnection) throws(ChatFlowError) -> T) throws(ChatFlowError) -> T {
        var reused: PostgresConnection?
        // One the server closed meanwhile (a restart) is dropped, not used.
        while let candidate = idle.withLock({ $0.popLast() }) {
            if !candidate.isClosed { reused = candidate; break }
            try? (candidate.close() as EventLoopFuture<Void>).wait()
        }
        let connection: PostgresConnection
        if let reused { connection = reused } else { connection = try connect() }
        do {
            let result = try body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    private func release(_ connection: PostgresConnection) {
        if connection.isClosed { return }
        let kept = idle.withLock { connections -> Bool in
            guard connections.count < 16 else { return false }
            connections.append(connection)
            return true
        }
        if !kept { try? (connection.close() as EventLoopFuture<Void>).wait() }
    }

    /// Runs one statement and collects its rows.
    package func query(_ query: PostgresQuery, on connection: PostgresConnection, _ operation: String) throws(ChatFlowError) -> [PostgresRow] {
        try wait(connection.query(query, logger: logger), operation).rows
    }

    /// Waits for a NIO future from a synchronous caller, turning its failure into a store error.
    package func wait<T: Sendable>(_ future: EventLoopFuture<T>, _ operation: String) throws(ChatFlowError) -> T {
        do {
            return try future.wait()
        } catch {
            throw storeError(operation, error)
        }
    }

    package func storeError(_ operation: String, _ error: any Error) -> ChatFlowError {
        .store(operation: operation, store: location.description, reason: PostgresConnector.reason(error))
    }

    /// The server's message and SQLSTATE when there is one (PSQLError's own description hides them).
    package static func reason(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let info = error.serverInfo, let message = info[.message] {
                return message + (info[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
            }
            return "\(error.code)"
        }
        return "\(error)"
    }

    /// The SQLSTATE of a server error, if it was one.
    package static func sqlState(_ error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }
}
