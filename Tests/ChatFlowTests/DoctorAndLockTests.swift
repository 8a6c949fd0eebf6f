import ChatFlow
import ChatFlowTestSupport
import Foundation
import Testing

import Glibc

private func write(_ path: String, _ text: String) {
    _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
}

@Suite("Doctor and the lock file")
struct DoctorAndLockTests {
    @Test("doctor --fix removes stale temp files and rebuilds links; a corrupt state is reported and left byte for byte")
    func doctorFix() throws {
        let root = TemporaryRoot()
        let engine = root.engine
        let kept = try engine.start(schema: fourPhases, featureID: "login")
        let other = try engine.start(schema: fourPhases, featureID: "login")
        let layout = engine.layout
        // An instance's own temp name is its view's spare, kept; one of an id with no state is stale.
        let spare = layout.stateTempFile(kept)
        let staleState = layout.stateTempFile("wfi_0000000000aa")
        let staleLink = layout.linkTempFile("login")
        let staleArtifact = layout.tasksDirectory(kept) + "/.notes.tmp"
        for path in [staleState, staleLink, staleArtifact] { write(path, "half-written") }
        // The link lost one instance and gained one that does not exist.
        write(layout.linkFile("login"), kept + ",wfi_00000000dead")
        let corrupt = layout.stateFile("wfi_0000000000ff")
        write(corrupt, "{ not json")

        let found = try engine.diagnose(fix: false)
        #expect(found.contains { $0.problem.contains(staleState) && !$0.fixed })
        #expect(!found.contains { $0.problem.contains(spare) }, "a view's spare is not debris")
        #expect(found.contains { $0.problem.contains("does not list 1 instance") })
        #expect(found.contains { $0.problem.contains("wfi_00000000dead") })
        #expect(FileManager.default.fileExists(atPath: staleState), "without --fix nothing is removed")

        let fixed = try engine.diagnose(fix: true)
        for path in [staleState, staleLink, staleArtifact] {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) removed")
        }
        // (The link's temp file is the one the rebuilt link is written through, so it is gone too.)
        for path in [staleState, staleArtifact] { #expect(fixed.contains { $0.problem.contains(path) && $0.fixed }) }
        #expect(FileManager.default.fileExists(atPath: spare))
        #expect(try engine.featureStatus("login").totalInstances == 2)
        #expect(try engine.list(feature: "login").map(\.instanceID).sorted() == [kept, other].sorted())
        #expect(fixed.contains { $0.problem.contains(corrupt) && !$0.fixed })
        #expect(try String(contentsOfFile: corrupt, encoding: .utf8) == "{ not json")

        let again = try engine.diagnose(fix: true)
        #expect(again.allSatisfy { $0.problem.contains(corrupt) || $0.problem.contains("fs.inotify") },
            "only what --fix must not touch is left: \(again.map(\.problem))")
    }

    @Test("the lock file excludes a second holder, names the first by pid, and is free again once released")
    func lockFile() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/locks/watch.lock"
        var (first, _) = try LockFile.tryAcquire(path)
        #expect(first != nil)
        let (second, holder) = try LockFile.tryAcquire(path)
        #expect(second == nil)
        #expect(holder == "\(getpid())")
        // Another process sees the same lock (flock is per open file description).
        let probe = try runToEnd("/usr/bin/flock", ["--nonblock", path, "true"])
        #expect(probe.status == 1)
        first = nil
        // Free again, once no child that another test is spawning (between its fork and its
        // exec it holds a copy of every descriptor, close-on-exec ones too) still has it.
        var third: LockFile?
        let freed = await eventually(timeout: 5) {
            third = try? LockFile.tryAcquire(path).lock
            return third != nil
        }
        #expect(freed)
        _ = first
    }
}
