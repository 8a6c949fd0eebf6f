import CChatFlowShims
import Glibc

/// Starting an instance: its directories, its spare view, `start.json`.
extension StateStore {
    /// Creates the instance's directory and `tasks/` for a new instance.
    func createInstanceDirectories(_ id: String) throws(ChatFlowError) {
        try root.makeDirectories(layout.tasksDirectory(id))
    }

    /// A new instance's directory, `tasks/`, empty `history.ndjson` and `start.json`, durable (one
    /// directory sync at start instead of one at its first trigger), then its state file,
    /// durably: until `instances/` is synced the new directory may vanish in a power cut, and
    /// `start.json` with it, so the state file cannot lean on it yet (scripts/crash-check.py
    /// found that).
    func start(_ state: InstanceState) throws(ChatFlowError) {
        let id = state.instanceID
        try createInstanceDirectories(id)
        let history = try root.open(layout.historyFile(id), flags: O_WRONLY | O_CREAT)
        // Its first blocks allocated now (the size stays 0): the first commit then allocates
        // nothing, and its fdatasync writes no block bitmap or group descriptor.
        _ = chatflow_allocate_beyond_end(history.rawValue, Int64(StateStore.historyPreallocation))
        try writeStartFile(state)
        try FileSystem.syncDirectory(layout.instanceDirectory(id))
        try write(state, hasStart: true)
        try makeSpare(state)
    }

    /// Bytes allocated for a new instance's history (about 16 commit lines).
    static let historyPreallocation = 16 * 1024

    /// The view's spare for a new instance, so that no commit of it creates an inode (see
    /// `replaceView`): as long as this first view, its blocks allocated, and no data (zeros until
    /// the first commit writes its view there). No sync: it is never state, and a spare a power
    /// cut takes is simply made again by the next commit.
    func makeSpare(_ state: InstanceState) throws(ChatFlowError) {
        // The checked view's length: its check replaces the opening brace (no CRC needed for that).
        let length = StateStore.viewBytes(state).count - 1 + StateStore.viewCheckLength
        let file = try FileDescriptor(opening: layout.stateTempFile(state.instanceID), flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW)
        if chatflow_allocate(file.rawValue, Int64(length)) != 0 { try file.truncate(to: length) }
    }

    /// Writes and syncs `start.json` (its directory entry is the caller's to sync). Written once,
    /// before any view of the instance needs it, so a plain write suffices.
    func writeStartFile(_ state: InstanceState) throws(ChatFlowError) {
        let file = try root.open(layout.startFile(state.instanceID), flags: O_WRONLY | O_CREAT | O_TRUNC)
        try file.write(StateStore.viewBytes(state), at: 0)
        try file.syncData()
    }
}
