import ChatFlow
import Synchronization

import Glibc

/// An instance id as its 48-bit value: map keys that cost 8 bytes instead of a heap-allocated
/// 16-character string (one character past Swift's inline small strings).
struct InstanceKey: Hashable, Sendable {
    let value: UInt64

    init?(_ id: String) {
        guard Identifiers.isInstanceID(id), let value = Hex.value(id.utf8.dropFirst(4)) else { return nil }
        self.value = value
    }

    /// From the 12 hex digits of an id, as bytes.
    init?(hexDigits: ArraySlice<UInt8>) {
        guard hexDigits.count == 12, let value = Hex.value(hexDigits) else { return nil }
        self.value = value
    }

    var id: String { Identifiers.instanceID(value) }
}

/// The durable record of how far each instance's hooks have run: `.watch/ledger.ndjson`, one
/// `{"instance_id":"wfi_…","next":N}` line per update (last one wins), fdatasync'd before the
/// watcher moves on. `next` is recorded once all of a transition's hooks have finished; while a
/// transition with several hooks runs, each finished hook is recorded too, as
/// `{"instance_id":…,"next":N,"hooks_done":["testing", …]}` (the hooks of transition N that have
/// finished). So a graceful stop never runs a finished hook again, and a watcher killed mid-hook
/// runs only the hook that was in flight again after restart (at-least-once per hook).
public final class Ledger: Sendable {
    private struct State {
        var positions: [InstanceKey: Int] = [:]
        /// Hooks finished of the transition at `positions[key]`.
        var done: [InstanceKey: [String]] = [:]
    }

    private let log: AppendLog
    private let state: Mutex<State>

    /// Loads the ledger and compacts it to one line per instance.
    public init(layout: Layout) throws(ChatFlowError) {
        let path = layout.ledgerFile
        var loaded = State()
        var lines = 0
        try AppendLog.forEachLine(path) { line in
            lines += 1
            guard let (key, next, done) = Ledger.parse(line) else { return }
            loaded.positions[key] = next
            loaded.done[key] = done.isEmpty ? nil : done
        }
        log = try AppendLog(path: path)
        state = Mutex(loaded)
        if lines > loaded.positions.count {
            let keys = loaded.positions.keys.sorted { $0.value < $1.value }
            try log.rewrite(raw: Ledger.lines(keys.map { ($0, loaded.positions[$0]!, loaded.done[$0] ?? []) }))
        }
    }

    /// The positions a ledger file records (last line per instance wins), read without
    /// writing anything: how `chatflow migrate` carries the file watcher's progress elsewhere.
    package static func positions(in layout: Layout) throws(ChatFlowError) -> [String: Int] {
        var positions: [String: Int] = [:]
        guard FileSystem.exists(layout.ledgerFile) else { return positions }
        try AppendLog.forEachLine(layout.ledgerFile) { line in
            guard let (key, next, _) = Ledger.parse(line) else { return }
            positions[key.id] = next
        }
        return positions
    }

    /// The exact form this ledger writes for a position, read without building JSON values;
    /// any other valid JSON line with the keys is accepted through the general parser.
    static func parse(_ line: ArraySlice<UInt8>) -> (InstanceKey, Int, [String])? {
        let prefix = Array(#"{"instance_id":"wfi_"#.utf8)
        let middle = Array(#"","next":"#.utf8)
        if line.count > prefix.count + 12 + middle.count + 1, line.starts(with: prefix) {
            let digits = line.index(line.startIndex, offsetBy: prefix.count)
            let afterDigits = digits + 12
            if let key = InstanceKey(hexDigits: line[digits..<afterDigits]),
                line[afterDigits...].starts(with: middle), line.last == UInt8(ascii: "}")
            {
                let number = line[(afterDigits + middle.count)..<(line.endIndex - 1)]
                if let next = Int(String(decoding: number, as: UTF8.self)), next >= 0 { return (key, next, []) }
            }
        }
        guard let value = try? JSONValue(parsing: Array(line)), let id = value["instance_id"]?.stringValue,
            let key = InstanceKey(id), let next = value["next"]?.intValue, next >= 0
        else { return nil }
        let done = value["hooks_done"]?.arrayValue?.compactMap(\.stringValue) ?? []
        return (key, next, done)
    }

    static func lines(_ updates: [(InstanceKey, Int, [String])]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(updates.count * 40)
        for (key, next, done) in updates {
            bytes += #"{"instance_id":""#.utf8
            bytes += key.id.utf8
            bytes += #"","next":"#.utf8
            bytes += String(next).utf8
            if !done.isEmpty {
                bytes += #","hooks_done":"#.utf8
                bytes += JSONValue.array(done.map(JSONValue.string)).compactText.utf8
            }
            bytes += "}\n".utf8
        }
        return bytes
    }

    /// The next position to dispatch for an instance, or `nil` if it was never seen.
    public func next(_ id: String) -> Int? {
        guard let key = InstanceKey(id) else { return nil }
        return state.withLock { $0.positions[key] }
    }

    /// The hooks of transition `position` already finished (none unless it is the next one).
    public func hooksDone(_ id: String, at position: Int) -> [String] {
        guard let key = InstanceKey(id) else { return [] }
        return state.withLock { $0.positions[key] == position ? $0.done[key] ?? [] : [] }
    }

    /// Durably sets an instance's position even if it is behind the recorded one (its history
    /// was replaced by a shorter one).
    public func reset(_ id: String, to next: Int) throws(ChatFlowError) {
        guard let key = InstanceKey(id) else { return }
        try state.withLock { (state) throws(ChatFlowError) in
            try log.append(raw: Ledger.lines([(key, next, [])]))
            state.positions[key] = next
            state.done[key] = nil
        }
    }

    /// Durably records that `hook` of transition `position` has finished (one fdatasync).
    public func recordHook(_ id: String, position: Int, hook: String) throws(ChatFlowError) {
        guard let key = InstanceKey(id) else { return }
        try state.withLock { (state) throws(ChatFlowError) in
            let current = state.positions[key] ?? 0
            guard current <= position else { return }
            let done = (current == position ? state.done[key] ?? [] : []) + [hook]
            try log.append(raw: Ledger.lines([(key, position, done)]))
            state.positions[key] = position
            state.done[key] = done
        }
    }

    /// Durably records positions (one fdatasync for the batch). Positions only move forward:
    /// an update behind the recorded one is dropped, and memory and file change under one lock so
    /// the file's last line per instance is always the furthest position.
    public func record(_ updates: [(id: String, next: Int)]) throws(ChatFlowError) {
        guard !updates.isEmpty else { return }
        let keyed = updates.compactMap { update in InstanceKey(update.id).map { ($0, update.next) } }
        try state.withLock { (state) throws(ChatFlowError) in
            let forward = keyed.filter { (key, next) in
                let current = state.positions[key] ?? -1
                return current < next || (current == next && state.done[key] != nil)
            }
            guard !forward.isEmpty else { return }
            try log.append(raw: Ledger.lines(forward.map { ($0.0, $0.1, []) }))
            for (key, next) in forward {
                state.positions[key] = next
                state.done[key] = nil
            }
        }
    }
}
