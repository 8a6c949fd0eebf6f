import DequeModule
import Glibc

/// The watcher's own threads for its async code, instead of Swift concurrency's global executor.
///
/// On Linux the global executor is libdispatch's thread pool, whose first worker thread starts
/// a pool monitor that wakes the process every second for as long as it lives. A watcher must
/// sleep until a file changes, so its tasks run here: POSIX threads that block on a condition
/// variable with no timeout. Blocking work (fsyncs of the ledger and run journal) happens on
/// these threads, so there are as many as hooks may finish at once.
final class ThreadPoolExecutor: TaskExecutor, @unchecked Sendable {
    // A pthread mutex and condition need stable addresses; the threads hold the executor until
    // they have exited, and the last reference frees them.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var jobs: Deque<UnownedJob> = []
    private var stopping = false

    init(threads: Int) {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        for _ in 0..<max(1, threads) { startThread { self.serve() } }
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pthread_mutex_lock(mutex)
        jobs.append(job)
        let late = stopping
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
        // Nothing should arrive after `stop`, but a job must never be stranded: it gets a
        // thread of its own, which ends when the queue is empty.
        if late { startThread { self.serve() } }
    }

    /// Lets the threads end once the queue is empty.
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    private func serve() {
        while true {
            pthread_mutex_lock(mutex)
            while jobs.isEmpty {
                if stopping {
                    pthread_mutex_unlock(mutex)
                    return
                }
                pthread_cond_wait(condition, mutex)
            }
            let job = jobs.removeFirst()
            pthread_mutex_unlock(mutex)
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
