import ChatFlow
import Glibc

/// One watcher per state directory: the exclusive flock on `.locks/watch.lock`.
enum WatcherLock {
    /// Takes the lock, or says who holds it.
    static func acquire(_ layout: Layout) throws(WatchError) -> LockFile {
        do {
            var (acquired, holder) = try LockFile.tryAcquire(layout.watchLockFile)
            // A watcher killed while spawning a hook leaves that half-started child holding a copy
            // of its descriptors (the lock's among them) until it has exec'd: if the recorded
            // holder is dead, wait for that moment to pass.
            let deadline = Timestamps.monotonic() + 2
            while acquired == nil, let pid = Int32(holder), kill(pid, 0) != 0 && errno == ESRCH, Timestamps.monotonic() < deadline {
                usleep(10_000)
                (acquired, holder) = try LockFile.tryAcquire(layout.watchLockFile)
            }
            guard let acquired else { throw WatchError.alreadyWatching(root: layout.root, pid: holder) }
            return acquired
        } catch let error as WatchError {
            throw error
        } catch {
            throw .state(ChatFlowErrorDescription(text: "\(error)"))
        }
    }
}
