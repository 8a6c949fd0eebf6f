import CChatFlowShims
import Glibc
import Synchronization

/// The store's commit log, `<root>/commit.log` (docs/FORMAT.md, "The commit log"): one file,
/// made whole once and never grown, that every commit of every instance writes its history lines
/// into, in place, durably. That write is the commit; the history append and the view are left
/// unsynced.
///
/// Why one file: a commit that syncs its own instance's history also writes that file's inode
/// block (its size and mtime changed), a device round trip more than SQLite's WAL, whose one file
/// keeps its size. Over 1,000 instances that was the whole gap to SQLite (docs/BENCHMARKS.md, "the
/// store's commit log"). Here every commit syncs the same file, which keeps its size and changes
/// its mtime at most once per clock tick.
///
/// What the unsynced appends cost: after a power cut a history may lack lines whose commit was
/// acknowledged. The first process of each boot that touches the store (`ensureRecovered`)
/// replays the log's records into the histories before anything reads them; the lock file
/// records the boot it was done in (`/proc/sys/kernel/random/boot_id`), so every later process
/// of that boot sees it with one read. Before the ring wraps over old records, `checkpoint`
/// makes every history durable (`syncfs`). A process that commits keeps the log and its lock
/// open; one that only reads keeps nothing open.
package final class CommitLog: Sendable {
    /// A new log's size (the header block, then the ring of records): about 1,000 commits of a
    /// typical state per lap, and a lap ends in one `syncfs`. A log's ring is whatever size its
    /// file has; `CHATFLOW_COMMIT_LOG_SIZE` sets a new one's (the power-loss check makes small ones).
    static let defaultSize = 1 << 20
    /// The first record's offset (the header is one sector at 0).
    static let dataStart = 4096
    /// Records start at multiples of a sector, so that a commit can be written with `O_DIRECT`.
    static let sector = 512

    let layout: Layout
    /// The log's and its lock's descriptors, opened on first use and kept; the mutex also
    /// excludes this process's own threads, which share the flock's open file description.
    private let files = Mutex(Files())
    /// Set once this process has seen that the store needs no replay in this boot.
    private let recovered = Atomic<Bool>(false)

    private struct Files {
        /// Opened `O_DIRECT | O_DSYNC` where the file system allows (else `O_DSYNC`): a commit is
        /// one `pwrite` that returns once it is durable, without the page cache's writeback
        /// (measured: 25 µs of CPU a commit against 32 µs for `pwrite` + `fdatasync`, and about
        /// a tenth less wall time, docs/BENCHMARKS.md).
        var log: Int32 = -1
        /// The log's size, read when it is opened: the end of its ring.
        var size = 0
        var lock: Int32 = -1
    }

    /// `layout.commitLogFile` and `layout.commitLockFile`, built once (every commit names them).
    let logPath: String
    let lockPath: String

    init(layout: Layout) {
        self.layout = layout
        logPath = layout.commitLogFile
        lockPath = layout.commitLockFile
    }

    deinit {
        files.withLock { files in
            if files.log >= 0 { close(files.log) }
            if files.lock >= 0 { close(files.lock) }
        }
    }

    // MARK: Recovery

    /// Makes sure no history lacks a commit the log holds: a no-op (one read of the lock file,
    /// once per process) unless this is the first use of the store since the machine booted, when
    /// it replays the log (the histories' last lines may have been lost with the page cache).
    /// Call before reading a state or history. After a replay, and before the head names this
    /// boot, `repairViews` gets every instance the replayed lap named: the only instances whose
    /// views (written without syncs since the lap began) a power cut can have torn.
    package func ensureRecovered(
        repairViews: (Set<String>) throws(ChatFlowError) -> Void = { _ in }
    ) throws(ChatFlowError) {
        if recovered.load(ordering: .acquiring) { return }
        // The mutex only keeps this process's threads from replaying twice.
        try files.withLock { (_) throws(ChatFlowError) in
            // No log: every commit so far synced its own history (or none was made).
            guard FileSystem.exists(logPath) else { return }
            // Descriptors of its own, closed on return (which also releases the flock): a
            // process that only reads keeps nothing of the store open for writing (a store on a
            // file system that is to be remounted read-only, a directory to be removed).
            let lock: FileDescriptor
            var writable = true
            do throws(ChatFlowError) {
                try FileSystem.createDirectory(layout.locksDirectory)
                lock = try FileDescriptor(opening: lockPath, flags: O_RDWR | O_CREAT)
            } catch {
                guard case .io(_, _, let code) = error, code == EACCES || code == EROFS else { throw error }
                lock = try FileDescriptor(opening: lockPath, flags: O_RDONLY)
                writable = false
            }
            if let head = CommitLog.readHead(lock.rawValue), head.boot == CommitLog.bootID { return }
            try lock.lockExclusive()
            if let head = CommitLog.readHead(lock.rawValue), head.boot == CommitLog.bootID { return }
            guard writable else {
                throw .store(
                    operation: "recover", store: layout.root,
                    reason: "the machine restarted since its last commit, and this process cannot write \(lockPath) to replay \(logPath): run `chatflow doctor` as the store's owner first")
            }
            let fd = CommitLog.openForCommits(logPath)
            guard fd >= 0 else { throw .io(operation: "open", path: logPath, errno: errno) }
            let log = FileDescriptor(adopting: fd, path: logPath)
            try replay(log: log.rawValue, size: try CommitLog.checkedSize(log), lock: lock.rawValue, repairViews: repairViews)
        }
        recovered.store(true, ordering: .releasing)
    }

    /// Replays every record of the current lap into its history where the history lacks it, and
    /// records this boot and the head in the lock file. With the log lock. The replayed lines are
    /// not synced: a power cut before the next checkpoint makes the next boot replay them again.
    private func replay(
        log: Int32, size: Int, lock: Int32, repairViews: (Set<String>) throws(ChatFlowError) -> Void = { _ in }
    ) throws(ChatFlowError) {
        let path = logPath
        // Read through the page cache: the log's own descriptor may be O_DIRECT.
        let reader = try FileDescriptor(opening: path, flags: O_RDONLY)
        let bytes = try reader.read(at: 0, count: size)
        guard let base = CommitLog.parseHeader(bytes) else {
            // Only a checkpoint rewrites the header, after its syncfs: nothing here needs a
            // replay. A fresh ring, so no record of an earlier lap is mistaken for this one's.
            try resetRing(log: log, size: size, lock: lock)
            return
        }
        var head = Head(boot: CommitLog.bootID, seq: base, offset: CommitLog.dataStart)
        var replayed = Set<String>()
        while let record = CommitLog.parseRecord(bytes, at: head.offset), record.seq == head.seq {
            try apply(record)
            replayed.insert(record.instanceID)
            head.seq += 1
            head.offset = record.end
        }
        try repairViews(replayed)
        try CommitLog.writeHead(lock, head, path: lockPath)
    }

    /// Writes one record's lines into its history unless they are there.
    private func apply(_ record: Record) throws(ChatFlowError) {
        let id = record.instanceID
        // Removed since (its state file and directory gone): not brought back.
        guard FileSystem.exists(layout.instanceDirectory(id)) || FileSystem.exists(layout.stateFile(id)) else { return }
        let root = RootDirectory(path: layout.root)
        try root.makeDirectories(layout.instanceDirectory(id))
        let file = try root.open(layout.historyFile(id), flags: O_RDWR | O_CREAT)
        if try file.read(at: record.offset, count: record.lines.count) == record.lines { return }
        try file.write(record.lines, at: record.offset)
    }

    // MARK: Appending

    /// Appends the commit of `lines`, written to `instance`'s history at `offset`, and syncs the
    /// log: the commit point. `false` when the lines are too large for the log (the caller then
    /// syncs the history itself, the format 2 commit).
    func append(instance: String, at offset: Int, lines: [UInt8]) throws(ChatFlowError) -> Bool {
        let longest = CommitLog.padded(CommitLog.recordLength(instance: instance, offset: offset, lines: lines))
        return try files.withLock { (files) throws(ChatFlowError) -> Bool in
            let lock = try openLock(&files)
            try lockExclusive(lock)
            defer { flock(lock, LOCK_UN) }
            let log = try openLog(&files, creating: lock)
            let size = files.size
            guard longest <= size - CommitLog.dataStart else { return false }
            var head: Head
            if let known = CommitLog.readHead(lock), known.boot == CommitLog.bootID, known.offset <= size {
                head = known
            } else {
                // The lock file lost its text (or the log was made without one): replay, which
                // finds the head (records already in their histories are left alone). This boot
                // was replayed before this process wrote (`ensureRecovered`), so no view is torn.
                try replay(log: log, size: size, lock: lock)
                guard let found = CommitLog.readHead(lock) else {
                    throw .corruptState(path: lockPath, reason: "unreadable right after it was written")
                }
                head = found
            }
            let record = CommitLog.record(seq: head.seq, instance: instance, offset: offset, lines: lines)
            let length = CommitLog.padded(record.count)
            if head.offset + length > size {
                try checkpoint(log: log, nextSeq: head.seq)
                head.offset = CommitLog.dataStart
            }
            // O_DSYNC: durable when it returns.
            try CommitLog.writeSectors(log, record, at: head.offset, path: logPath)
            head.seq += 1
            head.offset += length
            try CommitLog.writeHead(lock, head, path: lockPath)
            return true
        }
    }

    /// Ends a lap: every history (and every other file) made durable, so the records about to be
    /// overwritten are no longer needed; then the header names the next lap's first record.
    private func checkpoint(log: Int32, nextSeq: Int) throws(ChatFlowError) {
        try syncFileSystem(log)
        try CommitLog.writeSectors(log, CommitLog.header(base: nextSeq), at: 0, path: logPath)
    }

    private func syncFileSystem(_ log: Int32) throws(ChatFlowError) {
        _ = try retryingEINTR("syncfs", layout.root) { chatflow_syncfs(log) }
    }

    /// A ring of zeros and a header at sequence 1, after a header a power cut tore.
    private func resetRing(log: Int32, size: Int, lock: Int32) throws(ChatFlowError) {
        try CommitLog.writeSectors(log, CommitLog.emptyLog(size: size), at: 0, path: logPath)
        try CommitLog.writeHead(lock, Head(boot: CommitLog.bootID, seq: 1, offset: CommitLog.dataStart), path: lockPath)
    }

    // MARK: Files

    /// The log's lock, opened by the first commit and kept, as the log is: a process that
    /// commits keeps both open (as SQLite keeps its database open), saving two opens a commit.
    private func openLock(_ files: inout Files) throws(ChatFlowError) -> Int32 {
        if files.lock >= 0 { return files.lock }
        let path = lockPath
        var fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 && errno == ENOENT {
            try FileSystem.createDirectory(layout.locksDirectory)
            fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        }
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        files.lock = fd
        return fd
    }

    /// The log, opened once; with `creating` (the log lock's descriptor, held), made if missing.
    private func openLog(_ files: inout Files, creating lock: Int32? = nil) throws(ChatFlowError) -> Int32 {
        if files.log >= 0 { return files.log }
        let path = logPath
        var fd = CommitLog.openForCommits(path)
        if fd < 0 && errno == ENOENT, let lock {
            try createLog()
            fd = CommitLog.openForCommits(path)
            if fd >= 0 {
                try CommitLog.writeHead(lock, Head(boot: CommitLog.bootID, seq: 1, offset: CommitLog.dataStart), path: lockPath)
            }
        }
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        let file = FileDescriptor(adopting: fd, path: path)
        files.size = try CommitLog.checkedSize(file)
        files.log = file.release()
        return fd
    }

    /// The log's size, the end of its ring; refused unless whole sectors past the header.
    private static func checkedSize(_ log: borrowing FileDescriptor) throws(ChatFlowError) -> Int {
        let size = try log.size()
        guard size >= dataStart + 4096, size % 4096 == 0 else {
            throw .corruptState(path: log.path, reason: "\(size) bytes: a commit log is a multiple of 4096 bytes, at least 8192 (move it aside only after `chatflow doctor` has read every instance)")
        }
        return size
    }

    /// Makes the log whole and durable under its temp name, then renames it in: a log that
    /// exists is always whole (its ring written, so no commit allocates or converts a block).
    private func createLog() throws(ChatFlowError) {
        let temp = layout.commitLogTempFile
        do {
            let file = try FileDescriptor(opening: temp, flags: O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW)
            try file.write(CommitLog.emptyLog(size: try CommitLog.newLogSize(root: layout.root)), at: 0)
            try file.syncData()
        } catch {
            unlink(temp)   // a full disk: the megabyte back
            throw error
        }
        if rename(temp, logPath) != 0 {
            throw .io(operation: "rename \(temp) to", path: logPath, errno: errno)
        }
        try FileSystem.syncDirectory(layout.root)
    }

    /// `O_DIRECT | O_DSYNC`, or `O_DSYNC` where the file system refuses direct I/O (tmpfs).
    private static func openForCommits(_ path: String) -> Int32 {
        let fd = open(path, O_RDWR | O_CLOEXEC | O_DSYNC | chatflow_o_direct())
        if fd < 0 && errno == EINVAL { return open(path, O_RDWR | O_CLOEXEC | O_DSYNC) }
        return fd
    }

    /// A sector-aligned offset's write of `bytes`, zero-padded to whole sectors, from memory
    /// aligned as direct I/O needs.
    private static func writeSectors(_ fd: Int32, _ bytes: [UInt8], at offset: Int, path: String) throws(ChatFlowError) {
        let length = padded(bytes.count)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 4096)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        var written = 0
        while written < length {
            written += try retryingEINTR("write", path) {
                pwrite(fd, buffer.baseAddress! + written, length - written, off_t(offset + written))
            }
        }
    }

    /// `count` rounded up to whole sectors.
    static func padded(_ count: Int) -> Int { (count + sector - 1) / sector * sector }

    private func lockExclusive(_ fd: Int32) throws(ChatFlowError) {
        _ = try retryingEINTR("lock", lockPath) { flock(fd, LOCK_EX) }
    }

    /// The size of a log made now: `CHATFLOW_COMMIT_LOG_SIZE`, else 1 MiB.
    static func newLogSize(root: String) throws(ChatFlowError) -> Int {
        guard let text = getenv("CHATFLOW_COMMIT_LOG_SIZE").map({ String(cString: $0) }) else { return defaultSize }
        guard let size = Int(text), size >= 16384, size <= 1 << 30, size % 4096 == 0 else {
            throw .store(
                operation: "make the commit log", store: root,
                reason: "CHATFLOW_COMMIT_LOG_SIZE=\(text) is not a number of bytes that is a multiple of 4096 from 16384 to 1073741824")
        }
        return size
    }

    // MARK: Texts (docs/FORMAT.md)

    /// The current boot (`/proc/sys/kernel/random/boot_id`). Unreadable, a value of this process
    /// alone, so it replays (safe, and only slow).
    static let bootID: [UInt8] = {
        if let file = try? FileDescriptor(opening: "/proc/sys/kernel/random/boot_id", flags: O_RDONLY),
           let bytes = try? file.readAll(limit: 4096) {
            let id = Array(bytes.prefix(while: { $0 != 0x0A }))
            if id.count == 36 { return id }
        }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let own = Array("unknown-\(getpid())-\(now.tv_sec)-\(now.tv_nsec)".utf8).prefix(36)
        return Array(own) + [UInt8](repeating: UInt8(ascii: "-"), count: 36 - own.count)
    }()

    /// Where the next record goes, and the boot in which the log was last replayed.
    struct Head: Equatable {
        var boot: [UInt8]
        var seq: Int
        var offset: Int
    }

    /// The lock file's text: `<boot id> <seq> <offset>\n`, fixed width (79 bytes), so each write
    /// replaces the last whole. Built in place: it is written on every commit.
    private static func fillHead(_ head: Head, into buffer: UnsafeMutableBufferPointer<UInt8>) {
        for index in 0..<36 { buffer[index] = head.boot[index] }
        buffer[36] = 0x20
        putDigits(head.seq, into: buffer, at: 37, width: 20)
        buffer[57] = 0x20
        putDigits(head.offset, into: buffer, at: 58, width: 20)
        buffer[78] = 0x0A
    }

    static let headLength = 79

    static func readHead(_ lock: Int32) -> Head? {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: headLength) { buffer -> Head? in
            let got = pread(lock, buffer.baseAddress, headLength, 0)
            let bytes = UnsafeBufferPointer(buffer)
            guard got == headLength, bytes[78] == 0x0A, bytes[36] == 0x20, bytes[57] == 0x20,
                  let seq = number(bytes[37..<57]), let offset = number(bytes[58..<78]),
                  seq >= 1, offset >= dataStart, offset % sector == 0
            else { return nil }
            return Head(boot: Array(bytes[0..<36]), seq: seq, offset: offset)
        }
    }

    private static func writeHead(_ lock: Int32, _ head: Head, path: String) throws(ChatFlowError) {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: headLength) { (buffer) throws(ChatFlowError) in
            fillHead(head, into: buffer)
            let written = try retryingEINTR("write", path) { pwrite(lock, buffer.baseAddress, headLength, 0) }
            // Never short for 79 bytes at offset 0 of a regular file, short of a full disk.
            guard written == headLength else { throw .io(operation: "write", path: path, errno: ENOSPC) }
        }
    }

    /// The header: `cfh1 <crc32> <first seq of this lap, 20 digits>\n`, the CRC (8 hex digits,
    /// zlib's) of the digits and newline.
    static func header(base: Int) -> [UInt8] {
        let body = digits(base, width: 20) + [0x0A]
        return Array("cfh1 ".utf8) + hex(CRC32.checksum(body)) + [0x20] + body
    }

    static func parseHeader(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 35, bytes.starts(with: Array("cfh1 ".utf8)), bytes[13] == 0x20, bytes[34] == 0x0A,
              let crc = hexValue(bytes[5..<13]), CRC32.checksum(bytes[14..<35]) == crc
        else { return nil }
        return number(bytes[14..<34])
    }

    /// An empty log: the header at sequence 1, then zeros.
    static func emptyLog(size: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        let head = header(base: 1)
        bytes.replaceSubrange(0..<head.count, with: head)
        return bytes
    }

    /// A record: `cfr1 <crc32> <seq> <instance id> <offset> <length>\n` then the lines (length
    /// bytes), zero-padded to whole sectors: the CRC is of everything after `cfr1 <crc32> ` up to
    /// the padding, so a record torn or mixed with an older one fails it.
    static func record(seq: Int, instance: String, offset: Int, lines: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(14 + 64 + lines.count)
        bytes.append(contentsOf: "cfr1 00000000 ".utf8)
        appendDecimal(seq, to: &bytes)
        bytes.append(0x20)
        bytes.append(contentsOf: instance.utf8)
        bytes.append(0x20)
        appendDecimal(offset, to: &bytes)
        bytes.append(0x20)
        appendDecimal(lines.count, to: &bytes)
        bytes.append(0x0A)
        bytes.append(contentsOf: lines)
        let crc = bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[14...])) }
        bytes.replaceSubrange(5..<13, with: hex(crc))
        return bytes
    }

    /// Appends `value` (not negative) in decimal.
    private static func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
        let width = decimalCount(value)
        bytes.append(contentsOf: repeatElement(0, count: width))
        let start = bytes.count - width
        bytes.withUnsafeMutableBufferPointer { putDigits(value, into: $0, at: start, width: width) }
    }

    /// A bound on `record`'s length: the sequence number at its widest.
    static func recordLength(instance: String, offset: Int, lines: [UInt8]) -> Int {
        14 + 19 + 1 + instance.utf8.count + 1 + decimalCount(offset) + 1 + decimalCount(lines.count) + 1 + lines.count
    }

    private static func decimalCount(_ value: Int) -> Int {
        var digits = 1
        var rest = value
        while rest >= 10 { digits += 1; rest /= 10 }
        return digits
    }

    struct Record {
        var seq: Int
        var instanceID: String
        var offset: Int
        var lines: [UInt8]
        /// Where the next record starts.
        var end: Int
    }

    static func parseRecord(_ bytes: [UInt8], at start: Int) -> Record? {
        guard start + 14 <= bytes.count, bytes[start..<(start + 5)].elementsEqual("cfr1 ".utf8), bytes[start + 13] == 0x20,
              let crc = hexValue(bytes[(start + 5)..<(start + 13)])
        else { return nil }
        let bodyStart = start + 14
        guard let newline = bytes[bodyStart..<min(bytes.count, bodyStart + 128)].firstIndex(of: 0x0A) else { return nil }
        let fields = bytes[bodyStart..<newline].split(separator: 0x20, omittingEmptySubsequences: false)
        guard fields.count == 4, let seq = number(fields[0]), let offset = number(fields[2]), let length = number(fields[3]),
              length <= bytes.count - newline - 1
        else { return nil }
        let end = newline + 1 + length
        guard CRC32.checksum(bytes[bodyStart..<end]) == crc else { return nil }
        let id = String(decoding: fields[1], as: UTF8.self)
        guard Identifiers.isInstanceID(id) else { return nil }
        return Record(seq: seq, instanceID: id, offset: offset, lines: Array(bytes[(newline + 1)..<end]), end: padded(end))
    }

    private static func digits(_ value: Int, width: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: width) { buffer, count in
            putDigits(value, into: buffer, at: 0, width: width)
            count = width
        }
    }

    /// `value` (not negative, at most `width` digits) as `width` decimal digits, zero-padded.
    private static func putDigits(_ value: Int, into buffer: UnsafeMutableBufferPointer<UInt8>, at start: Int, width: Int) {
        var rest = value
        for index in stride(from: start + width - 1, through: start, by: -1) {
            buffer[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        }
    }

    private static func hex(_ value: UInt32) -> [UInt8] {
        stride(from: 28, through: 0, by: -4).map { hexDigits[Int((value >> UInt32($0)) & 0xF)] }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func hexValue(_ bytes: ArraySlice<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = value << 4 | UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = value << 4 | UInt32(byte - UInt8(ascii: "a") + 10)
            default: return nil
            }
        }
        return value
    }

    private static func number<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 19 || (bytes.count == 20 && bytes.first == UInt8(ascii: "0")) else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }
}
