import ChatFlow
import ChatFlowTestSupport
import Foundation
import Testing

/// One operation, three surfaces: `Tests/interop/conformance.py` calls every operation of the
/// catalogue through the command (`--json` and `chatflow call`), the MCP server (the Python
/// `mcp` client) and the web view's `/api/`, and compares the documents and the error codes.
@Suite("Every operation the same on the command, MCP and the web API", .serialized, .timeLimit(.minutes(2)))
struct SurfacesTests {
    private static let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    private let script = package.appendingPathComponent("Tests/interop/conformance.py").path
    private let python = package.appendingPathComponent(".venv-test/bin/python").path

    @Test("each operation's document and error code agree across chatflow --json, chatflow call, MCP tools/call and /api/")
    func conformance() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: python), "no \(python): run scripts/setup.sh (it makes the venv with mcp)")
        let work = TemporaryDirectory("chatflow-surfaces")
        let result = try await runToEndOffPool(python, ["-W", "ignore::DeprecationWarning", script, binaries.path, work.path])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("all checks passed"), "\(result.stdout)")
        let checks = result.stdout.split(separator: "\n").filter { $0.hasPrefix("ok: ") }
        // Every operation is named in at least one check, so one added to the catalogue without
        // a comparison fails here.
        for operation in Operations.all {
            #expect(checks.contains { $0.contains(operation.name) }, "\(operation.name) is compared across the surfaces")
        }
        #expect(checks.count >= 100, "\(checks.count) checks")
    }
}
