import Glibc
import Synchronization

/// A durable append-only file of one JSON object per line (the watcher's ledger and run journal).
///
/// Each `append` writes whole lines with `O_APPEND` and `fdatasync`s before returning. A line torn
/// by a crash (no final newline) or otherwise unparsable is skipped on read and counted.
package final class AppendLog: Sendable {
    package let path: String
    private let descriptor: Mutex<Int32>

    /// Opens (creating) the log and its directory, cutting a line torn by a crash (or the next
    /// record would be glued to it and lost).
    package init(path: String) throws(ChatFlowError) {
        if let slash = path.lastIndex(of: "/") { try FileSystem.createDirectory(String(path[..<slash])) }
        let file = try FileDescriptor(opening: path, flags: O_RDWR | O_APPEND | O_CREAT)
        let size = try file.size()
        if size > 0 {
            let tail = try file.read(at: max(0, size - 65536), count: min(size, 65536))
            if tail.last != 0x0A {
                // Keep everything up to the last newline; a torn line longer than the window
                // means no newline in it, so search further back a window at a time.
                var cut = tail.lastIndex(of: 0x0A).map { size - tail.count + $0 + 1 }
                var windowEnd = size - tail.count
                while cut == nil && windowEnd > 0 {
                    let start = max(0, windowEnd - 65536)
                    let window = try file.read(at: start, count: windowEnd - start)
                    cut = window.lastIndex(of: 0x0A).map { start + $0 + 1 }
                    windowEnd = start
                }
                try file.truncate(to: cut ?? 0)
            }
        }
        self.path = path
        descriptor = Mutex(file.release())
    }

    deinit { descriptor.withLock { _ = close($0) } }

    /// Appends values, one line each, and makes them durable. Several at once share one fdatasync.
    package func append(_ values: [JSONValue], durable: Bool = true) throws(ChatFlowError) {
        guard !values.isEmpty else { return }
        try append(raw: AppendLog.lines(values), durable: durable)
    }

    /// Appends bytes that are already whole lines (each ending in a newline), durably unless
    /// `durable` is false (a line whose loss in a power cut is harmless, such as a run's start).
    package func append(raw bytes: [UInt8], durable: Bool = true) throws(ChatFlowError) {
        guard !bytes.isEmpty else { return }
        let path = self.path
        try descriptor.withLock { (fd) throws(ChatFlowError) in
            try writeAll(fd, bytes, operation: "append to", path: path)
            if durable { _ = try retryingEINTR("fdatasync", path) { fdatasync(fd) } }
        }
    }

    /// Calls `body` with each complete line of the log at `path` (missing file: none), without
    /// its newline; a torn last line is not passed.
    /// With `lastBytes`, only the lines that start within the file's last `lastBytes` bytes.
    package static func forEachLine(
        _ path: String, lastBytes: Int? = nil, _ body: (ArraySlice<UInt8>) -> Void
    ) throws(ChatFlowError) {
        var bytes: [UInt8]
        do {
            let file = try FileDescriptor(opening: path, flags: O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
            if let lastBytes, case let size = try file.size(), size > lastBytes {
                bytes = try file.read(at: size - lastBytes, count: lastBytes)
                // The window starts inside a line: drop that part.
                if let newline = bytes.firstIndex(of: 0x0A) { bytes.removeSubrange(...newline) } else { bytes = [] }
            } else {
                bytes = try file.readAll(limit: StateStore.maximumHistoryBytes)
            }
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
    package static func read(_ path: String, lastBytes: Int? = nil) throws(ChatFlowError) -> (values: [JSONValue], skipped: Int) {
        var values: [JSONValue] = []
        var lines = 0
        try forEachLine(path, lastBytes: lastBytes) { line in
            lines += 1
            if let value = try? JSONValue(parsing: Array(line)) { values.append(value) }
        }
        return (values, lines - values.count)
    }

    package static func lines(_ values: [JSONValue]) -> [UInt8] {
        var writer = JSONWriter(pretty: false, capacity: 256 * values.count)
        for value in values {
            writer.write(value)
            writer.append(newline: ())
        }
        return writer.bytes
    }

    /// Atomically replaces the log's contents with bytes that are whole lines.
    package func rewrite(raw bytes: [UInt8]) throws(ChatFlowError) {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let temp = path + ".tmp"
        try StateStore.replace(path, temp: temp, bytes: bytes, directory: directory)
        let fd = try FileDescriptor(opening: path, flags: O_WRONLY | O_APPEND | O_CREAT).release()
        descriptor.withLock { old in
            _ = close(old)
            old = fd
        }
    }
}
