import Glibc
import Synchronization

/// Per instance, the last state file text this process wrote, with the state it is the view of:
/// a read that finds exactly those bytes in the state file takes that state instead of decoding
/// them again. SQLite keeps its page cache across transactions the same way, checked against the
/// file (its WAL index) rather than trusted; here the check is the whole text, so a memo can be
/// wrong only if decoding a view did not give back the state it was written from, which
/// `EngineTests.viewMemoRoundTrip` checks. Over 1,000 instances the decode was about a third of
/// a trigger's own CPU (perf, docs/BENCHMARKS.md).
final class ViewMemo: Sendable {
    struct Entry {
        var text: [UInt8]
        var state: InstanceState
        /// Whether this process wrote the instance's `start.json` or saw it exist (a commit
        /// needs one; knowing it saves a path walk).
        var hasStart: Bool
    }

    /// Instances remembered at most (a few KiB each); past it the memo starts over.
    static let capacity = 2048

    private let entries = Mutex<[String: Entry]>([:])

    /// The state whose view is `text`, if this process wrote that text last for `id`.
    func state(_ id: String, text: [UInt8]) -> InstanceState? {
        recall(id, text: text)?.state
    }

    /// The entry for `id` if its text is `text`.
    func recall(_ id: String, text: [UInt8]) -> Entry? {
        guard let entry = entries.withLock({ $0[id] }), entry.text.count == text.count else { return nil }
        let same = entry.text.withUnsafeBytes { known in
            text.withUnsafeBytes { read in memcmp(known.baseAddress!, read.baseAddress!, read.count) == 0 }
        }
        return same ? entry : nil
    }

    /// Records that `text` is now `state`'s view (call once it is written).
    func remember(_ state: InstanceState, text: [UInt8], hasStart: Bool) {
        entries.withLock { entries in
            if entries.count >= ViewMemo.capacity, entries[state.instanceID] == nil { entries.removeAll(keepingCapacity: true) }
            entries[state.instanceID] = Entry(text: text, state: state, hasStart: hasStart)
        }
    }
}
