import ChatFlowTestSupport
import Foundation
import Testing

/// The commit protocol against power loss: scripts/crash-check.py records a real trigger's system
/// calls and checks every state a power cut could leave (docs/TORTURE.md).
@Suite("Power loss (a model of the trigger's system calls)", .timeLimit(.minutes(4)))
struct PowerLossTests {
    @Test("every crash state of a trigger reads as before or after it, never torn; acknowledged means there; dropping a sync is caught")
    func crashStates() async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/crash-check.py").path
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/strace"), "no strace: run scripts/setup.sh")
        let result = try await runToEndOffPool("/usr/bin/env", ["python3", script, binaries.path])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("the protocol as written:") && result.stdout.contains(", 0 wrong"), "\(result.stdout)")
        #expect(result.stdout.contains("crash check passed"), "\(result.stdout)")
    }
}
