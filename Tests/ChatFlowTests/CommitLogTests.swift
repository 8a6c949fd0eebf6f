import ChatFlowTestSupport
import Testing
@testable import ChatFlow

import Glibc

/// The store's commit log on its own: its texts (docs/FORMAT.md, "The commit log"), its ring's
/// laps, and the replay a new boot makes.
@Suite("Commit log")
struct CommitLogTests {
    private let lines = Array(#"{"phase":"a","state":{"x":1}}"#.utf8) + [0x0A]

    @Test("a record reads back as written; a changed byte, a cut or a foreign id is no record")
    func records() {
        let record = CommitLog.record(seq: 42, instance: "wfi_0123456789ab", offset: 1234, lines: lines)
        let log = [UInt8](repeating: 0, count: 100) + record + [UInt8](repeating: 0, count: 600)
        let parsed = CommitLog.parseRecord(log, at: 100)
        #expect(parsed?.seq == 42 && parsed?.instanceID == "wfi_0123456789ab" && parsed?.offset == 1234 && parsed?.lines == lines)
        #expect(parsed?.end == CommitLog.padded(100 + record.count), "the next record starts at a sector")
        #expect(record.count <= CommitLog.recordLength(instance: "wfi_0123456789ab", offset: 1234, lines: lines))
        for index in [5, 14, 20, record.count - 2] {
            var changed = log
            changed[100 + index] ^= 0x01
            #expect(CommitLog.parseRecord(changed, at: 100) == nil, "byte \(index) changed")
        }
        #expect(CommitLog.parseRecord(Array(log.prefix(100 + record.count - 1)), at: 100) == nil, "cut short")
        #expect(CommitLog.parseRecord(log, at: 0) == nil, "zeros")
        let foreign = CommitLog.record(seq: 1, instance: "../../etc/passwd", offset: 0, lines: lines)
        #expect(CommitLog.parseRecord(foreign, at: 0) == nil, "an id that is not an instance id")
    }

    @Test("the header names its lap's first record behind a CRC; the head is fixed-width and refused when torn or foreign")
    func headerAndHead() throws {
        #expect(CommitLog.parseHeader(CommitLog.header(base: 7)) == 7)
        #expect(CommitLog.parseHeader(CommitLog.emptyLog(size: 16384)) == 1)
        var torn = CommitLog.header(base: 7)
        torn[20] = UInt8(ascii: "9")
        #expect(CommitLog.parseHeader(torn) == nil)

        let root = TemporaryRoot()
        try root.engine.prepare()
        let path = root.path + "/head"
        let lock = try FileDescriptor(opening: path, flags: O_RDWR | O_CREAT)
        let head = CommitLog.Head(boot: CommitLog.bootID, seq: 9, offset: 8192)
        try CommitLog.writeHead(lock.rawValue, head, path: path)
        #expect(CommitLog.readHead(lock.rawValue) == head)
        #expect(try lock.size() == CommitLog.headLength)
        for (offset, byte) in [(40, UInt8(ascii: "x")), (78, UInt8(ascii: " ")), (36, UInt8(ascii: "-"))] {
            try CommitLog.writeHead(lock.rawValue, head, path: path)
            try lock.write([byte], at: offset)
            #expect(CommitLog.readHead(lock.rawValue) == nil, "byte \(offset) torn")
        }
        try CommitLog.writeHead(lock.rawValue, CommitLog.Head(boot: CommitLog.bootID, seq: 9, offset: 8193), path: path)
        #expect(CommitLog.readHead(lock.rawValue) == nil, "a record offset that is not a sector")
    }

    @Test("a small ring laps: the header moves on, every commit stays readable, and a new boot's replay restores lost lines")
    func lapsAndReplay() throws {
        let root = TemporaryRoot()
        let engine = root.engine
        try engine.prepare()
        // A 16 KiB log: a dozen commits a lap. A log's ring is the size of its file.
        let layout = engine.layout
        try FileDescriptor(opening: layout.commitLogFile, flags: O_RDWR | O_CREAT).write(CommitLog.emptyLog(size: 16384), at: 0)
        let id = try engine.start(schema: WorkflowSchema(name: "w", phaseNames: (0..<50).map { "p\($0)" }), featureID: "f")
        var sizes: [Int] = []
        for step in 0..<40 {
            _ = try engine.trigger(id, data: ["step": .number(JSONNumber(step))])
            sizes.append(try FileDescriptor(opening: layout.historyFile(id), flags: O_RDONLY).size())
        }
        let log = try FileDescriptor(opening: layout.commitLogFile, flags: O_RDONLY)
        #expect(try log.size() == 16384, "the log never grows")
        let base = CommitLog.parseHeader(try log.read(at: 0, count: 4096))
        #expect((base ?? 0) > 12, "the ring lapped at least once (header base \(String(describing: base)))")
        #expect(try engine.freshStatus(id)?.currentPhase == "p40")

        // A power cut took the last three commits' lines from the history; the next boot replays them.
        let full = try FileDescriptor(opening: layout.historyFile(id), flags: O_RDONLY).readAll(limit: 1 << 20)
        try FileDescriptor(opening: layout.historyFile(id), flags: O_RDWR).truncate(to: sizes[36])
        let lock = try FileDescriptor(opening: layout.commitLockFile, flags: O_RDWR)
        try CommitLog.writeHead(lock.rawValue, CommitLog.Head(boot: Array(repeating: UInt8(ascii: "a"), count: 36), seq: 1, offset: 4096), path: "lock")
        var repaired: Set<String> = []
        try CommitLog(layout: layout).ensureRecovered { repaired = $0 }
        #expect(try FileDescriptor(opening: layout.historyFile(id), flags: O_RDONLY).readAll(limit: 1 << 20) == full)
        #expect(repaired == [id], "the lap's instances get their views repaired")
        #expect(CommitLog.readHead(lock.rawValue)?.boot == CommitLog.bootID, "the head names this boot: no second replay")
        #expect(try root.engine.freshStatus(id)?.historyLength == 41)
    }

    @Test("a head lost from the lock file is found again by replaying, and commits go on after it")
    func lostHead() throws {
        let root = TemporaryRoot()
        let engine = root.engine
        let id = try engine.start(schema: fourPhases, featureID: "f")
        _ = try engine.trigger(id)
        try FileDescriptor(opening: engine.layout.commitLockFile, flags: O_RDWR).truncate(to: 0)
        _ = try root.engine.trigger(id)
        let lock = try FileDescriptor(opening: engine.layout.commitLockFile, flags: O_RDONLY)
        let head = try #require(CommitLog.readHead(lock.rawValue))
        #expect(head.seq == 3, "two records, the next is the third")
        #expect(try root.engine.freshStatus(id)?.currentPhase == "testing")
    }
}
