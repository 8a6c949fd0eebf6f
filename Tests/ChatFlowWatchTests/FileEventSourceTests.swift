import ChatFlowTestSupport
import ChatFlow
import Foundation
import Synchronization
import Testing
@testable import ChatFlowWatch

import Glibc

@Suite("File event source")
struct FileEventSourceTests {
    /// Subscribers never see a file whose content is not final: a created file is reported once
    /// it is closed after writing or renamed into place.
    @Test("a file is reported when written or renamed into place, never when merely created", .timeLimit(.minutes(1)))
    func creationIsNotAChange() async throws {
        let base = NSTemporaryDirectory() + "events-\(UUID().uuidString)"
        let directory = base + "/watched"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let seen = Mutex<[FileEvent]>([])
        let token = try await FileEventSource.shared.subscribe(directory: directory) { event in seen.withLock { $0.append(event) } }
        defer { Task { await FileEventSource.shared.unsubscribe(token) } }

        // Created (and held open, unwritten) first; a renamed file second.
        let held = open(directory + "/created", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        #expect(held >= 0)
        _ = FileManager.default.createFile(atPath: base + "/renamed", contents: Data("x".utf8))
        #expect(rename(base + "/renamed", directory + "/renamed") == 0)
        #expect(await eventually(timeout: 10) { seen.withLock { $0.contains(.changed(name: "renamed")) } })
        // Events arrive in order: had the creation been reported, it would be first.
        #expect(seen.withLock { $0 } == [.changed(name: "renamed")])

        _ = write(held, "y", 1)
        close(held)
        #expect(await eventually(timeout: 10) { seen.withLock { $0.contains(.changed(name: "created")) } })
    }
}
