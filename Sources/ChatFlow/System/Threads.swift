import Glibc

/// Starts a detached POSIX thread running `body`, for blocking calls (inotify, poll, read,
/// waitid) that must never park a cooperative thread of Swift concurrency. Returns false when
/// the system gives no thread (a process or user thread limit), so that the caller can give
/// back what it prepared for it rather than leak it.
package func startDetachedThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body))
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        box.body()
        return nil
    }, box.toOpaque())
    guard result == 0 else {
        box.release()
        return false
    }
    pthread_detach(thread)
    return true
}
