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
    /// Checks the whole state directory: every instance and its history read (for the file
    /// store also: feature links match the instances, no stale temp files), hooks would be
    /// trusted, inotify limits are workable. With `fix`, repairs what is safe (the store says
    /// what that is). Corrupt state is never touched.
    public func diagnose(fix: Bool, hooksDirectory: String? = nil) throws(ChatFlowError) -> [DoctorFinding] {
        var findings = try backend.store.diagnose(fix: fix) { (id) throws(ChatFlowError) -> Bool in try migrate(id) }
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
}
