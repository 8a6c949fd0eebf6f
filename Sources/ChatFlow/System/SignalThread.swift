import Glibc

/// The write end of the pipe the signal handler writes to; set once, before any handler.
nonisolated(unsafe) private var signalPipe: Int32 = -1

/// Delivers signals to a handler on a thread started now. Dispatch's signal sources (and
/// swift-service-lifecycle's, built on them) start a thread when the signal arrives, which a
/// process or user thread limit can deny: the signal is then never handled. Here the handler
/// only writes the signal's number to a pipe (async-signal-safe), and the thread, already
/// running, reads it.
package enum SignalThread {
    /// Routes `signals` to `handler` (on the signal thread, once per signal received). Call
    /// once per process. False when no pipe or thread could be had (nothing is changed then).
    package static func start(_ signals: [Int32], _ handler: @escaping @Sendable (Int32) -> Void) -> Bool {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let reader = fds[0]
        let started = startDetachedThread {
            // A parent may have started this process with the signals blocked (Foundation's
            // Process does): this thread takes them, whatever the others block.
            var set = sigset_t()
            sigemptyset(&set)
            for number in signals { sigaddset(&set, number) }
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
            var number: UInt8 = 0
            while true {
                let count = read(reader, &number, 1)
                if count < 0 && errno == EINTR { continue }
                guard count == 1 else { return }
                handler(Int32(number))
            }
        }
        guard started else {
            fds.forEach { _ = close($0) }
            return false
        }
        signalPipe = fds[1]
        for number in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                let saved = errno
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipe, &byte, 1)
                errno = saved
            }
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, nil)
        }
        return true
    }
}
