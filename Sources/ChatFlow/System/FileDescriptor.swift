import CChatFlowShims
import Glibc

/// A thin owner of a file descriptor; every call retries `EINTR` and throws `ChatFlowError.io`
/// naming the operation and path. `close` is never retried (Linux frees the descriptor anyway).
///
/// The one descriptor type of the package: the engine, the watcher and the executables use it
/// (or the free functions below for descriptors they do not own) instead of their own loops.
package struct FileDescriptor: ~Copyable {
    package let rawValue: Int32
    package let path: String
    /// False once `release` handed the descriptor on.
    private var owned = true

    /// Takes ownership of an open descriptor (a pipe, a memfd); `path` names it in errors.
    package init(adopting rawValue: Int32, path: String) {
        self.rawValue = rawValue
        self.path = path
    }

    /// Gives up ownership without closing: the caller closes the returned descriptor.
    package consuming func release() -> Int32 {
        owned = false
        return rawValue
    }

    /// Opens `path`. The corresponding C function is `open`.
    package init(opening path: String, flags: Int32, mode: mode_t = 0o644) throws(ChatFlowError) {
        let fd = try retryingEINTR("open", path) { Glibc.open(path, flags | O_CLOEXEC, mode) }
        self.rawValue = fd
        self.path = path
    }

    deinit { if owned { _ = Glibc.close(rawValue) } }

    /// Reads the whole file, refusing more than `limit` bytes. The corresponding C function is `read`.
    package func readAll(limit: Int) throws(ChatFlowError) -> [UInt8] {
        var info = stat()
        _ = try retryingEINTR("stat", path) { fstat(rawValue, &info) }
        if (info.st_mode & S_IFMT) != S_IFREG {
            throw .corruptState(path: path, reason: "not a regular file")
        }
        if Int(info.st_size) > limit {
            throw .corruptState(path: path, reason: "larger than \(limit) bytes")
        }
        // At least a page: /proc and sysctl files report size 0 and answer only a first read.
        var bytes = [UInt8](repeating: 0, count: max(Int(info.st_size) + 1, 4096))
        var count = 0
        while true {
            if count == bytes.count {
                guard count <= limit else { throw .corruptState(path: path, reason: "larger than \(limit) bytes") }
                bytes.append(contentsOf: repeatElement(0, count: max(4096, count)))
            }
            let got = try retryingEINTR("read", path) {
                bytes.withUnsafeMutableBytes { buffer in
                    Glibc.read(rawValue, buffer.baseAddress! + count, buffer.count - count)
                }
            }
            count += got
            // A short read of a regular file is its end: saves the usual second read() per file.
            if got == 0 || count < bytes.count { break }
        }
        bytes.removeSubrange(count...)
        return bytes
    }

    /// Reads `count` bytes at `offset` (fewer at the end of the file). The corresponding C function is `pread`.
    package func read(at offset: Int, count: Int) throws(ChatFlowError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = try retryingEINTR("read", path) {
                bytes.withUnsafeMutableBytes { pread(rawValue, $0.baseAddress! + got, count - got, off_t(offset + got)) }
            }
            if n == 0 { break }
            got += n
        }
        bytes.removeSubrange(got...)
        return bytes
    }

    /// Writes all of `bytes` at `offset`. The corresponding C function is `pwrite`.
    package func write(_ bytes: [UInt8], at offset: Int) throws(ChatFlowError) {
        var written = 0
        while written < bytes.count {
            let got = try retryingEINTR("write", path) {
                bytes.withUnsafeBytes { buffer in
                    pwrite(rawValue, buffer.baseAddress! + written, buffer.count - written, off_t(offset + written))
                }
            }
            written += got
        }
    }

    /// Writes all of `bytes` at the current offset (an `O_APPEND` file: at its end).
    /// The corresponding C function is `write`.
    package func append(_ bytes: [UInt8]) throws(ChatFlowError) {
        try writeAll(rawValue, bytes, operation: "write", path: path)
    }

    /// Flushes data to the disk. The corresponding C function is `fdatasync`.
    package func syncData() throws(ChatFlowError) {
        _ = try retryingEINTR("fdatasync", path) { fdatasync(rawValue) }
    }

    /// Flushes data and metadata (used for directories). The corresponding C function is `fsync`.
    package func sync() throws(ChatFlowError) {
        _ = try retryingEINTR("fsync", path) { fsync(rawValue) }
    }

    /// The corresponding C function is `ftruncate`.
    package func truncate(to size: Int) throws(ChatFlowError) {
        _ = try retryingEINTR("truncate", path) { ftruncate(rawValue, off_t(size)) }
    }

    /// The size in bytes. The corresponding C function is `fstat`.
    package func size() throws(ChatFlowError) -> Int {
        var info = stat()
        _ = try retryingEINTR("stat", path) { fstat(rawValue, &info) }
        return Int(info.st_size)
    }

    /// Blocks until this process holds an exclusive lock. The corresponding C function is `flock`.
    package func lockExclusive() throws(ChatFlowError) {
        _ = try retryingEINTR("lock", path) { flock(rawValue, LOCK_EX) }
    }

    /// Takes an exclusive lock without waiting; `false` if another holder has it.
    package func tryLockExclusive() throws(ChatFlowError) -> Bool {
        while true {
            if flock(rawValue, LOCK_EX | LOCK_NB) == 0 { return true }
            let code = errno
            if code == EINTR { continue }
            if code == EWOULDBLOCK { return false }
            throw .io(operation: "lock", path: path, errno: code)
        }
    }
}

/// Runs `body` until it does not fail with `EINTR`; a -1 result becomes `ChatFlowError.io`.
@discardableResult
package func retryingEINTR<T: BinaryInteger>(
    _ operation: String, _ path: String, _ body: () -> T
) throws(ChatFlowError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        if code != EINTR { throw .io(operation: operation, path: path, errno: code) }
    }
}


/// Writes all of `buffer` to `fd` at its current offset, retrying `EINTR` and short writes.
/// The corresponding C function is `write`.
package func writeAll(_ fd: Int32, _ bytes: [UInt8], operation: String, path: String) throws(ChatFlowError) {
    var written = 0
    while written < bytes.count {
        let count = try retryingEINTR(operation, path) {
            bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
        }
        if count == 0 { throw .io(operation: operation, path: path, errno: EIO) }
        written += count
    }
}

/// Reads what is there (at most `buffer.count` bytes), retrying `EINTR`: the count, 0 at the
/// end, or `nil` when a non-blocking descriptor has nothing yet. The corresponding C function is `read`.
package func readAvailable(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, Errno>? {
    while true {
        let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
        if count >= 0 { return .success(count) }
        let code = errno
        if code == EINTR { continue }
        if code == EAGAIN { return nil }
        return .failure(Errno(code))
    }
}

/// Reads `fd` (a pipe, a terminal, a file) to its end, stopping once more than `limit` bytes
/// have arrived (the caller refuses that). The corresponding C function is `read`.
package func readToEnd(_ fd: Int32, limit: Int, path: String) throws(ChatFlowError) -> [UInt8] {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while bytes.count <= limit {
        let count = try retryingEINTR("read", path) { buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
        if count == 0 { break }
        bytes.append(contentsOf: buffer[0..<count])
    }
    return bytes
}

/// An `errno` value from a system call, for the layers below `ChatFlowError`.
package struct Errno: Error, Sendable, Equatable, CustomStringConvertible {
    package let code: Int32
    package init(_ code: Int32) { self.code = code }
    package var description: String { "\(String(cString: strerror(code))) (errno \(code))" }
}

/// Writes `text` to standard error without stdio (whose globals are not concurrency-safe).
/// A failing stderr is ignored: there is nowhere left to report it.
package func writeStandardError(_ text: String) {
    try? writeAll(2, Array(text.utf8), operation: "write", path: "standard error")
}

extension FileDescriptor {
    /// Opens `root/components…` without following a symbolic link anywhere below `root`, so a
    /// link planted in the state directory cannot lead a read or write out of it. `root` itself
    /// is the user's to place and may be a link. A link met fails with `ELOOP`.
    package init(beneath root: String, _ components: [String], flags: Int32, mode: mode_t = 0o644) throws(ChatFlowError) {
        let directory = try FileDescriptor(opening: root, flags: O_RDONLY | O_DIRECTORY)
        try self.init(beneath: directory.rawValue, root: root, relative: components.joined(separator: "/"), flags: flags, mode: mode)
    }

    /// Opens `relative` under the open directory `directory` (whose path is `root`, for errors)
    /// with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`: one system call, as `open` is.
    /// Before Linux 5.6, each directory is opened `O_NOFOLLOW | O_DIRECTORY` from the one before.
    package init(beneath directory: Int32, root: String, relative: String, flags: Int32, mode: mode_t = 0o644) throws(ChatFlowError) {
        let path = root + "/" + relative
        var fd: Int32
        repeat { fd = chatflow_open_beneath(directory, relative, flags | O_CLOEXEC, UInt32(mode)) } while fd < 0 && errno == EINTR
        if fd < 0 && errno == ENOSYS {
            fd = FileDescriptor.openWalking(directory, relative.split(separator: "/").map(String.init), flags: flags, mode: mode)
        }
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        self.init(adopting: fd, path: path)
    }

    private static func openWalking(_ directory: Int32, _ components: [String], flags: Int32, mode: mode_t) -> Int32 {
        var current = dup(directory)
        for component in components.dropLast() {
            guard current >= 0 else { return -1 }
            let next = Glibc.openat(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let code = errno
            _ = Glibc.close(current)
            errno = code
            current = next
        }
        guard current >= 0 else { return -1 }
        let fd = Glibc.openat(current, components.last ?? ".", flags | O_NOFOLLOW | O_CLOEXEC, mode)
        let code = errno
        _ = Glibc.close(current)
        errno = code
        return fd
    }
}
