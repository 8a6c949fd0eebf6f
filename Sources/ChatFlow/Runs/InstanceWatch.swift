import CChatFlowShims
import Glibc

/// What `chatflow wait` and `claim --wait` block on: a store's changes, armed when made.
package protocol InstanceChangeWaiting: AnyObject {
    /// The next batch of changed instance ids (empty: anything may have changed, look at all);
    /// `nil` once `deadline` (Unix seconds) has passed. With `wakeAtLeastEvery`, an empty batch
    /// also comes after that many seconds (a lease expiring changes nothing).
    func nextChange(deadline: Double?, wakeAtLeastEvery interval: Double?) throws(ChatFlowError) -> [String]?
}

/// A blocking watch on `instances/` for a command that waits (`chatflow wait`): raw inotify, no
/// library and no thread, so the command that every hook calls links nothing more. Armed when
/// made: a state committed after `init` is reported by `next`.
package final class InstanceWatch: InstanceChangeWaiting {
    private let fd: Int32
    private let directory: String
    private var buffer = [UInt8](repeating: 0, count: 65536)

    /// IN_CLOSE_WRITE | IN_MOVED_TO (a commit's rename) | IN_Q_OVERFLOW is always reported.
    private static let mask: UInt32 = 0x8 | 0x80

    package init(layout: Layout) throws(ChatFlowError) {
        directory = layout.instancesDirectory
        fd = chatflow_inotify_init()
        guard fd >= 0 else { throw .io(operation: "inotify_init", path: directory, errno: errno) }
        guard chatflow_inotify_add_watch(fd, directory, Self.mask) >= 0 else {
            let code = errno
            close(fd)
            throw .io(operation: "watch", path: directory, errno: code)
        }
    }

    deinit { close(fd) }

    /// What changed since the last call, waiting up to `timeout` seconds (`nil`: for ever):
    /// instance ids, or `nil` for "anything may have changed" (the queue overflowed). An empty
    /// list means the time ran out.
    package func next(timeout: Double?) throws(ChatFlowError) -> [String]? {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = timeout.map { Int32(max(0, min($0 * 1000, Double(Int32.max)))) } ?? -1
        let ready = poll(&descriptor, 1, milliseconds)
        if ready < 0 {
            if errno == EINTR { return [] }
            throw .io(operation: "poll", path: directory, errno: errno)
        }
        guard ready > 0 else { return [] }
        var ids: [String] = []
        var overflowed = false
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            var at = 0
            while at + 16 <= count {
                let mask = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self) }
                let length = Int(buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at + 12, as: UInt32.self) })
                if mask & 0x4000 != 0 { overflowed = true }
                if length > 0 {
                    let name = buffer[(at + 16)..<(at + 16 + length)].prefix { $0 != 0 }
                    if let id = Layout.instanceID(fromStateFileName: String(decoding: name, as: UTF8.self)) { ids.append(id) }
                }
                at += 16 + length
            }
        }
        return overflowed ? nil : ids
    }

    /// See `InstanceChangeWaiting`; changes of other files are skipped.
    package func nextChange(deadline: Double?, wakeAtLeastEvery interval: Double? = nil) throws(ChatFlowError) -> [String]? {
        while true {
            let left = deadline.map { $0 - Timestamps.unix() }
            if let left, left <= 0 { return nil }
            let wait = [left, interval].compactMap { $0 }.min()
            guard let ids = try next(timeout: wait) else { return [] }
            if !ids.isEmpty { return ids }
            if let interval, wait == interval { return [] }
        }
    }
}
