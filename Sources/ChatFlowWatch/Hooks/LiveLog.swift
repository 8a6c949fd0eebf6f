import ChatFlow
import Glibc

/// A run's log, written as the hook writes: its header when it starts, its output as it
/// arrives (appended, unsynced), a footer with the outcome when it ends. Earlier runs of the same
/// hook and transition stay above it.
///
/// The size cap keeps the tail: once this run's output in the file passes twice the limit, the
/// file is replaced (atomically) by what came before this run, the header, a line saying how many
/// bytes were dropped, and the last `limit` bytes. So the file never holds more than about
/// 2 × limit of one run while it runs, and the cost of the cap is one copy per `limit` bytes
/// written. When the run ends, its last `limit` bytes are what stays.
///
/// Used only by the supervisor's thread, under its lock.
final class LiveLog: @unchecked Sendable {
    let path: String
    private var fd: Int32
    private let header: [UInt8]
    private let limit: Int
    /// Where this run's header starts in the file.
    private var runStart: Int
    /// This run's output bytes now in the file.
    private var inFile = 0
    private(set) var dropped = 0
    /// Why output did not reach the file (the first failure: a full disk, say), and how many
    /// bytes of it were lost: said in the run's record and on the console, never silent.
    private(set) var failure: String?
    private(set) var unwritten = 0

    /// Creates (or appends to) the log and writes the header. A log that cannot be opened is
    /// still returned: it counts what it could not write.
    /// With `root` (the state directory the log lies in), its directory is made and the log
    /// opened beneath it, no link followed: a `runs/` linked elsewhere gets no log.
    init(path: String, root: String? = nil, header: String, limit: Int) {
        self.path = path
        self.header = Array(header.utf8)
        self.limit = max(1, limit)
        runStart = 0
        do {
            if let root {
                let directory = RootDirectory(path: root)
                try directory.makeDirectories(FileSystem.parent(path))
                fd = try directory.open(path, flags: O_WRONLY | O_CREAT | O_APPEND).release()
            } else {
                let parent = FileSystem.parent(path)
                if !FileSystem.isDirectory(parent) { try FileSystem.createDirectory(parent) }
                fd = try FileDescriptor(opening: path, flags: O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW).release()
            }
        } catch {
            fd = -1
            failure = "cannot open the log: \(error)"
            return
        }
        var info = stat()
        runStart = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
        write(self.header[...])
    }

    /// Writes whole or counts what was lost.
    private func write(_ bytes: ArraySlice<UInt8>) {
        guard fd >= 0 else {
            unwritten += bytes.count
            return
        }
        do {
            try writeAll(fd, Array(bytes), operation: "write", path: path)
        } catch {
            if failure == nil { failure = "\(error)" }
            unwritten += bytes.count
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    func append(_ chunk: ArraySlice<UInt8>) {
        guard fd >= 0 else {
            unwritten += chunk.count
            return
        }
        write(chunk)
        inFile += chunk.count
        if inFile > 2 * limit { keepTail() }
    }

    /// The footer, then the file is closed. A run that wrote more than the limit keeps exactly
    /// its last `limit` bytes.
    func finish(_ footer: String) {
        guard fd >= 0 else { return }
        if inFile > limit { keepTail() }
        write(Array(footer.utf8)[...])
        close(fd)
        fd = -1
    }

    /// What went wrong with the log, for the run's record: `nil` when every byte was written.
    var problem: String? {
        guard let failure else { return nil }
        return "\(failure); \(unwritten) bytes of the run's output are not in its log"
    }

    private func keepTail() {
        guard let file = try? FileDescriptor(opening: path, flags: O_RDONLY), let size = try? file.size(),
            let before = try? file.read(at: 0, count: runStart), let tail = try? file.read(at: size - limit, count: limit)
        else { return }
        dropped += inFile - limit
        let marker = "[chatflow: \(dropped) bytes of this run's output dropped; the last \(limit) follow]\n"
        let temp = FileSystem.parent(path) + "/." + FileSystem.baseName(path) + ".tmp"
        guard let out = try? FileDescriptor(opening: temp, flags: O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW),
            (try? out.write(before + header + Array(marker.utf8) + tail, at: 0)) != nil, rename(temp, path) == 0
        else { return }
        let reopened = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW)
        guard reopened >= 0 else { return }
        close(fd)
        fd = reopened
        inFile = limit
    }
}
