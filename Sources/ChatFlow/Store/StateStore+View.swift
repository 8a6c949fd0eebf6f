import CChatFlowShims
import Glibc

/// The state file, a view of the history: written in place into its spare and swapped in, with its check.
extension StateStore {
    /// Replaces the state file atomically and durably (for a change with no history line: a
    /// start, a claim). Call with the instance lock held.
    ///
    /// A durable write goes to a fresh inode, not into the spare: a reader still holding the spare
    /// from two views ago would otherwise see this state before its sync made it committed.
    func write(_ state: InstanceState, hasStart: Bool = false) throws(ChatFlowError) {
        let temp = layout.stateTempFile(state.instanceID)
        if unlink(temp) != 0 && errno != ENOENT { throw .io(operation: "unlink", path: temp, errno: errno) }
        let bytes = StateStore.viewBytes(state)
        try StateStore.checkStorable(bytes, state.instanceID)
        try StateStore.replace(layout.stateFile(state.instanceID), temp: temp, bytes: bytes, directory: layout.instancesDirectory)
        memo.remember(state, text: bytes, hasStart: hasStart)
    }

    /// Writes the view of a committed state (its commit line is durable): into the spare
    /// `.wfi_<id>.json.tmp` in place, checked (`view_crc32`), then swapped with the state file by
    /// `renameat2(RENAME_EXCHANGE)`, so the spare keeps the previous view's inode. No inode is
    /// created or freed per commit: on ext4 without a journal (this project's machine) each new
    /// inode costs a scan past every recently deleted one and each freed block a synchronous
    /// discard, 1.2 ms a trigger over 1,000 instances (docs/BENCHMARKS.md). Where the file
    /// system cannot exchange, or there is no state file yet, it is a plain rename.
    ///
    /// `durable` for the view of a commit that has no record in the commit log (lines too large
    /// for it): the replay after a power cut repairs only the views its records name, so this
    /// one is synced before the swap and cannot be torn.
    @discardableResult
    static func replaceView(_ path: String, temp: String, view: [UInt8], durable: Bool = false) throws(ChatFlowError) -> [UInt8] {
        let bytes = checkedView(view)
        do {
            let file = try FileDescriptor(opening: temp, flags: O_WRONLY | O_CREAT | O_NOFOLLOW)
            let size = try file.size()
            // A new spare's blocks allocated up front: ext4 would otherwise allocate them inside
            // the exchange and start their writeback there, in the critical section.
            if size == 0 { _ = chatflow_allocate(file.rawValue, Int64(bytes.count)) }
            try file.write(bytes, at: 0)
            if size > bytes.count { try file.truncate(to: bytes.count) }
            if durable { try file.syncData() }
        }
        if chatflow_exchange(temp, path) == 0 { return bytes }
        let code = errno
        guard code == ENOENT || code == EINVAL || code == ENOSYS || code == EOPNOTSUPP else {
            throw .io(operation: "exchange \(temp) with", path: path, errno: code)
        }
        if rename(temp, path) != 0 { throw .io(operation: "rename \(temp) to", path: path, errno: errno) }
        return bytes
    }

    /// Refuses, before anything is written, a state whose view a reader would refuse as too large.
    static func checkStorable(_ view: [UInt8], _ id: String) throws(ChatFlowError) {
        guard view.count + viewCheckLength > maximumStateBytes else { return }
        throw .invalidJSON(
            what: "change of \(id)",
            reason: "its state would be \(view.count) bytes, and a state file holds at most \(maximumStateBytes >> 20) MiB; nothing was changed (keep large data as an artifact)")
    }

    /// The bytes before a checked view's members: `{"view_crc32": "` + 8 hex digits + `",`.
    static let viewCheckHead = Array(#"{"view_crc32": ""#.utf8)
    static let viewCheckLength = viewCheckHead.count + 10

    /// A view with its check: the members of `view` (a JSON object's text) after a first member
    /// `view_crc32`, the CRC-32 of every byte after it. An in-place rewrite can leave a mix of
    /// two views (a power cut, or a reader overlapping the write); the check tells it from both.
    static func checkedView(_ view: [UInt8]) -> [UInt8] {
        let body = view.dropFirst()   // "{"
        var bytes = viewCheckHead
        bytes.reserveCapacity(viewCheckLength + body.count)
        let crc = CRC32.checksum(body)
        let digits = Array("0123456789abcdef".utf8)
        for shift in stride(from: 28, through: 0, by: -4) { bytes.append(digits[Int((crc >> UInt32(shift)) & 0xF)]) }
        bytes.append(contentsOf: Array(#"","#.utf8))
        bytes.append(contentsOf: body)
        return bytes
    }

    /// Whether a state file's check matches; `nil` when it has none (a view written to a fresh
    /// file and renamed: another writer's, or a durable write).
    static func viewCheck(_ bytes: [UInt8]) -> Bool? {
        guard bytes.count > viewCheckLength, bytes.starts(with: viewCheckHead),
              bytes[viewCheckLength - 2] == UInt8(ascii: "\""), bytes[viewCheckLength - 1] == UInt8(ascii: ",")
        else { return nil }
        var stored: UInt32 = 0
        for byte in bytes[viewCheckHead.count..<(viewCheckLength - 2)] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            default: return false
            }
            stored = stored << 4 | UInt32(digit)
        }
        return CRC32.checksum(bytes[viewCheckLength...]) == stored
    }

    /// The state file's text.
    package static func viewBytes(_ state: InstanceState) -> [UInt8] {
        viewBytes(state, historyBytes: state.historyBytes)
    }

    static func viewBytes(_ state: InstanceState, historyBytes: Int) -> [UInt8] {
        var writer = JSONWriter(pretty: true, capacity: 1024)
        state.write(to: &writer, historyBytes: historyBytes)
        return view(members: writer.bytes, schema: state.schema)
    }

    /// The state file's text from its members' pretty text: `workflow_schema` sorts last of its
    /// keys, so the schema's cached text is spliced in before the closing brace.
    static func view(members: [UInt8], schema: WorkflowSchema) -> [UInt8] {
        let schema = SchemaCache.prettyText(schema)
        var bytes = members
        bytes.reserveCapacity(members.count + schema.count + 32)
        bytes.removeLast(2)   // "\n}"
        bytes.append(contentsOf: viewSchemaHead)
        bytes.append(contentsOf: schema)
        bytes.append(contentsOf: viewTail)
        return bytes
    }

    static let viewSchemaHead = Array(",\n  \"workflow_schema\": ".utf8)
    static let viewTail = Array("\n}\n".utf8)

    /// temp file, rename over: the file is old or new, never torn. With `directory`, durable when
    /// this returns (fdatasync before the rename, fsync of the directory after); without, a view
    /// whose content is durable elsewhere (a power cut may leave it old, empty or torn).
    static func replace(_ path: String, temp: String, bytes: [UInt8], directory: String?) throws(ChatFlowError) {
        do {
            let file = try FileDescriptor(opening: temp, flags: O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW)
            // Blocks allocated up front: ext4 otherwise allocates a renamed-over file's delayed
            // blocks inside `rename` (auto_da_alloc) and starts their writeback there, in the
            // instance's critical section. Unwritten extents read as zeros after a power cut,
            // which a reader recovers like any torn view.
            _ = chatflow_allocate(file.rawValue, Int64(bytes.count))
            try file.write(bytes, at: 0)
            if directory != nil { try file.syncData() }
        }
        if rename(temp, path) != 0 {
            throw .io(operation: "rename \(temp) to", path: path, errno: errno)
        }
        if let directory { try FileSystem.syncDirectory(directory) }
    }
}
