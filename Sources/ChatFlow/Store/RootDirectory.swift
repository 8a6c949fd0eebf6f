import CChatFlowShims
import Glibc
import Synchronization

/// The state directory held open, so that its files are opened relative to it without
/// following a link below it (`FileDescriptor(beneath:)`): a link planted in the state
/// directory (an instance's directory, its `tasks/` or `runs/` pointing elsewhere) is refused,
/// never followed, at the cost of no system call beyond the open itself.
package final class RootDirectory: Sendable {
    package let path: String
    /// Opened on first use. A root removed and made again is found by the next open that finds
    /// nothing, which opens the new one (the old descriptor is left open: a thread may be using it).
    private let descriptor = Mutex<Int32>(-1)

    /// `path` + "/", the prefix of every path beneath it.
    private let prefix: String

    package init(path: String) {
        self.path = path
        prefix = path + "/"
    }

    deinit { descriptor.withLock { if $0 >= 0 { _ = close($0) } } }

    /// Makes the directories of `absolute` (under the root) that are missing, each made and
    /// entered without following a link (`mkdir -p` would create them wherever a link led).
    package func makeDirectories(_ absolute: String) throws(ChatFlowError) {
        guard absolute.hasPrefix(path + "/") else { return try FileSystem.createDirectory(absolute) }
        let components = absolute.utf8.dropFirst(path.utf8.count + 1).split(separator: UInt8(ascii: "/")).map { String($0)! }
        var current = dup(try directory(fresh: false))
        defer { if current >= 0 { _ = close(current) } }
        var walked = path
        for component in components {
            walked += "/" + component
            if mkdirat(current, component, 0o755) != 0 && errno != EEXIST {
                throw .io(operation: "mkdir", path: walked, errno: errno)
            }
            let next = openat(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else {
                if errno == ELOOP || errno == ENOTDIR {
                    throw .corruptState(path: walked, reason: "a symbolic link stands on its way, which could lead out of the state directory; it was not followed (remove the link)")
                }
                throw .io(operation: "open", path: walked, errno: errno)
            }
            _ = close(current)
            current = next
        }
    }

    /// Opens `absolute`, a path under the root, beneath it; a path elsewhere as it is (no link
    /// followed at its last component). A link on the way is `corruptState`, naming the path.
    ///
    /// On every trigger's path (the state file, the history): no string is built, the relative
    /// part is passed to `openat2` from the path's own bytes.
    package func open(_ absolute: String, flags: Int32, mode: mode_t = 0o644) throws(ChatFlowError) -> FileDescriptor {
        let skip = prefix.utf8.count
        guard absolute.utf8.count > skip, absolute.utf8.starts(with: prefix.utf8) else {
            return try FileDescriptor(opening: absolute, flags: flags | O_NOFOLLOW, mode: mode)
        }
        var fresh = false
        while true {
            let directory = try self.directory(fresh: fresh)
            var fd: Int32
            repeat {
                fd = absolute.withCString { chatflow_open_beneath(directory, $0 + skip, flags | O_CLOEXEC, UInt32(mode)) }
            } while fd < 0 && errno == EINTR
            if fd >= 0 { return FileDescriptor(adopting: fd, path: absolute) }
            var code = errno
            if code == ENOSYS {
                // Before Linux 5.6: a directory at a time.
                do {
                    let relative = String(absolute.utf8.dropFirst(skip))!
                    return try FileDescriptor(beneath: directory, root: path, relative: relative, flags: flags, mode: mode)
                } catch {
                    guard case .io(_, _, let walked) = error else { throw error }
                    code = walked
                }
            }
            if code == ELOOP || code == EXDEV {
                throw .corruptState(path: absolute, reason: "a symbolic link stands on its way, which could lead out of the state directory; it was not followed (remove the link)")
            }
            if code == ENOENT, !fresh, replaced(directory) {
                fresh = true
                continue
            }
            throw .io(operation: "open", path: absolute, errno: code)
        }
    }

    private func directory(fresh: Bool) throws(ChatFlowError) -> Int32 {
        let known = descriptor.withLock { $0 }
        if known >= 0 && !fresh { return known }
        let opened = try FileDescriptor(opening: path, flags: O_RDONLY | O_DIRECTORY).release()
        return descriptor.withLock { current in
            if current >= 0 && !fresh {
                _ = close(opened)
                return current
            }
            current = opened
            return opened
        }
    }

    /// Whether the root's path now names another directory than `directory`.
    private func replaced(_ directory: Int32) -> Bool {
        var open = stat(), named = stat()
        guard fstat(directory, &open) == 0 else { return true }
        guard stat(path, &named) == 0 else { return false }
        return open.st_ino != named.st_ino || open.st_dev != named.st_dev
    }
}
