import ChatFlow
import ChatFlowHarness
import Foundation

import Glibc

extension Bench {
    // MARK: 14. the web view

    /// `chatflow-ui` on 1,000 instances: the board's JSON served (what the page loads), the
    /// server's RSS, and a writer's commit → the change event on an open page's event stream
    /// (what makes the page fetch and redraw the card).
    func ui() throws {
        let engine = WorkflowEngine(root: newRoot("ui"))
        let schema = WorkflowSchema(name: "dev", phaseNames: ["design", "implement", "testing", "review", "done"])
        let ids = try (0..<1000).map { index in try engine.start(schema: schema, featureID: "f\(index % 20)") }
        for id in ids.prefix(500) { try engine.trigger(id) }
        let server = Process()
        server.executableURL = try executable("chatflow-ui")
        server.arguments = ["--root", engine.root, "--port", "0"]
        let errors = Pipe()
        server.standardError = errors
        try server.run()
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        let lines = ResponseReader(errors.fileHandleForReading.fileDescriptor)
        guard let line = lines.line(containing: "serving"), let port = line.split(separator: ":").last.flatMap({ Int($0.prefix { $0.isNumber }) }) else {
            throw HarnessError.failed("chatflow-ui did not start")
        }
        var board = Samples()
        for _ in 0..<(quick ? 10 : 40) {
            let started = Timestamps.monotonic()
            let body = try HTTPProbe.get(port: port, path: "/api/board")
            guard body.contains("\"instances\"") else { throw HarnessError.failed("no board: \(body.prefix(200))") }
            board.add(seconds: Timestamps.monotonic() - started)
        }
        record(board.figure("ui.board_1000_instances", note: "GET /api/board (every card, runs included), whole response"))
        var page = Samples()
        for _ in 0..<(quick ? 10 : 40) {
            let started = Timestamps.monotonic()
            _ = try HTTPProbe.get(port: port, path: "/")
            page.add(seconds: Timestamps.monotonic() - started)
        }
        record(page.figure("ui.page_shell", note: "GET / (HTML from the binary; the script then loads the board)"))

        let events = try HTTPProbe.stream(port: port, path: "/api/events")
        defer { close(events.fd) }
        // The server subscribes the stream before it answers: until the status line is here, a
        // trigger's event could be published before this stream exists, and never arrive.
        guard events.reader.line(containing: "HTTP/1.1 200") != nil else { throw HarnessError.failed("no answer on /api/events") }
        var update = Samples()
        var card = Samples()
        for round in 0..<(quick ? 40 : 300) {
            let id = ids[500 + round % 500]
            try engine.trigger(id, to: round % 2 == 0 ? "implement" : "design")
            let returned = Timestamps.unix()
            // A `rescan` frame (the server's watch overflowed) tells the page to read everything,
            // which covers this change too.
            guard events.reader.line(where: { $0.contains(id) || $0 == "event: rescan" }) != nil else {
                throw HarnessError.failed("no event for \(id) within 10 s on /api/events")
            }
            update.add(seconds: Timestamps.unix() - returned)
            // What the page does on the event before it redraws: fetch that one card.
            guard try HTTPProbe.get(port: port, path: "/api/board?id=\(id)").contains(id) else { throw HarnessError.failed("no card for \(id)") }
            card.add(seconds: Timestamps.unix() - returned)
        }
        record(update.figure("ui.commit_to_event", note: "writer's trigger returned → its change event on an open event stream"))
        record(card.figure("ui.commit_to_card", note: "… and the page's fetch of that card, done: what it draws; target p99 ≤ 100 ms"))
        let status = read("/proc/\(server.processIdentifier)/status")
        let rss = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }.flatMap { Double($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        record(Figure(name: "ui.server_rss", unit: "MB", n: 1000, value: rss / 1024, note: "after serving the board of 1,000 and the events"))
    }
}

/// A bare HTTP/1.1 client on loopback: no library between the benchmark and the server.
enum HTTPProbe {
    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw HarnessError.failed("connect to port \(port): errno \(errno)") }
        return fd
    }

    static func send(_ fd: Int32, path: String, close: Bool) throws {
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(close ? "Connection: close\r\n" : "")\r\n"
        try writeAll(fd, Array(request.utf8), operation: "send", path: path)
    }

    /// The whole response (headers and body) of a request on its own connection.
    static func get(port: Int, path: String) throws -> String {
        let fd = try connect(port: port)
        defer { Glibc.close(fd) }
        try send(fd, path: path, close: true)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func stream(port: Int, path: String) throws -> (fd: Int32, reader: ResponseReader) {
        let fd = try connect(port: port)
        // A missed event then fails the scenario by name instead of hanging the benchmark.
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        try send(fd, path: path, close: false)
        return (fd, ResponseReader(fd))
    }
}
