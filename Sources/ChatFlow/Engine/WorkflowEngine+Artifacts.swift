import Glibc

extension WorkflowEngine {
    /// Largest artifact accepted, so a runaway agent cannot fill the disk through ChatFlow.
    public static let maximumArtifactBytes = 64 << 20

    /// Saves a task artifact as `instances/wfi_<id>/tasks/<name>`, replaced atomically.
    public func saveArtifact(_ id: String, name: String, bytes: [UInt8]) throws(ChatFlowError) {
        try Identifiers.validateInstanceID(id)
        try Identifiers.validateName(name, kind: .artifactName)
        guard bytes.count <= WorkflowEngine.maximumArtifactBytes else {
            throw .invalidJSON(what: "artifact \(name)", reason: "larger than \(WorkflowEngine.maximumArtifactBytes) bytes")
        }
        guard backend.store.exists(id) else { throw .notFound(instanceID: id, root: storeDescription) }
        let directory = layout.tasksDirectory(id)
        try FileSystem.createDirectory(directory)
        // Under the instance lock, so `doctor --fix` can tell a stale temp file from one in use.
        let store = StateStore(layout: layout)
        try store.withExclusiveLock(layout.lockFile(id)) { () throws(ChatFlowError) in
            try StateStore.replace(directory + "/" + name, temp: directory + "/." + name + ".tmp", bytes: bytes, directory: directory)
        }
    }

    /// Names of the task artifacts of an instance, sorted (temp files excluded).
    public func artifacts(_ id: String) throws(ChatFlowError) -> [String] {
        try Identifiers.validateInstanceID(id)
        guard backend.store.exists(id) else { throw .notFound(instanceID: id, root: storeDescription) }
        let directory = layout.tasksDirectory(id)
        guard FileSystem.isDirectory(directory) else { return [] }
        return try FileSystem.list(directory).filter { Identifiers.nameProblem($0) == nil }.sorted()
    }

    /// The bytes of one artifact.
    public func artifact(_ id: String, name: String) throws(ChatFlowError) -> [UInt8] {
        try Identifiers.validateInstanceID(id)
        try Identifiers.validateName(name, kind: .artifactName)
        guard backend.store.exists(id) else { throw .notFound(instanceID: id, root: storeDescription) }
        do {
            let file = try FileDescriptor(opening: layout.tasksDirectory(id) + "/" + name, flags: O_RDONLY | O_NOFOLLOW)
            return try file.readAll(limit: WorkflowEngine.maximumArtifactBytes)
        } catch {
            if case .io(_, _, let code) = error, code == ENOENT { throw .artifactNotFound(instanceID: id, name: name) }
            throw error
        }
    }
}
