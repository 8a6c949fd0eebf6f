import ChatFlow
import Dispatch
import Glibc
import Synchronization

/// Starts a detached POSIX thread running `body` (`startDetachedThread`); the watcher cannot
/// go on without the threads it asks for.
func startThread(_ body: @escaping @Sendable () -> Void) {
    precondition(startDetachedThread(body), "pthread_create failed: the process or user thread limit is reached")
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
