import ChatFlow
import ChatFlowHarness
import Foundation

import Glibc

extension Torture {
    // MARK: 15. Hostile clients

    /// The web view and the MCP server under the attacks of a hostile page and a hostile client:
    /// each held, counted (curl for HTTP; the MCP server over pipes).
    func hostileClients() throws {
        guard system("command -v curl >/dev/null 2>&1") == 0 else {
            tally("hostile_clients", tried: 0, wrong: 0, note: "skipped: needs curl")
            return
        }
        let root = newRoot("clients")
        let engine = WorkflowEngine(root: root)
        let schema = WorkflowSchema(name: "c", phaseNames: ["a", "b", "c"])
        let first = try engine.start(schema: schema, featureID: "c")
        let second = try engine.start(schema: schema, featureID: "c")
        let grant = try engine.claim(phase: "a", owner: "holder", ttl: 600)
        let held = grant?.instanceID ?? first
        // The other instance is the one acted on (the claimed one would refuse without its token).
        let id = held == first ? second : first
        let token = "torture-token-0123456789"
        let tokenFile = root + "/../token"
        try token.write(toFile: tokenFile, atomically: false, encoding: .utf8)
        let checks = Checks()
        let check = checks.check

        // The web view.
        let log = root + "/../ui.log"
        let ui = try process("chatflow-ui", ["--root", root, "--port", "0", "--actions", "--token-file", tokenFile, "--idle-timeout", "2"], stderr: log)
        defer { stop(ui) }
        try waitFor("the web view", timeout: 20) { read(log).contains("serving") }
        guard let start = read(log).range(of: "http://"), let end = read(log)[start.lowerBound...].range(of: "/?") else {
            throw HarnessError.failed("no URL in \(read(log))")
        }
        let base = String(read(log)[start.lowerBound..<end.lowerBound])
        func curl(_ arguments: [String]) throws -> String {
            try run("/usr/bin/curl", ["-s", "-i", "-m", "10"] + arguments).stdout
        }
        let auth = ["-H", "X-ChatFlow-Token: \(token)"]
        check("no token, no API", try curl([base + "/api/board"]).contains(" 401"))
        let redirect = try curl([base + "//evil.example/?token=\(token)"])
        check("a token link redirects only to this server", redirect.contains(" 303") && !redirect.lowercased().contains("location: //"))
        let page = try curl(auth + [base + "/"])
        check("CSP and no framing", page.contains("frame-ancestors 'none'") && page.contains("X-Frame-Options: DENY") || page.lowercased().contains("x-frame-options: deny"))
        let action = base + "/api/instances/\(id)/trigger"
        check("application/jsonfoo refused", try curl(auth + ["-X", "POST", "-H", "Content-Type: application/jsonfoo", "-d", "{}", action]).contains(" 403"))
        let big = root + "/../big.json"
        try ("{\"data\": \"" + String(repeating: "x", count: 2 << 20) + "\"}").write(toFile: big, atomically: false, encoding: .utf8)
        check("a 2 MiB body is 413", try curl(auth + ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@" + big, action]).contains(" 413"))
        check("another origin refused", try curl(auth + ["-X", "POST", "-H", "Content-Type: application/json", "-H", "Origin: http://evil.example", "-d", "{}", action]).contains(" 403"))
        check("a cookie alone refused", try curl(["-X", "POST", "-H", "Content-Type: application/json", "-b", "chatflow_token=\(token)", "-d", "{}", action]).contains(" 403"))
        check("refused actions changed nothing", (try? engine.freshStatus(id)?.currentPhase) == "a")
        let traversal = try curl(auth + ["--path-as-is", base + "/api/instances/..%2F..%2F..%2Fetc/artifacts/passwd", base + "/static/../../etc/passwd"])
        check("no path leads out", !traversal.contains("root:x:0:0"))
        let status = try curl(auth + [base + "/api/instances/\(held)"])
        check("a claim's token is not shown", status.contains("holder") && !status.contains(grant?.claim.token ?? "no token"))
        // A connection that sends nothing is closed.
        let silent = try run("/usr/bin/curl", ["-s", "-m", "10", "telnet://" + base.dropFirst(7)], timeout: 15)
        check("a silent connection closed within the idle timeout", !silent.timedOut)
        let port = UInt16(base.split(separator: ":").last.map(String.init) ?? "") ?? 0
        // Slowloris: a request head sent a header a second is closed by the idle timeout.
        if let slow = connect(port) {
            let began = Timestamps.monotonic()
            var open = send(slow, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            while open && Timestamps.monotonic() - began < 10 {
                usleep(500_000)
                open = send(slow, "X-Slow: 1\r\n") && !closedByPeer(slow)
            }
            close(slow)
            check("a request head sent slowly is closed (after \(Int(Timestamps.monotonic() - began)) s)", !open)
        } else {
            check("connect for the slow request", false)
        }
        // 500 pages on the event stream: the server still answers, and frees them when they go.
        func descriptors() -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(ui.processIdentifier)/fd")) ?? []).count }
        let idle = descriptors()
        var streams: [Int32] = []
        for _ in 0..<500 {
            guard let fd = connect(port) else { break }
            _ = send(fd, "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-ChatFlow-Token: \(token)\r\n\r\n")
            streams.append(fd)
        }
        let answering = streams.filter { receive($0, until: "retry:", timeout: 10) }.count
        let board = try curl(auth + [base + "/api/board"])
        check("500 event streams served (\(answering)) and the board still answers", answering == 500 && board.contains(" 200"))
        streams.forEach { _ = close($0) }
        let left = settled(atMost: idle + 5, within: 10, descriptors)
        check("500 closed event streams freed (descriptors \(idle) → \(left))", left <= idle + 5)

        // Log follows end with their clients, and do not hold the server at shutdown.
        writeHook(root, "b", "#!/bin/sh\necho started\nexec sleep 60\n")
        let watchLog = root + "/../watch.log"
        let watcher = try startWatcher(root, ["--shutdown-grace", "1"], log: watchLog)
        defer { stop(watcher) }
        try waitFor("the watcher", timeout: 20) { read(watchLog).contains("watching ") }
        _ = try run("chatflow", ["--root", root, "trigger", id])
        try waitFor("the hook", timeout: 20) { (try? run("chatflow", ["--root", root, "runs", id]).stdout.contains("running")) == true }
        func threads() -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(ui.processIdentifier)/task")) ?? []).count }
        let before = threads()
        for _ in 0..<30 { _ = try run("/usr/bin/curl", ["-s", "-m", "1", "-H", "X-ChatFlow-Token: \(token)", base + "/api/instances/\(id)/logs/follow"]) }
        let after = settled(atMost: before + 2, within: 10, threads)
        check("30 closed follows leave no thread (\(before) → \(after))", after <= before + 2)
        let open = try process("/usr/bin/curl", ["-s", "-N", "-H", "X-ChatFlow-Token: \(token)", base + "/api/instances/\(id)/logs/follow"])
        usleep(300_000)
        ui.terminate()
        let stopBy = Timestamps.monotonic() + 10
        while ui.isRunning && Timestamps.monotonic() < stopBy { usleep(50_000) }
        check("SIGTERM ends the server with a follow open", !ui.isRunning)
        open.terminate()
        stop(watcher)

        // The MCP server.
        func mcp(_ input: [UInt8]) throws -> (Outcome, String) {
            let file = root + "/../mcp.in"
            try Data(input).write(to: URL(fileURLWithPath: file))
            let outcome = try run("/bin/sh", ["-c", "exec \(binaries)/chatflow-mcp --root '\(root)' < '\(file)'"], timeout: 20)
            return (outcome, outcome.stdout)
        }
        let initialize = #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#
        var lines = [#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"list","arguments":{}}}"#, initialize]
        for odd in ["1.5", "{}", "[1]", "true"] {
            lines.append(#"{"jsonrpc":"2.0","id":\#(odd),"method":"tools/call","params":{"name":"list","arguments":{}}}"#)
        }
        let (ended, replies) = try mcp(Array((lines.joined(separator: "\n") + "\n").utf8))
        check("MCP ends at the end of input whatever the ids", !ended.timedOut && ended.status == 0)
        check("MCP refuses a call before initialize", replies.contains("-32002"))
        var long = Array((initialize + "\n").utf8)
        long += [UInt8](repeating: UInt8(ascii: "x"), count: 100 << 20)
        long += Array(("\n" + #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"status","arguments":{"id":"\#(held)"}}}"# + "\n").utf8)
        let (bounded, answers) = try mcp(long)
        check("MCP drops a 100 MB line and goes on", !bounded.timedOut && answers.contains("larger than") && answers.contains("holder"))
        check("MCP shows no claim token", !answers.contains(grant?.claim.token ?? "no token"))
        tally("hostile_clients", checks, passed: "web view and MCP server held every attack")
    }
}

/// A TCP connection to the loopback port, for requests curl cannot make (slow, or 500 at once).
private func connect(_ port: UInt16) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        return nil
    }
    return fd
}

private func send(_ fd: Int32, _ text: String) -> Bool {
    let bytes = Array(text.utf8)
    return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
}

/// Whether `text` arrives within `timeout` seconds.
private func receive(_ fd: Int32, until text: String, timeout: Double) -> Bool {
    let deadline = Timestamps.monotonic() + timeout
    var received = ""
    var buffer = [UInt8](repeating: 0, count: 4096)
    while !received.contains(text) {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let left = deadline - Timestamps.monotonic()
        guard left > 0, poll(&poller, 1, Int32(left * 1000)) == 1 else { return false }
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return false }
        received += String(decoding: buffer[..<count], as: UTF8.self)
    }
    return true
}

/// The peer closed the connection (end of input or a reset), without waiting.
private func closedByPeer(_ fd: Int32) -> Bool {
    var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    guard poll(&poller, 1, 0) == 1 else { return false }
    var byte: UInt8 = 0
    return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) <= 0
}
