import CChatFlowShims
import Glibc

/// Prints a hook run's log and, while the hook runs, what it writes, as it writes it: woken by
/// inotify on the log (and its directory, which sees the log replaced when the size cap drops
/// output) and on the run journal (which records the run's end), and by the hook's pidfd. No
/// polling loop: it sleeps in `poll` until one of them fires.
package struct RunLogFollower {
    package let logPath: String
    package let root: String?
    package let journalPath: String
    /// The run followed: its end record in the journal ends the follow.
    package let isEnded: () -> Bool
    package let pid: Int32?

    private static let modify: UInt32 = 0x2, closeWrite: UInt32 = 0x8, movedTo: UInt32 = 0x80, create: UInt32 = 0x100

    /// With `root`, the log is read only when it lies beneath that state directory, reached
    /// without following a link.
    package init(logPath: String, root: String? = nil, journalPath: String, pid: Int32?, isEnded: @escaping () -> Bool) {
        self.logPath = logPath
        self.root = root
        self.journalPath = journalPath
        self.pid = pid
        self.isEnded = isEnded
    }

    /// Writes the log to `out` (a descriptor) and, with `follow`, everything appended until the
    /// run ends, or until `cancel` (a descriptor: a pipe's read end, say) becomes readable: a
    /// follower whose client left (or whose server stops) ends at once, holding nothing.
    package func run(follow: Bool, out: Int32 = 1, cancel: Int32 = -1) throws(ChatFlowError) {
        let notify = chatflow_inotify_init()
        guard notify >= 0 else { throw .io(operation: "inotify_init", path: logPath, errno: errno) }
        defer { close(notify) }
        // Armed before the first read: a write between the two is seen.
        var journalWatch: Int32 = -1
        if follow {
            _ = chatflow_inotify_add_watch(notify, logPath, Self.modify | Self.closeWrite)
            _ = chatflow_inotify_add_watch(notify, FileSystem.parent(logPath), Self.movedTo | Self.create)
            journalWatch = chatflow_inotify_add_watch(notify, journalPath, Self.modify)
        }
        var reader = LogReader(path: logPath, root: root)
        try reader.copyNew(to: out)
        guard follow, !isEnded() else { return }
        let pidfd = pid.map { chatflow_pidfd_open($0) } ?? -1
        defer { if pidfd >= 0 { close(pidfd) } }
        var exitedAt: Double?
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var fds = [pollfd(fd: notify, events: Int16(POLLIN), revents: 0), pollfd(fd: cancel, events: Int16(POLLIN), revents: 0)]
            if pidfd >= 0 && exitedAt == nil { fds.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
            // Once the hook has exited, its end record follows within moments; a watcher that
            // died with it writes none, so stop waiting after two seconds.
            let timeout: Int32 = exitedAt == nil ? -1 : 200
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 && errno != EINTR { throw .io(operation: "poll", path: logPath, errno: errno) }
            if cancel >= 0 && fds[1].revents != 0 { return }
            if fds.count > 2 && fds[2].revents != 0 { exitedAt = Timestamps.monotonic() }
            // The journal is read only when it changed (a run's end is appended there).
            var journalChanged = exitedAt != nil
            while true {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(notify, $0.baseAddress, $0.count) }
                guard count > 0 else { break }
                var at = 0
                while at + 16 <= count {
                    let wd = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: Int32.self) }
                    let length = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at + 12, as: UInt32.self) }
                    if wd == journalWatch { journalChanged = true }
                    at += 16 + Int(length)
                }
            }
            try reader.copyNew(to: out)
            if (journalChanged && isEnded()) || (exitedAt.map { Timestamps.monotonic() - $0 > 2 } ?? false) {
                try reader.copyNew(to: out)
                return
            }
        }
    }
}

/// Reads a log from where it last stopped; when the file was replaced (the size cap), goes on
/// from the replacement's drop marker.
private struct LogReader {
    let path: String
    private var offset = 0
    private var inode: UInt64?

    /// The state directory the log lies in: the log is opened beneath it, no link followed.
    let root: String?

    init(path: String, root: String?) {
        self.path = path
        self.root = root
    }

    /// The log's descriptor, or -1 while it does not exist.
    private func open() throws(ChatFlowError) -> Int32 {
        guard let root, path.hasPrefix(root + "/") else {
            return (try? FileDescriptor(opening: path, flags: O_RDONLY | O_NOFOLLOW).release()) ?? -1
        }
        let components = path.dropFirst(root.count + 1).split(separator: "/").map(String.init)
        do {
            return try FileDescriptor(beneath: root, components, flags: O_RDONLY | O_NONBLOCK).release()
        } catch {
            if case .io(_, _, let code) = error, code == ELOOP || code == ENOTDIR {
                throw .corruptState(path: path, reason: "a symbolic link stands on its way, which could lead out of the state directory; it was not followed")
            }
            return -1
        }
    }

    mutating func copyNew(to out: Int32) throws(ChatFlowError) {
        let opened = try open()
        guard opened >= 0 else { return }
        let file = FileDescriptor(adopting: opened, path: path)
        var info = stat()
        guard fstat(file.rawValue, &info) == 0 else { return }
        let size = Int(info.st_size)
        if let inode, inode != UInt64(info.st_ino) {
            let whole = try file.read(at: 0, count: size)
            let marker = Array("[chatflow: ".utf8)
            offset = lastIndex(of: marker, in: whole) ?? size
        }
        inode = UInt64(info.st_ino)
        guard size > offset else { return }
        let bytes = try file.read(at: offset, count: size - offset)
        try writeAll(out, bytes, operation: "write", path: "standard output")
        offset += bytes.count
    }

    private func lastIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in stride(from: haystack.count - needle.count, through: 0, by: -1)
        where haystack[start] == needle[0] && Array(haystack[start..<(start + needle.count)]) == needle {
            return start
        }
        return nil
    }
}
