#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A durable append-only file of one JSON object per line (the watcher's ledger and run journal).
///
/// Each `append` writes whole lines with `O_APPEND` and `fdatasync`s before returning. A line torn
/// by a crash (no final newline) or otherwise unparsable is skipped on read and counted.
public final class AppendLog: Sendable {
    public let path: String
    private let descriptor: Mutex<Int32>

    /// Opens (creating) the log and its directory.
    public init(path: String) throws(ChatFlowError) {
        if let slash = path.lastIndex(of: "/") { try FileSystem.createDirectory(String(path[..<slash])) }
        let fd = try retryingEINTR("open", path) { open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o644) }
        // Cut a line torn by a crash, or the next record would be glued to it and lost.
        let size = lseek(fd, 0, SEEK_END)
        if size > 0 {
            var last: UInt8 = 0
            if pread(fd, &last, 1, size - 1) == 1, last != 0x0A {
                var offset = size - 1
                var byte: UInt8 = 0
                while offset > 0, pread(fd, &byte, 1, offset - 1) == 1, byte != 0x0A { offset -= 1 }
                _ = ftruncate(fd, offset)
            }
        }
        self.path = path
        descriptor = Mutex(fd)
    }

    deinit { descriptor.withLock { _ = close($0) } }

    /// Appends values, one line each, and makes them durable. Several at once share one fdatasync.
    public func append(_ values: [JSONValue]) throws(ChatFlowError) {
        guard !values.isEmpty else { return }
        try append(raw: AppendLog.lines(values))
    }

    /// Appends bytes that are already whole lines (each ending in a newline), durably.
    public func append(raw bytes: [UInt8]) throws(ChatFlowError) {
        guard !bytes.isEmpty else { return }
        let path = self.path
        try descriptor.withLock { (fd) throws(ChatFlowError) in
            var written = 0
            while written < bytes.count {
                let count = try retryingEINTR("append to", path) {
                    bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
                }
                written += count
            }
            _ = try retryingEINTR("fdatasync", path) { fdatasync(fd) }
        }
    }

    /// Calls `body` with each complete line of the log at `path` (missing file: none), without
    /// its newline; a torn last line is not passed.
    public static func forEachLine(_ path: String, _ body: (ArraySlice<UInt8>) -> Void) throws(ChatFlowError) {
        let bytes: [UInt8]
        do {
            let file = try FileDescriptor(opening: path, flags: O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
            bytes = try file.readAll(limit: StateStore.maximumHistoryBytes)
        } catch {
            if case .io(_, _, let code) = error, code == ENOENT { return }
            throw error
        }
        var lineStart = 0
        for offset in bytes.indices where bytes[offset] == 0x0A {
            body(bytes[lineStart..<offset])
            lineStart = offset + 1
        }
    }

    /// Every complete, parsable line of the log at `path` (missing file: none), and how many
    /// lines were skipped as torn or malformed.
    public static func read(_ path: String) throws(ChatFlowError) -> (values: [JSONValue], skipped: Int) {
        var values: [JSONValue] = []
        var lines = 0
        try forEachLine(path) { line in
            lines += 1
            if let value = try? JSONValue(parsing: Array(line)) { values.append(value) }
        }
        return (values, lines - values.count)
    }

    static func lines(_ values: [JSONValue]) -> [UInt8] {
        var writer = JSONWriter(pretty: false, capacity: 256 * values.count)
        for value in values {
            writer.write(value)
            writer.append(newline: ())
        }
        return writer.bytes
    }

    /// Atomically replaces the log's contents with `values` (compaction). The caller must ensure
    /// no concurrent appends.
    public func rewrite(_ values: [JSONValue]) throws(ChatFlowError) {
        try rewrite(raw: AppendLog.lines(values))
    }

    /// Atomically replaces the log's contents with bytes that are whole lines.
    public func rewrite(raw bytes: [UInt8]) throws(ChatFlowError) {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let temp = path + ".tmp"
        try StateStore.replace(path, temp: temp, bytes: bytes, directory: directory)
        let fd = try retryingEINTR("open", path) { open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644) }
        descriptor.withLock { old in
            _ = close(old)
            old = fd
        }
    }
}

/// The run journal: one `RunRecord` per hook run, appended by chatflow-watch.
public struct RunJournal: Sendable {
    public let path: String

    public init(layout: Layout) { path = layout.watchDirectory + "/runs.ndjson" }

    /// Every recorded run, oldest first.
    public func records() throws(ChatFlowError) -> [RunRecord] {
        try AppendLog.read(path).values.compactMap { try? RunRecord(json: $0) }
    }
}
