import Glibc

/// A hook that passed the trust checks.
public struct Hook: Sendable, Hashable {
    /// Absolute path to execute.
    public var path: String
    /// Path relative to the hooks directory (`testing`, `testing.d/10-unit`).
    public var name: String
    /// Per-hook timeout from a `# chatflow-timeout: SECONDS` line near the top of the file.
    public var timeout: Double?
    /// Per-hook retry settings from `# chatflow-retries: N`, `# chatflow-retry-delay: SECONDS`
    /// and `# chatflow-no-retry-exit: CODE[,CODE…]` lines (nil: the watcher's defaults).
    public var retries: Int?
    public var retryDelay: Double?
    public var noRetryExitCodes: [Int32]?

    package init(
        path: String, name: String, timeout: Double? = nil, retries: Int? = nil, retryDelay: Double? = nil, noRetryExitCodes: [Int32]? = nil
    ) {
        (self.path, self.name, self.timeout) = (path, name, timeout)
        (self.retries, self.retryDelay, self.noRetryExitCodes) = (retries, retryDelay, noRetryExitCodes)
    }
}

/// A hook file that will not be run, and why.
public struct RefusedHook: Error, Sendable, Hashable {
    public var path: String
    /// What is wrong and how to fix it.
    public var reason: String
}

/// Finds the hooks for an event under the hooks directory and checks that each may be trusted.
///
/// For event `E` (a phase name, `@any`, `@completed`, `@failed`): the file `E`, then the
/// executables in `E.d/` in name order. Dot files, `*.sample` and editor backups are ignored.
/// A hook runs only if it is a regular file (or a symlink to one inside the hooks directory)
/// owned by the watcher's user or root, not group- or world-writable, and executable, in a
/// directory with the same ownership and permissions.
package struct HookCatalog: Sendable {
    package let directory: String

    package init(directory: String) { self.directory = directory }

    /// The runnable hooks for `event`, in order, and the ones refused.
    package func hooks(for event: String) -> (hooks: [Hook], refused: [RefusedHook]) {
        var hooks: [Hook] = []
        var refused: [RefusedHook] = []
        guard HookCatalog.isSafeEventName(event) else { return ([], []) }
        var candidates: [String] = []
        let single = directory + "/" + event
        if FileSystem.exists(single) { candidates.append(single) }
        let folder = directory + "/" + event + ".d"
        if FileSystem.isDirectory(folder, followingLinks: false) {
            if let problem = directoryProblem(folder) {
                refused.append(RefusedHook(path: folder, reason: problem))
            } else {
                candidates += ((try? FileSystem.list(folder)) ?? []).filter { !HookCatalog.isIgnored($0) }.sorted().map { folder + "/" + $0 }
            }
        }
        guard !candidates.isEmpty else { return ([], refused) }
        if let problem = directoryProblem(directory) ?? ancestorProblem(directory) {
            return ([], refused + candidates.map { RefusedHook(path: $0, reason: problem) })
        }
        for path in candidates {
            if let problem = fileProblem(path) {
                refused.append(RefusedHook(path: path, reason: problem))
            } else {
                var hook = Hook(path: path, name: name(of: path))
                HookCatalog.readDirectives(path, into: &hook)
                hooks.append(hook)
            }
        }
        return (hooks, refused)
    }

    /// A hook's name: its path in the hooks directory (`review`, `@any.d/10-audit`).
    package func name(of path: String) -> String { String(path.dropFirst(directory.count + 1)) }

    static func isSafeEventName(_ event: String) -> Bool {
        let name = event.hasPrefix("@") ? String(event.dropFirst()) : event
        return Identifiers.nameProblem(name) == nil
    }

    /// Names never treated as hooks: dot files, samples, editor backups.
    package static func isIgnored(_ name: String) -> Bool {
        name.hasPrefix(".") || name.hasSuffix(".sample") || name.hasSuffix("~") || name.hasSuffix(".bak")
            || name.hasSuffix(".orig") || name.hasSuffix(".swp") || name.hasSuffix(".tmp") || name.hasSuffix(".disabled")
    }

    /// Why a hooks directory (or `E.d/`) is not trusted, or `nil`.
    /// A hooks directory that is a symbolic link is judged by its target (whose own parents
    /// `ancestorProblem` checks, as it resolves links).
    package func directoryProblem(_ path: String) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return "cannot read \(path): \(String(cString: strerror(errno)))" }
        if info.st_mode & S_IFMT == S_IFLNK {
            guard let target = FileSystem.realPath(path), stat(target, &info) == 0 else { return "\(path) is a broken symbolic link" }
            guard info.st_mode & S_IFMT == S_IFDIR else { return "\(path) links to \(target), which is not a directory" }
            return ownershipProblem(info, path: target, what: "directory (the target of \(path))")
        }
        if let problem = ownershipProblem(info, path: path, what: "directory") { return problem }
        return nil
    }

    /// The directories above `path`, up to `/` (what `ancestorProblem` checks; a watcher's cached
    /// lookup is re-validated against them too).
    package func ancestors(of path: String) -> [String] {
        guard var current = FileSystem.realPath(path) else { return [] }
        var result: [String] = []
        while current != "/" {
            current = FileSystem.parent(current)
            result.append(current)
        }
        return result
    }

    /// Why a directory above `path` would let another user replace what it names (rename the
    /// hooks directory, or one of its parents, and put theirs in its place), or `nil`. Each must
    /// be owned by the watcher's user or root and writable by no one else, except a sticky
    /// directory such as `/tmp` (others cannot rename what they do not own there) and a
    /// directory writable by the user's own private group (umask 002 with a group of one).
    package func ancestorProblem(_ path: String) -> String? {
        for directory in ancestors(of: path) {
            var info = stat()
            guard lstat(directory, &info) == 0 else { return "cannot read \(directory): \(String(cString: strerror(errno)))" }
            let user = geteuid()
            if info.st_uid != user && info.st_uid != 0 {
                return "directory \(directory), above the hooks, is owned by uid \(info.st_uid), not by the watcher's user (uid \(user)) or root, so its owner could put other hooks in their place; fix: keep the project in a directory of your own"
            }
            let sticky = info.st_mode & S_ISVTX != 0
            let others = info.st_mode & 0o002 != 0 && !sticky
            let group = info.st_mode & 0o020 != 0 && !sticky && !HookCatalog.isPrivateGroup(info.st_gid)
            if others || group {
                return "directory \(directory), above the hooks, is \(others ? "world" : "group")-writable, so others could put other hooks in their place; fix: chmod \(others ? "o" : "g")-w '\(directory)'"
            }
        }
        return nil
    }

    /// Whether `gid` is the user's own private group: their primary group, named as they are,
    /// with no other members (the umask 002 convention).
    package static func isPrivateGroup(_ gid: gid_t) -> Bool {
        gid == getegid() && privateGroup
    }

    /// Whether the user's primary group is theirs alone: named as they are, no member listed
    /// but them, and no other user's primary group. Looked up once per process.
    private static let privateGroup: Bool = {
        let gid = getegid()
        guard let user = getpwuid(geteuid()), let group = getgrgid(gid) else { return false }
        let name = String(cString: user.pointee.pw_name)
        let uid = user.pointee.pw_uid
        guard String(cString: group.pointee.gr_name) == name else { return false }
        var member = group.pointee.gr_mem
        while let listed = member?.pointee {
            if String(cString: listed) != name { return false }
            member = member?.advanced(by: 1)
        }
        setpwent()
        defer { endpwent() }
        while let other = getpwent() {
            if other.pointee.pw_gid == gid && other.pointee.pw_uid != uid { return false }
        }
        return true
    }()

    private func ownershipProblem(_ info: stat, path: String, what: String) -> String? {
        let user = geteuid()
        if info.st_uid != user && info.st_uid != 0 {
            return "\(what) \(path) is owned by uid \(info.st_uid), not by the watcher's user (uid \(user)) or root; fix: chown \(user) '\(path)'"
        }
        if info.st_mode & 0o022 != 0 {
            return "\(what) \(path) is group- or world-writable, so others could change what runs; fix: chmod go-w '\(path)'"
        }
        return nil
    }

    /// Why a hook file would be refused, or `nil` when it would run.
    package func fileProblem(_ path: String) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return "cannot read \(path): \(String(cString: strerror(errno)))" }
        if info.st_mode & S_IFMT == S_IFLNK {
            guard let resolved = FileSystem.realPath(path), let base = FileSystem.realPath(directory), resolved.hasPrefix(base + "/") else {
                return "\(path) is a symbolic link that leads out of the hooks directory; fix: copy the script into \(directory) or call it from a small wrapper hook"
            }
            guard stat(resolved, &info) == 0 else { return "\(path) is a broken symbolic link" }
            // The directories between the hooks directory and the target: trusted as the hooks
            // directory is, or whoever may write one could swap the target.
            var parent = FileSystem.parent(resolved)
            while parent.hasPrefix(base + "/") {
                var folder = stat()
                guard lstat(parent, &folder) == 0 else { return "cannot read \(parent): \(String(cString: strerror(errno)))" }
                if let problem = ownershipProblem(folder, path: parent, what: "directory") { return problem }
                parent = FileSystem.parent(parent)
            }
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            return "\(path) is not a regular file; hooks must be executable files"
        }
        if let problem = ownershipProblem(info, path: path, what: "hook") { return problem }
        if info.st_mode & 0o100 == 0 {
            return "hook \(path) is not executable; fix: chmod u+x '\(path)' (or rename it to \(FileSystem.baseName(path)).sample to silence this)"
        }
        return nil
    }

    /// The `# chatflow-…:` lines in the first kilobyte: `timeout` (seconds), `retries` (attempts
    /// after the first), `retry-delay` (seconds before the first retry), `no-retry-exit` (exit
    /// codes never retried). A value that does not parse is ignored.
    static func readDirectives(_ path: String, into hook: inout Hook) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return }
        let text = String(decoding: buffer[0..<count], as: UTF8.self)
        for line in text.split(separator: "\n") {
            guard let range = line.firstRange(of: "chatflow-") else { continue }
            let rest = line[range.upperBound...]
            guard let colon = rest.firstIndex(of: ":") else { continue }
            let key = String(rest[..<colon])
            let value = rest[rest.index(after: colon)...].trimmingCharacters(in: " \t\r")
            switch key {
            case "timeout":
                if let seconds = Double(value), seconds > 0, seconds.isFinite { hook.timeout = seconds }
            case "retries":
                if let number = Int(value), number >= 0, number <= 100 { hook.retries = number }
            case "retry-delay":
                if let seconds = Double(value), seconds >= 0, seconds.isFinite { hook.retryDelay = seconds }
            case "no-retry-exit":
                let codes = value.split(separator: ",").compactMap { Int32(String($0).filter { $0 != " " }) }
                if !codes.isEmpty { hook.noRetryExitCodes = codes }
            default: continue
            }
        }
    }
}

extension Substring {
    package func trimmingCharacters(in characters: String) -> String {
        String(drop(while: { characters.contains($0) }).reversed().drop(while: { characters.contains($0) }).reversed())
    }
}

/// `<root>/hooks.env`, trusted only as a hook is: read from the descriptor whose owner and mode
/// were checked (so no file swapped in after the check is read), never through a link.
package enum HookSettingsFile {
    /// The file's bytes (`nil` when it does not exist), or why it is refused.
    package static func read(_ path: String, limit: Int = 1 << 20) -> Result<[UInt8]?, RefusedHook> {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { return .success(nil) }
            if code == ELOOP {
                return .failure(RefusedHook(path: path, reason: "\(path) is a symbolic link, so whoever controls where it leads controls the hooks' settings; fix: replace it with a regular file of your own"))
            }
            return .failure(RefusedHook(path: path, reason: "cannot read \(path): \(String(cString: strerror(code)))"))
        }
        let file = FileDescriptor(adopting: fd, path: path)
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            return .failure(RefusedHook(path: path, reason: "cannot read \(path): \(String(cString: strerror(errno)))"))
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            return .failure(RefusedHook(path: path, reason: "\(path) is not a regular file"))
        }
        let user = geteuid()
        if info.st_uid != user && info.st_uid != 0 {
            return .failure(RefusedHook(path: path, reason: "\(path) is owned by uid \(info.st_uid), not by the watcher's user (uid \(user)) or root, so its settings could run another user's code; fix: chown \(user) '\(path)'"))
        }
        if info.st_mode & 0o022 != 0 {
            return .failure(RefusedHook(path: path, reason: "\(path) is group- or world-writable, so others could set what the hooks run; fix: chmod go-w '\(path)'"))
        }
        guard let bytes = try? file.readAll(limit: limit) else {
            return .failure(RefusedHook(path: path, reason: "cannot read \(path), or it is larger than \(limit) bytes"))
        }
        return .success(bytes)
    }

    /// Whether a setting would make the dynamic loader or the shell run code before a hook's
    /// first line (`LD_PRELOAD`, `BASH_ENV`, …): such settings are refused even in a trusted file,
    /// since a hook's own environment is the place for them.
    package static func loadsCode(_ name: String) -> Bool {
        name.hasPrefix("LD_") || name.hasPrefix("BASH_FUNC_") || codeLoading.contains(name)
    }

    private static let codeLoading: Set<String> = [
        "BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "GCONV_PATH", "LOCPATH", "NLSPATH",
        "MALLOC_TRACE", "HOSTALIASES", "GLIBC_TUNABLES",
    ]
}
