import ChatFlow
import Synchronization

import Glibc

/// An instance id as its 48-bit value: map keys that cost 8 bytes instead of a heap-allocated
/// 16-character string (one character past Swift's inline small strings).
struct InstanceKey: Hashable, Sendable {
    let value: UInt64

    init?(_ id: String) {
        guard Identifiers.isInstanceID(id), let value = UInt64(id.dropFirst(4), radix: 16) else { return nil }
        self.value = value
    }

    /// From the 12 hex digits of an id, as bytes.
    init?(hexDigits: ArraySlice<UInt8>) {
        guard hexDigits.count == 12 else { return nil }
        var value: UInt64 = 0
        for byte in hexDigits {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = value << 4 | UInt64(byte - 0x30)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = value << 4 | UInt64(byte - 0x61 + 10)
            default: return nil
            }
        }
        self.value = value
    }

    var id: String {
        let hex = String(value, radix: 16)
        return "wfi_" + String(repeating: "0", count: 12 - hex.count) + hex
    }
}

/// The durable record of the last transition dispatched per instance: `.watch/ledger.ndjson`,
/// one `{"instance_id":"wfi_…","next":N}` line per update (last one wins), fdatasync'd before the
/// watcher moves on. A transition is recorded once all of its hooks have finished, so a watcher
/// killed mid-hook runs that transition's hooks again after restart (at-least-once; the window is
/// the hooks running at the moment of the kill).
public final class Ledger: Sendable {
    private let log: AppendLog
    private let positions: Mutex<[InstanceKey: Int]>

    /// Loads the ledger and compacts it to one line per instance.
    public init(layout: Layout) throws(ChatFlowError) {
        let path = layout.watchDirectory + "/ledger.ndjson"
        var loaded: [InstanceKey: Int] = [:]
        var lines = 0
        try AppendLog.forEachLine(path) { line in
            lines += 1
            if let (key, next) = Ledger.parse(line) { loaded[key] = next }
        }
        log = try AppendLog(path: path)
        positions = Mutex(loaded)
        if lines > loaded.count {
            try log.rewrite(raw: Ledger.lines(loaded.sorted { $0.key.value < $1.key.value }.map { ($0.key, $0.value) }))
        }
    }

    /// The exact form this ledger writes, read without building JSON values; any other valid
    /// JSON line with the two keys is accepted through the general parser.
    static func parse(_ line: ArraySlice<UInt8>) -> (InstanceKey, Int)? {
        let prefix = Array(#"{"instance_id":"wfi_"#.utf8)
        let middle = Array(#"","next":"#.utf8)
        if line.count > prefix.count + 12 + middle.count + 1, line.starts(with: prefix) {
            let digits = line.index(line.startIndex, offsetBy: prefix.count)
            let afterDigits = digits + 12
            if let key = InstanceKey(hexDigits: line[digits..<afterDigits]),
                line[afterDigits...].starts(with: middle), line.last == UInt8(ascii: "}")
            {
                let number = line[(afterDigits + middle.count)..<(line.endIndex - 1)]
                if let next = Int(String(decoding: number, as: UTF8.self)), next >= 0 { return (key, next) }
            }
        }
        guard let value = try? JSONValue(parsing: Array(line)), let id = value["instance_id"]?.stringValue,
            let key = InstanceKey(id), let next = value["next"]?.intValue, next >= 0
        else { return nil }
        return (key, next)
    }

    static func lines(_ updates: [(InstanceKey, Int)]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(updates.count * 40)
        for (key, next) in updates {
            bytes += #"{"instance_id":""#.utf8
            bytes += key.id.utf8
            bytes += #"","next":"#.utf8
            bytes += String(next).utf8
            bytes += "}\n".utf8
        }
        return bytes
    }

    /// The next position to dispatch for an instance, or `nil` if it was never seen.
    public func next(_ id: String) -> Int? {
        guard let key = InstanceKey(id) else { return nil }
        return positions.withLock { $0[key] }
    }

    public var count: Int { positions.withLock { $0.count } }

    /// Durably sets an instance's position even if it is behind the recorded one (its history
    /// was replaced by a shorter one).
    public func reset(_ id: String, to next: Int) throws(ChatFlowError) {
        guard let key = InstanceKey(id) else { return }
        try positions.withLock { (positions) throws(ChatFlowError) in
            try log.append(raw: Ledger.lines([(key, next)]))
            positions[key] = next
        }
    }

    /// Durably records positions (one fdatasync for the batch). Positions only move forward:
    /// an update behind the recorded one is dropped, and memory and file change under one lock so
    /// the file's last line per instance is always the furthest position.
    public func record(_ updates: [(id: String, next: Int)]) throws(ChatFlowError) {
        guard !updates.isEmpty else { return }
        let keyed = updates.compactMap { update in InstanceKey(update.id).map { ($0, update.next) } }
        try positions.withLock { (positions) throws(ChatFlowError) in
            let forward = keyed.filter { (key, next) in (positions[key] ?? -1) < next }
            guard !forward.isEmpty else { return }
            try log.append(raw: Ledger.lines(forward))
            for (key, next) in forward { positions[key] = next }
        }
    }
}
