import Dispatch
import Glibc
import Synchronization

/// Starts a detached POSIX thread running `body`: for the blocking calls (inotify, poll, waitid)
/// that must never park a cooperative thread of Swift concurrency.
func startThread(_ body: @escaping @Sendable () -> Void) {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    precondition(result == 0, "pthread_create failed: \(result)")
    pthread_detach(thread)
}

/// Calls `body(i)` for every `i` in `0..<count` on `threads` POSIX threads (the caller's among
/// them) and returns when all are done. Not Dispatch's `concurrentPerform`: that would start
/// libdispatch's thread pool, whose monitor then wakes the process every second for good.
func parallelFor(_ count: Int, threads: Int, _ body: @escaping @Sendable (Int) -> Void) {
    guard count > 0 else { return }
    let next = Mutex(0)
    let helpers = max(0, min(threads, count) - 1)
    let finished = DispatchSemaphore(value: 0)
    let work: @Sendable () -> Void = {
        while true {
            let index = next.withLock { value -> Int in
                defer { value += 1 }
                return value
            }
            guard index < count else { return }
            body(index)
        }
    }
    for _ in 0..<helpers {
        startThread {
            work()
            finished.signal()
        }
    }
    work()
    for _ in 0..<helpers { finished.wait() }
}
