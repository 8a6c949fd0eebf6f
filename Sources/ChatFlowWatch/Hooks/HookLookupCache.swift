import ChatFlow
import Synchronization

import Glibc

/// `HookCatalog` lookups remembered for a long-running watcher, each checked before use against
/// an `lstat` of every file it depends on: the hooks directory (its change time and
/// modification time move when an entry is added, removed, renamed, or its permissions or owner
/// change), and each hook file, `E` and `E.d` that exists. A valid entry costs one `lstat` per
/// such file instead of the full lookup (existence checks, trust checks, reading each hook's
/// timeout line), which sits between a phase change and its hook's start.
///
/// Lookups that involve a symbolic link, or whose files changed within the last 100 ms (file
/// times are only as fine as the kernel's clock tick, so a change that soon may leave them
/// equal), are not remembered.
final class HookLookupCache: Sendable {
    let catalog: HookCatalog

    private struct Entry {
        var hooks: [Hook]
        var refused: [RefusedHook]
        var stamps: [(path: String, stamp: FileStamp?)]
        /// The directories above the hooks directory: only their identity, owner and mode matter
        /// (their times move with every file written beside them).
        var ancestors: [(path: String, stamp: FileStamp?)]
    }

    private let entries = Mutex<[String: Entry]>([:])

    init(catalog: HookCatalog) { self.catalog = catalog }

    /// As `HookCatalog.hooks(for:)` for each event in turn, concatenated. A file several
    /// lookups depend on (the hooks directory) is checked once.
    func hooks(for events: [String]) -> (hooks: [Hook], refused: [RefusedHook]) {
        var checked: [String: FileStamp?] = [:]
        func current(_ path: String) -> FileStamp? {
            if let known = checked[path] { return known }
            let stamp = FileStamp(lstatOf: path)
            checked[path] = stamp
            return stamp
        }
        var result: (hooks: [Hook], refused: [RefusedHook]) = ([], [])
        for event in events {
            if let entry = entries.withLock({ $0[event] }), entry.stamps.allSatisfy({ current($0.path) == $0.stamp }),
               entry.ancestors.allSatisfy({ FileStamp.sameTrust(current($0.path), $0.stamp) })
            {
                result.hooks += entry.hooks
                result.refused += entry.refused
                continue
            }
            let (hooks, refused) = lookUp(event)
            result.hooks += hooks
            result.refused += refused
        }
        return result
    }

    /// Whether a lookup for `event` is remembered (for tests).
    func isRemembered(_ event: String) -> Bool { entries.withLock { $0[event] != nil } }

    /// Whether any of the events has a hook file, trusted or not.
    func hasCandidates(for events: [String]) -> Bool {
        let (hooks, refused) = hooks(for: events)
        return !hooks.isEmpty || !refused.isEmpty
    }

    /// The full lookup, remembered when the files it read were stable across it.
    private func lookUp(_ event: String) -> (hooks: [Hook], refused: [RefusedHook]) {
        // The directory (even when absent), and whichever of `E` and `E.d` exist (an absent one
        // appearing changes the directory's times).
        let directory = catalog.directory
        let before = [(path: directory, stamp: FileStamp(lstatOf: directory))]
            + [directory + "/" + event, directory + "/" + event + ".d"].compactMap { path in
                FileStamp(lstatOf: path).map { (path: path, stamp: Optional($0)) }
            }
        // The directories above it too: a chmod or chown there changes what is trusted.
        let ancestors = catalog.ancestors(of: directory).map { (path: $0, stamp: FileStamp(lstatOf: $0)) }
        let (hooks, refused) = catalog.hooks(for: event)
        let inside = (hooks.map(\.path) + refused.map(\.path)).filter { path in !before.contains { $0.path == path } }
        let stamps = before + inside.map { (path: $0, stamp: FileStamp(lstatOf: $0)) }
        let settled = Timestamps.unix() - 0.1
        let cacheable = stamps.allSatisfy { entry in
            guard let stamp = entry.stamp else { return true }
            return !stamp.isSymbolicLink && stamp.changed < settled
        } && before.allSatisfy { FileStamp(lstatOf: $0.path) == $0.stamp }
        entries.withLock { entries in
            entries[event] = cacheable ? Entry(hooks: hooks, refused: refused, stamps: stamps, ancestors: ancestors) : nil
        }
        return (hooks, refused)
    }
}

/// What `lstat` says about a file that matters for a cached lookup.
struct FileStamp: Equatable {
    var device: UInt64
    var inode: UInt64
    var mode: UInt32
    var owner: UInt32
    var size: Int64
    var modified: timespec
    var statusChanged: timespec

    init?(lstatOf path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        mode = UInt32(info.st_mode)
        owner = UInt32(info.st_uid)
        size = Int64(info.st_size)
        modified = info.st_mtim
        statusChanged = info.st_ctim
    }

    var isSymbolicLink: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFLNK) }

    /// The later of the two times, in seconds since the epoch.
    var changed: Double {
        max(Double(modified.tv_sec) + Double(modified.tv_nsec) / 1e9, Double(statusChanged.tv_sec) + Double(statusChanged.tv_nsec) / 1e9)
    }

    /// The same file with the same owner and mode (times aside).
    static func sameTrust(_ a: FileStamp?, _ b: FileStamp?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        return a.device == b.device && a.inode == b.inode && a.mode == b.mode && a.owner == b.owner
    }

    static func == (a: FileStamp, b: FileStamp) -> Bool {
        a.device == b.device && a.inode == b.inode && a.mode == b.mode && a.owner == b.owner && a.size == b.size
            && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
            && a.statusChanged.tv_sec == b.statusChanged.tv_sec && a.statusChanged.tv_nsec == b.statusChanged.tv_nsec
    }
}
