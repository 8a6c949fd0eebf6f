import CChatFlowShims
import Glibc
import Synchronization

/// The log and its lock file: opened, created at their size, written by whole sectors.
extension CommitLog {
    /// The log's lock, opened by the first commit and kept, as the log is: a process that
    /// commits keeps both open (as SQLite keeps its database open), saving two opens a commit.
    func openLock(_ files: inout Files) throws(ChatFlowError) -> Int32 {
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
    func openLog(_ files: inout Files, creating lock: Int32? = nil) throws(ChatFlowError) -> Int32 {
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
    static func checkedSize(_ log: borrowing FileDescriptor) throws(ChatFlowError) -> Int {
        let size = try log.size()
        guard size >= dataStart + 4096, size % 4096 == 0 else {
            throw .corruptState(path: log.path, reason: "\(size) bytes: a commit log is a multiple of 4096 bytes, at least 8192 (move it aside only after `chatflow doctor` has read every instance)")
        }
        return size
    }

    /// Makes the log whole and durable under its temp name, then renames it in: a log that
    /// exists is always whole (its ring written, so no commit allocates or converts a block).
    func createLog() throws(ChatFlowError) {
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
    static func openForCommits(_ path: String) -> Int32 {
        let fd = open(path, O_RDWR | O_CLOEXEC | O_DSYNC | chatflow_o_direct())
        if fd < 0 && errno == EINVAL { return open(path, O_RDWR | O_CLOEXEC | O_DSYNC) }
        return fd
    }

    /// A sector-aligned offset's write of `bytes`, zero-padded to whole sectors, from memory
    /// aligned as direct I/O needs.
    static func writeSectors(_ fd: Int32, _ bytes: [UInt8], at offset: Int, path: String) throws(ChatFlowError) {
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

    func lockExclusive(_ fd: Int32) throws(ChatFlowError) {
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
}
