import ChatFlow
import ChatFlowTestSupport
import Foundation
import Testing

import Glibc

/// `chatflow-ui` in a real browser: headless Chromium driven by selenium (Tests/interop/ui_browser.py),
/// with a real watcher, real hooks and triggers from other processes.
@Suite("The web view, in headless Chromium", .serialized, .timeLimit(.minutes(3)))
struct UITests {
    private static let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test("board, instance page, hook log, live updates from another process, refused cross-site actions and binds")
    func browser() async throws {
        let python = Self.package.appendingPathComponent(".venv-test/bin/python").path
        try #require(FileManager.default.isExecutableFile(atPath: python), "no \(python): run scripts/setup.sh")
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver"), "no chromedriver: run scripts/setup.sh")
        let work = TemporaryDirectory("chatflow-ui")
        let script = Self.package.appendingPathComponent("Tests/interop/ui_browser.py").path
        // CHATFLOW_SCREENSHOTS=docs/screenshots refreshes the pictures README shows.
        let shots = ProcessInfo.processInfo.environment["CHATFLOW_SCREENSHOTS"] ?? work.path
        let result = try await runToEndOffPool(python, [script, binaries.path, work.path, shots])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("all checks passed"), "\(result.stdout)")
        #expect(result.stdout.split(separator: "\n").filter { $0.hasPrefix("ok: ") }.count >= 25)
    }

    @Test("the same page with every process on a PostgreSQL store: live updates through LISTEN",
          .enabled(if: TestDatabase.server != nil, "needs $CHATFLOW_TEST_POSTGRES (scripts/test.sh starts a server)"))
    func browserOnPostgres() async throws {
        let python = Self.package.appendingPathComponent(".venv-test/bin/python").path
        try #require(FileManager.default.isExecutableFile(atPath: python), "no \(python): run scripts/setup.sh")
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver"), "no chromedriver: run scripts/setup.sh")
        let database = try TestDatabase()
        let work = TemporaryDirectory("chatflow-ui")
        let script = Self.package.appendingPathComponent("Tests/interop/ui_browser.py").path
        let result = try await runToEndOffPool(python, [script, binaries.path, work.path, work.path], environment: ["CHATFLOW_STORE": database.url])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("all checks passed"), "\(result.stdout)")
        #expect(try database.sql("SELECT count(*) >= 3 FROM chatflow_instances") == "t\n", "the instances are in the database")
    }

    @Test("chatflow ui runs chatflow-ui; a refused bind exits 2 and names the fix")
    func commandExecsServer() throws {
        let sandbox = Sandbox()
        let result = try run("chatflow", ["ui", "--root", sandbox.root, "--bind", "0.0.0.0", "--port", "0"], environment: ["CHATFLOW_UI_TOKEN": ""])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("--token-file"), "\(result.stderr)")
        let short = try run("chatflow-ui", ["--root", sandbox.root, "--actions", "--port", "0"], environment: ["CHATFLOW_UI_TOKEN": "short"])
        #expect(short.status == 2 && short.stderr.contains("16 characters"), "\(short.stderr)")
        // A busy port names the option that picks another.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        try #require(bound)
        let busy = try run("chatflow-ui", ["--root", sandbox.root, "--port", String(UInt16(bigEndian: address.sin_port))])
        #expect(busy.status == 1 && busy.stderr.contains("already in use") && busy.stderr.contains("--port"), "\(busy.stderr)")
    }
}
