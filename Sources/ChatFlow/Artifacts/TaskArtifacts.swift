import Glibc

/// An instance's task artifacts: files in `instances/wfi_<id>/tasks/`, in the host's state
/// directory whatever the store, opened beneath it without following a link.
public struct TaskArtifacts: Sendable {
    let engine: WorkflowEngine
    var layout: Layout { engine.layout }

    /// Largest artifact accepted, so a runaway agent cannot fill the disk through ChatFlow.
    public static let maximumBytes = 64 << 20

    /// Saves a task artifact as `instances/wfi_<id>/tasks/<name>`, replaced atomically.
    public func save(_ id: String, name: String, bytes: [UInt8]) throws(ChatFlowError) {
        try Identifiers.validateInstanceID(id)
        try Identifiers.validateName(name, kind: .artifactName)
        guard bytes.count <= TaskArtifacts.maximumBytes else {
            throw .invalidJSON(what: "artifact \(name)", reason: "larger than \(TaskArtifacts.maximumBytes) bytes")
        }
        guard engine.hasInstance(id) else { throw .notFound(instanceID: id, root: engine.storeDescription) }
        let directory = layout.tasksDirectory(id)
        try RootDirectory(path: layout.root).makeDirectories(directory)
        // Under the instance lock, so `doctor --fix` can tell a stale temp file from one in use.
        let store = StateStore(layout: layout)
        try store.withExclusiveLock(layout.lockFile(id)) { () throws(ChatFlowError) in
            // Relative to the tasks directory opened without following links: a link planted
            // in the state directory cannot lead the write out of it.
            let tasks = try TaskArtifacts.beneath(layout, ["instances", id, "tasks"], flags: O_RDONLY | O_DIRECTORY)
            let temp = "." + name + ".tmp"
            if unlinkat(tasks.rawValue, temp, 0) != 0 && errno != ENOENT { throw .io(operation: "unlink", path: directory + "/" + temp, errno: errno) }
            let fd = openat(tasks.rawValue, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw .io(operation: "open", path: directory + "/" + temp, errno: errno) }
            let file = FileDescriptor(adopting: fd, path: directory + "/" + temp)
            try file.write(bytes, at: 0)
            try file.syncData()
            guard renameat(tasks.rawValue, temp, tasks.rawValue, name) == 0 else {
                throw .io(operation: "rename \(temp) to", path: directory + "/" + name, errno: errno)
            }
            guard fsync(tasks.rawValue) == 0 else { throw .io(operation: "fsync", path: directory, errno: errno) }
        }
    }

    /// `FileDescriptor(beneath:)` under the state directory, a link on the way named as such.
    static func beneath(_ layout: Layout, _ components: [String], flags: Int32) throws(ChatFlowError) -> FileDescriptor {
        do {
            return try FileDescriptor(beneath: layout.root, components, flags: flags)
        } catch {
            if case .io(_, let path, let code) = error, code == ELOOP || code == ENOTDIR {
                throw .corruptState(path: path, reason: "a symbolic link stands on its way, which could lead out of the state directory; it was not followed (remove the link)")
            }
            throw error
        }
    }

    /// Names of the task artifacts of an instance, sorted (temp files excluded).
    public func names(_ id: String) throws(ChatFlowError) -> [String] {
        try Identifiers.validateInstanceID(id)
        guard engine.hasInstance(id) else { throw .notFound(instanceID: id, root: engine.storeDescription) }
        let directory = layout.tasksDirectory(id)
        guard FileSystem.isDirectory(directory) else { return [] }
        // Listed only when reached without a link (a listing of another directory is a leak too).
        _ = try TaskArtifacts.beneath(layout, ["instances", id, "tasks"], flags: O_RDONLY | O_DIRECTORY)
        return try FileSystem.list(directory).filter { Identifiers.nameProblem($0) == nil }.sorted()
    }

    /// The bytes of one artifact.
    public func read(_ id: String, name: String) throws(ChatFlowError) -> [UInt8] {
        try Identifiers.validateInstanceID(id)
        try Identifiers.validateName(name, kind: .artifactName)
        guard engine.hasInstance(id) else { throw .notFound(instanceID: id, root: engine.storeDescription) }
        do {
            let file = try TaskArtifacts.beneath(layout, ["instances", id, "tasks", name], flags: O_RDONLY | O_NONBLOCK)
            return try file.readAll(limit: TaskArtifacts.maximumBytes)
        } catch {
            if case .io(_, _, let code) = error, code == ENOENT { throw .artifactNotFound(instanceID: id, name: name) }
            throw error
        }
    }
}

extension WorkflowEngine {
    /// This state directory's task artifacts.
    public var artifacts: TaskArtifacts { TaskArtifacts(engine: self) }
}
