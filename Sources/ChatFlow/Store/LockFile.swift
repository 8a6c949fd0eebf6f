import Glibc

/// An exclusive `flock` held for the life of this object, e.g. one watcher per state directory.
/// The holder's pid is written into the file so a refused contender can name it.
package final class LockFile: Sendable {
    package let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Takes the lock without waiting; `nil` (and the holder's pid, if recorded) when another
    /// process holds it.
    package static func tryAcquire(_ path: String) throws(ChatFlowError) -> (lock: LockFile?, holder: String) {
        if let slash = path.lastIndex(of: "/") { try FileSystem.createDirectory(String(path[..<slash])) }
        let file = try FileDescriptor(opening: path, flags: O_RDWR | O_CREAT)
        guard try file.tryLockExclusive() else {
            let holder = (try? file.readAll(limit: 64)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            return (nil, holder.trimmingNewlines)
        }
        try file.truncate(to: 0)
        try file.write(Array("\(getpid())\n".utf8), at: 0)
        let duplicate = fcntl(file.rawValue, F_DUPFD_CLOEXEC, 0)
        guard duplicate >= 0 else { throw .io(operation: "dup", path: path, errno: errno) }
        // The duplicate shares the open file description, so the lock outlives `file`.
        return (LockFile(path: path, descriptor: duplicate), "")
    }
}

extension LockFile {
    /// Whether some process holds the lock now (without taking it, or writing the file).
    package static func isHeld(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return errno == EWOULDBLOCK
    }
}

extension String {
    var trimmingNewlines: String {
        String(self.reversed().drop(while: { $0 == "\n" || $0 == " " }).reversed())
    }
}
