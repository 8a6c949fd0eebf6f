import CChatFlowShims
import Glibc

/// Feature links: the ids of a feature's instances, one file per feature.
extension StateStore {
    /// Adds `id` to the feature's `.link` (sorted, comma-separated), replaced atomically under
    /// `.locks/features.lock`.
    func addToLink(feature: String, id: String) throws(ChatFlowError) {
        try withExclusiveLock(layout.featuresLockFile) { () throws(ChatFlowError) in
            var ids = try readLink(feature: feature)
            guard !ids.contains(id) else { return }
            ids.append(id)
            try writeLink(feature: feature, ids: ids)
        }
    }

    /// Rewrites a feature's link; call with the features lock held.
    func writeLink(feature: String, ids: [String]) throws(ChatFlowError) {
        let text = ids.sorted().joined(separator: ",")
        try StateStore.replace(
            layout.linkFile(feature), temp: layout.linkTempFile(feature), bytes: Array(text.utf8),
            directory: layout.featuresDirectory)
    }

    /// The ids in a feature's link (empty when there is none); malformed entries are skipped.
    func readLink(feature: String) throws(ChatFlowError) -> [String] {
        let path = layout.linkFile(feature)
        let bytes: [UInt8]
        do {
            let file = try FileDescriptor(opening: path, flags: O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
            bytes = try file.readAll(limit: StateStore.maximumStateBytes)
        } catch {
            if case .io(_, _, let code) = error, code == ENOENT { return [] }
            throw error
        }
        return String(decoding: bytes, as: UTF8.self)
            .split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == " " })
            .map(String.init)
            .filter(Identifiers.isInstanceID)
    }

    /// Ids of all state files in `instances/`, by name alone.
    func instanceIDs() throws(ChatFlowError) -> [String] {
        guard FileSystem.isDirectory(layout.instancesDirectory) else { return [] }
        return try FileSystem.list(layout.instancesDirectory).compactMap(Layout.instanceID(fromStateFileName:)).sorted()
    }
}
