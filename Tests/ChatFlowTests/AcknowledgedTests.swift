import ChatFlowTestSupport
import Foundation
import Testing
@testable import ChatFlow

import Glibc

/// What is acknowledged reads back, and what reads back was acknowledged: the write side keeps
/// the read side's limits, a line past them is never cut off, and a change that committed is
/// never reported as failed.
@Suite("Acknowledged changes")
struct AcknowledgedTests {
    /// `depth` arrays and objects, alternating, around a string.
    private func nested(_ depth: Int) -> JSONValue {
        var value: JSONValue = "leaf"
        for level in 0..<depth { value = level.isMultiple(of: 2) ? .array([value]) : .object(["k": value]) }
        return value
    }

    @Test("user data within the limit reads back equal from a fresh engine (state and history); deeper is refused before anything is written, on start and on trigger", arguments: StoreKind.available)
    func depthLimit(_ kind: StoreKind) throws {
        let store = try TestStore(kind)
        let engine = try store.engine
        let limit = StoredLimits.maximumDataDepth
        let id = try engine.start(schema: fourPhases, featureID: "f", context: ["deep": nested(limit - 1)])
        try engine.trigger(id, data: nested(limit), meta: ["m": nested(limit - 1)])
        let fresh = try store.engine
        let state = try #require(try fresh.freshStatus(id))
        #expect(state.variables["deep"] == nested(limit - 1))
        #expect(state.meta["m"] == nested(limit - 1))
        #expect(try fresh.history(id).first?.triggerDataSnapshot == nested(limit))

        for depth in [limit + 1, 199, 300] {
            #expect(throws: ChatFlowError.self) { try engine.trigger(id, data: nested(depth)) }
            #expect(throws: ChatFlowError.self) { try engine.trigger(id, data: ["x": nested(depth)]) }
            #expect(throws: ChatFlowError.self) { try engine.trigger(id, meta: ["x": nested(depth)]) }
            #expect(throws: ChatFlowError.self) { try engine.fail(id, meta: ["x": nested(depth)]) }
            #expect(throws: ChatFlowError.self) {
                try engine.start(schema: fourPhases, featureID: "f", context: ["x": nested(depth)])
            }
        }
        let after = try #require(try (try store.engine).freshStatus(id))
        #expect(after.historyLength == 2 && after.status == .running, "nothing refused was written")
        #expect(try (try store.engine).history(id).count == 2)
        #expect(StoredLimits.maximumDataDepth + StoredLimits.wrappingDepth <= JSONParser.maximumDepth)
    }

    @Test("a state larger than a reader takes is refused before anything is written")
    func sizeLimit() throws {
        let root = TemporaryRoot()
        let engine = root.engine
        let id = try engine.start(schema: fourPhases, featureID: "f")
        let big = JSONValue.string(String(repeating: "x", count: StateStore.maximumStateBytes))
        #expect {
            try engine.trigger(id, data: ["big": big])
        } throws: { error in
            guard case .invalidJSON(_, let reason) = error as? ChatFlowError else { return false }
            return reason.contains("nothing was changed")
        }
        let fresh = try #require(try root.engine.freshStatus(id))
        #expect(fresh.historyLength == 1 && fresh.historyBytes == 0)
    }

    @Test("a committed history line past the reader's limits (written by an older version) is refused, and never cut off as an uncommitted tail")
    func lineBeyondLimits() throws {
        let root = TemporaryRoot()
        let engine = root.engine
        let id = try engine.start(schema: fourPhases, featureID: "f")
        try engine.trigger(id)
        // An older writer's commit of deep data: the line is there, its view not yet.
        let state = try #require(try engine.freshStatus(id))
        var entry = try #require(state.currentEntry)
        entry.endedAt = Timestamps.unix()
        entry.status = .completed
        entry.triggerDataSnapshot = nested(250)
        var next = state
        next.currentPhase = "testing"
        next.currentEntry = HistoryEntry(phase: "testing", task: nil, startedAt: Timestamps.unix())
        next.historyLength += 1
        let lines = StateStore.commitTexts(next, closing: [entry]).lines
        let history = engine.layout.historyFile(id)
        let file = try FileDescriptor(opening: history, flags: O_WRONLY)
        try file.write(lines, at: state.historyBytes)
        let size = try file.size()
        engine.invalidateAll()
        #expect {
            try root.engine.freshStatus(id)
        } throws: { error in
            guard case .corruptState(_, let reason) = error as? ChatFlowError else { return false }
            return reason.contains("past the reader's limits")
        }
        #expect(throws: ChatFlowError.self) { try root.engine.trigger(id) }
        #expect(try FileDescriptor(opening: history, flags: O_RDONLY).size() == size, "nothing was cut off")
    }

    @Test("a change whose view cannot be written after its commit (the spare cannot be written, as on a full disk) is reported done, reads back, and the next change goes on from it")
    func committedIsDone() throws {
        let root = TemporaryRoot()
        let engine = root.engine
        let id = try engine.start(schema: fourPhases, featureID: "f")
        let spare = engine.layout.stateTempFile(id)
        #expect(unlink(spare) == 0 && mkdir(spare, 0o755) == 0)
        let moved = try engine.trigger(id, data: ["n": 1])
        #expect(moved.currentPhase == "implement")
        let reader = root.engine
        let state = try #require(try reader.freshStatus(id))
        #expect(state.currentPhase == "implement" && state.variables["n"] == 1, "recovered from the commit line")
        #expect(try reader.history(id).map(\.phase) == ["design", "implement"])
        try root.engine.trigger(id)
        #expect(try root.engine.freshStatus(id)?.currentPhase == "testing")
        #expect(rmdir(spare) == 0)
        try root.engine.trigger(id)
        #expect(try root.engine.history(id).map(\.phase) == ["design", "implement", "testing", "review"])
    }
}
