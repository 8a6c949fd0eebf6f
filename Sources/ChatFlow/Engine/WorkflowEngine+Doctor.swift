import Glibc

/// One problem `doctor` found in a state directory.
public struct DoctorFinding: Sendable, Hashable {
    /// What is wrong, naming the file.
    public var problem: String
    /// The command (or step) that fixes it.
    public var fix: String
    /// Whether `doctor --fix` repaired it.
    public var fixed: Bool

    public var json: JSONValue {
        ["problem": .string(problem), "fix": .string(fix), "fixed": .bool(fixed)]
    }
}

extension WorkflowEngine {
    /// Checks the whole state directory: every state file and its history parse and agree,
    /// feature links match the instances, no stale temp files, hooks would be trusted, inotify
    /// limits are workable. With `fix`, repairs what is safe: rebuilds links from the instances
    /// (under the features lock) and removes stale temp files (under the lock that guards them).
    /// Corrupt state files are never touched.
    public func diagnose(fix: Bool, hooksDirectory: String? = nil) throws(ChatFlowError) -> [DoctorFinding] {
        let store = StateStore(layout: layout)
        var findings: [DoctorFinding] = []
        if !(backend.store is StateStore) {
            // A database store: every instance and its history must read; links, temp files and
            // lock files are the file store's and do not exist there.
            let database = backend.store
            for id in try database.instanceIDs(feature: nil) {
                do {
                    guard let state = try database.read(id) else { continue }
                    _ = try database.history(of: state, from: 0)
                } catch {
                    findings.append(DoctorFinding(
                        problem: error.description,
                        fix: "inspect its rows in \(database.description) (chatflow_instances, chatflow_history); ChatFlow never rewrites them", fixed: false))
                }
            }
            return findings + hostFindings(hooksDirectory: hooksDirectory)
        }

        guard FileSystem.isDirectory(layout.instancesDirectory) else {
            return [DoctorFinding(problem: "\(layout.instancesDirectory) does not exist", fix: "chatflow --root '\(root)' init", fixed: false)]
        }

        // State files and their histories.
        var featureOf: [String: String] = [:]
        var unreadable: Set<String> = []
        for id in try store.instanceIDs() {
            do {
                guard let state = try store.read(id) else { continue }
                _ = try store.history(of: state)
                featureOf[id] = state.featureID
                if let layoutReason = state.foreignLayout {
                    let migrated = fix ? (try migrate(id)) : false
                    findings.append(DoctorFinding(
                        problem: "\(layout.stateFile(id)) was written in another writer's layout (\(layoutReason))",
                        fix: "chatflow doctor --fix (rewrites it in this format, keeping every history entry)", fixed: migrated))
                }
            } catch {
                unreadable.insert(id)
                findings.append(DoctorFinding(
                    problem: error.description,
                    fix: "inspect it; to set it aside: mv '\(layout.stateFile(id))' '\(layout.root)/\(id).json.broken'", fixed: false))
            }
        }

        // Feature links against the instances they should list.
        var expected: [String: Set<String>] = [:]
        for (id, feature) in featureOf { expected[feature, default: []].insert(id) }
        var linked: [String: [String]] = [:]
        for name in (try? FileSystem.list(layout.featuresDirectory)) ?? [] where name.hasSuffix(".link") && !name.hasPrefix(".") {
            let feature = String(name.dropLast(5))
            guard Identifiers.nameProblem(feature) == nil else { continue }
            linked[feature] = try store.readLink(feature: feature)
        }
        var linksToRewrite: [String: [String]] = [:]
        for feature in Set(expected.keys).union(linked.keys).sorted() {
            let have = Set(linked[feature] ?? [])
            let want = expected[feature] ?? []
            // Ids whose file is unreadable stay listed: their feature cannot be known.
            let dangling = have.subtracting(want).filter { !unreadable.contains($0) }.sorted()
            let missing = want.subtracting(have).sorted()
            guard !dangling.isEmpty || !missing.isEmpty else { continue }
            linksToRewrite[feature] = Array(want.union(have.intersection(unreadable)))
            let path = layout.linkFile(feature)
            if !missing.isEmpty {
                findings.append(DoctorFinding(
                    problem: "\(path) does not list \(missing.count) instance(s) of the feature: \(missing.prefix(5).joined(separator: ","))",
                    fix: "chatflow doctor --fix", fixed: fix))
            }
            if !dangling.isEmpty {
                findings.append(DoctorFinding(
                    problem: "\(path) lists \(dangling.count) instance(s) that are not in this feature or do not exist: \(dangling.prefix(5).joined(separator: ","))",
                    fix: "chatflow doctor --fix", fixed: fix))
            }
        }
        if fix && !linksToRewrite.isEmpty {
            try store.withExclusiveLock(layout.featuresLockFile) { () throws(ChatFlowError) in
                for (feature, ids) in linksToRewrite { try store.writeLink(feature: feature, ids: ids) }
            }
        }

        // Temp files left by crashed writers.
        for (directory, name) in staleTempFiles() {
            let path = directory + "/" + name
            var removed = false
            if fix {
                let lock = tempFileLock(directory: directory, name: name)
                try store.withExclusiveLock(lock) { () throws(ChatFlowError) in
                    // Holding the lock, no writer is between writing and renaming this file.
                    removed = unlink(path) == 0 || errno == ENOENT
                }
            }
            findings.append(DoctorFinding(
                problem: "stale temp file \(path) (left by an interrupted write; never read as state)",
                fix: "chatflow doctor --fix", fixed: removed))
        }

        findings += hostFindings(hooksDirectory: hooksDirectory)
        if fix { invalidateAll() }
        return findings
    }

    /// What belongs to this host whatever the store: hook permissions and inotify limits.
    private func hostFindings(hooksDirectory: String?) -> [DoctorFinding] {
        var findings: [DoctorFinding] = []
        // Hooks.
        let catalog = HookCatalog(directory: FileSystem.absolute(hooksDirectory ?? layout.hooksDirectory))
        if FileSystem.isDirectory(catalog.directory) {
            if let problem = catalog.directoryProblem(catalog.directory) ?? catalog.ancestorProblem(catalog.directory) {
                findings.append(DoctorFinding(problem: problem, fix: "see the fix in the message", fixed: false))
            }
            for name in ((try? FileSystem.list(catalog.directory)) ?? []).sorted() where !HookCatalog.isIgnored(name) && name != "README.md" {
                let path = catalog.directory + "/" + name
                var paths = [path]
                if name.hasSuffix(".d"), FileSystem.isDirectory(path, followingLinks: false) {
                    if let problem = catalog.directoryProblem(path) {
                        findings.append(DoctorFinding(problem: problem, fix: "see the fix in the message", fixed: false))
                    }
                    paths = ((try? FileSystem.list(path)) ?? []).filter { !HookCatalog.isIgnored($0) }.sorted().map { path + "/" + $0 }
                }
                for hook in paths {
                    if let problem = catalog.fileProblem(hook) {
                        findings.append(DoctorFinding(problem: problem, fix: "see the fix in the message", fixed: false))
                    }
                }
            }
        }

        // The hooks' settings, trusted as a hook is.
        let settings = layout.hookEnvironmentFile
        switch HookSettingsFile.read(settings) {
        case .failure(let refused):
            findings.append(DoctorFinding(problem: refused.reason + " (the watcher ignores it)", fix: "see the fix in the message", fixed: false))
        case .success(let bytes?):
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
                let name = line.drop(while: { $0 == " " }).replacing("export ", with: "").prefix { $0 != "=" }
                if HookSettingsFile.loadsCode(String(name)), line.contains("=") {
                    findings.append(DoctorFinding(
                        problem: "\(settings) sets \(name), which makes the loader or the shell run code before a hook starts: the watcher skips it",
                        fix: "remove the line; set it inside the hook that needs it", fixed: false))
                }
            }
        case .success(nil): break
        }

        // inotify limits the watcher depends on.
        for (setting, minimum) in [("max_queued_events", 16384), ("max_user_watches", 1024), ("max_user_instances", 16)] {
            let path = "/proc/sys/fs/inotify/" + setting
            guard let bytes = try? FileDescriptor(opening: path, flags: O_RDONLY).readAll(limit: 64),
                let value = Int(String(decoding: bytes, as: UTF8.self).trimmingNewlines), value < minimum
            else { continue }
            findings.append(DoctorFinding(
                problem: "fs.inotify.\(setting) is \(value), below \(minimum): chatflow-watch may have to rescan often",
                fix: "sysctl -w fs.inotify.\(setting)=\(minimum)", fixed: false))
        }
        return findings
    }

    /// Temp files of the engine's atomic writes, as (directory, name).
    private func staleTempFiles() -> [(String, String)] {
        var result: [(String, String)] = []
        for name in (try? FileSystem.list(layout.instancesDirectory)) ?? [] where name.hasPrefix(".") && name.hasSuffix(".tmp") {
            // An instance's `.wfi_<id>.json.tmp` is its view's spare (the previous view), not debris.
            if let id = Layout.instanceID(fromStateFileName: String(name.dropFirst().dropLast(4))), FileSystem.exists(layout.stateFile(id)) { continue }
            result.append((layout.instancesDirectory, name))
        }
        for name in (try? FileSystem.list(layout.featuresDirectory)) ?? [] where name.hasPrefix(".") && name.hasSuffix(".tmp") {
            result.append((layout.featuresDirectory, name))
        }
        for id in (try? StateStore(layout: layout).instanceIDs()) ?? [] {
            let tasks = layout.tasksDirectory(id)
            for name in (try? FileSystem.list(tasks)) ?? [] where name.hasPrefix(".") && name.hasSuffix(".tmp") {
                result.append((tasks, name))
            }
        }
        return result.sorted { $0.0 + $0.1 < $1.0 + $1.1 }
    }

    /// The lock a temp file's writer holds: the instance's for state and artifacts, the features
    /// lock for links.
    private func tempFileLock(directory: String, name: String) -> String {
        if directory == layout.featuresDirectory { return layout.featuresLockFile }
        if directory == layout.instancesDirectory {
            let id = String(name.dropFirst().prefix(16))
            if Identifiers.isInstanceID(id) { return layout.lockFile(id) }
        }
        let id = FileSystem.baseName(FileSystem.parent(directory))
        return Identifiers.isInstanceID(id) ? layout.lockFile(id) : layout.locksDirectory + "/doctor.lock"
    }
}
