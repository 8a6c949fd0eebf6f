import ChatFlow
import Synchronization

/// The durable record of the last transition dispatched per instance: `.watch/ledger.ndjson`,
/// one `{"instance_id": …, "next": N}` line per update (last one wins), fdatasync'd before the
/// watcher moves on. A transition is recorded once all of its hooks have finished, so a watcher
/// killed mid-hook runs that transition's hooks again after restart (at-least-once; the window is
/// the hooks running at the moment of the kill).
public final class Ledger: Sendable {
    private let log: AppendLog
    private let positions: Mutex<[String: Int]>

    /// Loads the ledger and compacts it to one line per instance.
    public init(layout: Layout) throws(ChatFlowError) {
        let path = layout.watchDirectory + "/ledger.ndjson"
        var loaded: [String: Int] = [:]
        let (values, _) = try AppendLog.read(path)
        for value in values {
            guard let id = value["instance_id"]?.stringValue, Identifiers.isInstanceID(id),
                let next = value["next"]?.intValue
            else { continue }
            loaded[id] = next
        }
        log = try AppendLog(path: path)
        positions = Mutex(loaded)
        if values.count > loaded.count {
            try log.rewrite(loaded.keys.sorted().map { Ledger.line($0, loaded[$0]!) })
        }
    }

    private static func line(_ id: String, _ next: Int) -> JSONValue {
        ["instance_id": .string(id), "next": .number(JSONNumber(next))]
    }

    /// The next position to dispatch for an instance, or `nil` if it was never seen.
    public func next(_ id: String) -> Int? { positions.withLock { $0[id] } }

    public var count: Int { positions.withLock { $0.count } }

    /// Durably records positions (one fdatasync for the batch). Positions only move forward:
    /// an update behind the recorded one is dropped, and memory and file change under one lock so
    /// the file's last line per instance is always the furthest position.
    public func record(_ updates: [(id: String, next: Int)]) throws(ChatFlowError) {
        guard !updates.isEmpty else { return }
        try positions.withLock { (positions) throws(ChatFlowError) in
            let forward = updates.filter { update in (positions[update.id] ?? -1) < update.next }
            guard !forward.isEmpty else { return }
            try log.append(forward.map { Ledger.line($0.id, $0.next) })
            for update in forward { positions[update.id] = update.next }
        }
    }
}
