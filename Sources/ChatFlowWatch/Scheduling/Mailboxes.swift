import DequeModule
import Synchronization

/// Per-instance serial queues: each instance's transitions run one at a time, in order, by one
/// worker; different instances run in parallel. (An actor would interleave two runs of one
/// instance at every `await`.)
final class Mailboxes: Sendable {
    private struct Queue {
        var pending: Deque<TransitionJob> = []
        var active = false
    }

    private let queues = Mutex<[String: Queue]>([:])

    /// Queues transitions; `true` when the instance just became ready (hand it to a worker).
    func enqueue(_ id: String, _ jobs: [TransitionJob]) -> Bool {
        queues.withLock { queues in
            var queue = queues[id] ?? Queue()
            queue.pending.append(contentsOf: jobs)
            let start = !queue.active && !queue.pending.isEmpty
            if start { queue.active = true }
            queues[id] = queue
            return start
        }
    }

    /// The next transition for the worker of `id`, or `nil` (the worker then ends). When
    /// `stopping`, only a job whose hook is already running is handed out, so it is waited for.
    func next(_ id: String, stopping: Bool) -> TransitionJob? {
        queues.withLock { queues in
            guard var queue = queues[id] else { return nil }
            if queue.pending.isEmpty || (stopping && queue.pending[0].started == nil) {
                queue.active = false
                queues[id] = queue.pending.isEmpty ? nil : queue
                return nil
            }
            let job = queue.pending.removeFirst()
            queues[id] = queue
            return job
        }
    }

    /// Whether the instance has nothing queued or running.
    func isIdle(_ id: String) -> Bool { queues.withLock { $0[id] == nil } }
}
