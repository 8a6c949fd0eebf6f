import Glibc

/// `doctor` on a state directory: state files and their histories read, feature links match
/// the instances, no temp files left by crashed writers. `--fix` rewrites links (under the
/// features lock), removes stale temp files (under the lock their writer holds) and rewrites
/// another writer's layout (`migrate`); a corrupt state file is never touched.
extension StateStore {
    package func diagnose(fix: Bool, migrate: (String) throws(ChatFlowError) -> Bool) throws(ChatFlowError) -> [DoctorFinding] {
        var findings: [DoctorFinding] = []
        guard FileSystem.isDirectory(layout.instancesDirectory) else {
            return [DoctorFinding(problem: "\(layout.instancesDirectory) does not exist", fix: "chatflow --root '\(layout.root)' init", fixed: false)]
        }

        // State files and their histories.
        var featureOf: [String: String] = [:]
        var unreadable: Set<String> = []
        for id in try instanceIDs() {
            do {
                guard let state = try read(id) else { continue }
                _ = try history(of: state)
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
            linked[feature] = try readLink(feature: feature)
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
            try withExclusiveLock(layout.featuresLockFile) { () throws(ChatFlowError) in
                for (feature, ids) in linksToRewrite { try writeLink(feature: feature, ids: ids) }
            }
        }

        // Temp files left by crashed writers.
        for (directory, name) in staleTempFiles() {
            let path = directory + "/" + name
            var removed = false
            if fix {
                let lock = tempFileLock(directory: directory, name: name)
                try withExclusiveLock(lock) { () throws(ChatFlowError) in
                    // Holding the lock, no writer is between writing and renaming this file.
                    removed = unlink(path) == 0 || errno == ENOENT
                }
            }
            findings.append(DoctorFinding(
                problem: "stale temp file \(path) (left by an interrupted write; never read as state)",
                fix: "chatflow doctor --fix", fixed: removed))
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
        for id in (try? instanceIDs()) ?? [] {
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
