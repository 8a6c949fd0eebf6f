#if canImport(Glibc)
import Glibc
#endif

/// A thin owner of a file descriptor; every call retries `EINTR` and throws `ChatFlowError.io`
/// naming the operation and path. `close` is never retried (Linux frees the descriptor anyway).
struct FileDescriptor: ~Copyable {
    let rawValue: Int32
    let path: String

    /// Opens `path`. The corresponding C function is `open`.
    init(opening path: String, flags: Int32, mode: mode_t = 0o644) throws(ChatFlowError) {
        let fd = try retryingEINTR("open", path) { Glibc.open(path, flags | O_CLOEXEC, mode) }
        self.rawValue = fd
        self.path = path
    }

    deinit { _ = Glibc.close(rawValue) }

    /// Reads the whole file, refusing more than `limit` bytes. The corresponding C function is `read`.
    func readAll(limit: Int) throws(ChatFlowError) -> [UInt8] {
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

    /// Writes all of `bytes` at `offset`. The corresponding C function is `pwrite`.
    func write(_ bytes: [UInt8], at offset: Int) throws(ChatFlowError) {
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

    /// Flushes data to the disk. The corresponding C function is `fdatasync`.
    func syncData() throws(ChatFlowError) {
        _ = try retryingEINTR("fdatasync", path) { fdatasync(rawValue) }
    }

    /// Flushes data and metadata (used for directories). The corresponding C function is `fsync`.
    func sync() throws(ChatFlowError) {
        _ = try retryingEINTR("fsync", path) { fsync(rawValue) }
    }

    /// The corresponding C function is `ftruncate`.
    func truncate(to size: Int) throws(ChatFlowError) {
        _ = try retryingEINTR("truncate", path) { ftruncate(rawValue, off_t(size)) }
    }

    /// The size in bytes. The corresponding C function is `fstat`.
    func size() throws(ChatFlowError) -> Int {
        var info = stat()
        _ = try retryingEINTR("stat", path) { fstat(rawValue, &info) }
        return Int(info.st_size)
    }

    /// Blocks until this process holds an exclusive lock. The corresponding C function is `flock`.
    func lockExclusive() throws(ChatFlowError) {
        _ = try retryingEINTR("lock", path) { flock(rawValue, LOCK_EX) }
    }

    /// Takes an exclusive lock without waiting; `false` if another holder has it.
    func tryLockExclusive() throws(ChatFlowError) -> Bool {
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
func retryingEINTR<T: BinaryInteger>(
    _ operation: String, _ path: String, _ body: () -> T
) throws(ChatFlowError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        if code != EINTR { throw .io(operation: operation, path: path, errno: code) }
    }
}

