import ChatFlow
import CInotifyTools
import Synchronization

import Glibc

/// What the event source reports for a watched directory.
public enum FileEvent: Sendable, Hashable {
    /// A file named `name` in the directory was created, written, renamed into place or removed.
    case changed(name: String)
    /// Events may have been lost (queue overflow, the directory was removed or recreated):
    /// consumers must rescan the directory.
    case rescan(reason: String)
}

/// The process's single inotify source, over libinotifytools.
///
/// libinotifytools keeps its state in globals and returns events in static buffers, so every
/// call to it happens on one dedicated thread; events are copied into `FileEvent` values before
/// the next call. Subscriptions are requests the thread picks up: it blocks in
/// `inotifytools_next_event` with no timeout (no idle wake-ups) and is woken for a request by an
/// event in a private directory it watches.
public final class FileEventSource: Sendable {
    /// The one instance per process.
    public static let shared = FileEventSource()

    public typealias Handler = @Sendable (FileEvent) -> Void

    private struct Subscriber {
        let directory: String
        let handler: Handler
    }

    private struct Request {
        let token: Int
        let subscriber: Subscriber?
        let done: @Sendable (String?) -> Void
    }

    private struct Shared {
        var started = false
        var nextToken = 0
        var requests: [Request] = []
        var wakeDirectory: String?
        var startError: String?
    }

    private let shared = Mutex(Shared())

    private init() {}

    /// How a failure to get an inotify instance at all begins.
    static let initialisationFailure = "cannot initialise inotify"

    /// Watches `directory` and calls `handler` (on the event thread; keep it short) for every
    /// event in it. Returns a token for `unsubscribe`. Throws when the watch cannot be set up.
    public func subscribe(directory: String, handler: @escaping Handler) async throws(WatchError) -> Int {
        let (token, error) = await request(Subscriber(directory: directory, handler: handler), token: nil)
        if let error { throw .watchFailed(path: directory, reason: error) }
        return token
    }

    /// Stops calling the handler registered under `token`.
    public func unsubscribe(_ token: Int) async {
        _ = await request(nil, token: token)
    }

    private enum Action {
        case fail(String)
        case start
        case wake(String?)
    }

    private func request(_ subscriber: Subscriber?, token existing: Int?) async -> (Int, String?) {
        await withCheckedContinuation { (continuation: CheckedContinuation<(Int, String?), Never>) in
            var token = 0
            let action = shared.withLock { shared -> Action in
                if let existing {
                    token = existing
                } else {
                    shared.nextToken += 1
                    token = shared.nextToken
                }
                if let error = shared.startError { return .fail(error) }
                let assigned = token
                shared.requests.append(
                    Request(token: assigned, subscriber: subscriber, done: { continuation.resume(returning: (assigned, $0)) }))
                if !shared.started {
                    shared.started = true
                    return .start
                }
                return .wake(shared.wakeDirectory)
            }
            switch action {
            case .fail(let error):
                continuation.resume(returning: (token, error))
            case .start:
                startThread { self.run() }
            case .wake(let directory):
                // Any event in the wake directory makes the thread look at its requests; before
                // the directory exists the thread has not yet read its first requests.
                guard let directory else { return }
                let fd = open(directory + "/wake", O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
                if fd >= 0 { close(fd) }
            }
        }
    }

    // MARK: The event thread (the only caller of libinotifytools)

    private func run() {
        var template = Array("/tmp/chatflow-wake-XXXXXX".utf8CString)
        let wakeDirectory: String? = template.withUnsafeMutableBufferPointer { buffer in
            mkdtemp(buffer.baseAddress!).map { String(cString: $0) }
        }
        guard inotifytools_initialize() != 0, let wakeDirectory,
            inotifytools_watch_file(wakeDirectory, Int32(IN_CREATE | IN_OPEN)) != 0
        else {
            let reason = "\(FileEventSource.initialisationFailure): \(String(cString: strerror(inotifytools_error())))"
            let pending = shared.withLock { shared in
                shared.startError = reason
                defer { shared.requests.removeAll() }
                return shared.requests
            }
            for request in pending { request.done(reason) }
            return
        }
        let wakeWatch = watchDescriptor(wakeDirectory)
        shared.withLock { $0.wakeDirectory = wakeDirectory }
        removeOnExit(wakeDirectory)

        var subscribers: [Int: Subscriber] = [:]
        // Per watched directory: its watch descriptor (or nil while it is missing).
        var directoryWatch: [String: Int32] = [:]
        var parentWatch: [String: Int32] = [:]

        func subscribersOf(_ directory: String) -> [Subscriber] {
            subscribers.values.filter { $0.directory == directory }
        }

        func addWatch(_ directory: String) -> String? {
            let mask = IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF
            guard inotifytools_watch_file(directory, Int32(bitPattern: UInt32(mask))) != 0 else {
                return String(cString: strerror(inotifytools_error()))
            }
            directoryWatch[directory] = watchDescriptor(directory)
            let parent = FileSystem.parent(directory)
            if parentWatch[directory] == nil, inotifytools_watch_file(parent, Int32(IN_CREATE | IN_MOVED_TO)) != 0 {
                parentWatch[directory] = watchDescriptor(parent)
            }
            return nil
        }

        func handleRequests() {
            let requests = shared.withLock { shared in
                defer { shared.requests.removeAll() }
                return shared.requests
            }
            for request in requests {
                guard let subscriber = request.subscriber else {
                    subscribers[request.token] = nil
                    request.done(nil)
                    continue
                }
                var error: String?
                if directoryWatch[subscriber.directory] == nil { error = addWatch(subscriber.directory) }
                if error == nil { subscribers[request.token] = subscriber }
                request.done(error)
            }
        }

        handleRequests()
        while true {
            guard let event = inotifytools_next_event(-1) else {
                if inotifytools_error() != 0 && inotifytools_error() != EINTR {
                    writeStandardError("chatflow: inotify read failed: \(String(cString: strerror(inotifytools_error())))\n")
                    usleep(100_000)
                }
                continue
            }
            let wd = event.pointee.wd
            let mask = event.pointee.mask
            let name = eventName(event)
            if wd == wakeWatch {
                handleRequests()
                continue
            }
            if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                for subscriber in subscribers.values { subscriber.handler(.rescan(reason: "inotify queue overflowed")) }
                continue
            }
            for (directory, watch) in directoryWatch where watch == wd {
                if mask & UInt32(IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF) != 0 {
                    if mask & UInt32(IN_IGNORED) != 0 { directoryWatch[directory] = -1 }
                    for subscriber in subscribersOf(directory) { subscriber.handler(.rescan(reason: "watched directory was removed or moved")) }
                } else if let name {
                    for subscriber in subscribersOf(directory) { subscriber.handler(.changed(name: name)) }
                }
            }
            for (directory, watch) in parentWatch where watch == wd && name == FileSystem.baseName(directory) {
                // The directory was recreated: watch the new one and have everyone rescan it.
                if let old = directoryWatch[directory], old >= 0 { inotifytools_remove_watch_by_wd(old) }
                if addWatch(directory) == nil {
                    for subscriber in subscribersOf(directory) { subscriber.handler(.rescan(reason: "watched directory was recreated")) }
                }
            }
        }
    }

    private func eventName(_ event: UnsafeMutablePointer<inotify_event>) -> String? {
        let length = Int(event.pointee.len)
        guard length > 0 else { return nil }
        let raw = UnsafeRawPointer(event).advanced(by: MemoryLayout<inotify_event>.size)
        let bytes = UnsafeRawBufferPointer(start: raw, count: length)
        let end = bytes.firstIndex(of: 0) ?? length
        return String(decoding: bytes[0..<end], as: UTF8.self)
    }

    private func watchDescriptor(_ path: String) -> Int32 {
        let wd = inotifytools_wd_from_filename(path)
        return wd >= 0 ? wd : inotifytools_wd_from_filename(path + "/")
    }
}

private func removeOnExit(_ directory: String) {
    wakeDirectoryToRemove.withLock { $0 = directory }
    atexit {
        if let directory = wakeDirectoryToRemove.withLock({ $0 }) {
            unlink(directory + "/wake")
            rmdir(directory)
        }
    }
}

private let wakeDirectoryToRemove = Mutex<String?>(nil)
