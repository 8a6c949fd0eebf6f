// libFuzzer target: the state decoder, on what any process may write to instances/wfi_<id>.json.
// Properties: never crashes; the watcher's summary read (members skipped) accepts exactly what the
// full read accepts, with the same summary; a state in this format re-encodes to itself.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzState(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let full = try? StateStore.decodeState(bytes, path: "fuzz")
    let summary = try? StateStore.decodeState(bytes, path: "fuzz", skipping: InstanceSummary.unbuilt)
    guard (full == nil) == (summary == nil) else {
        fatalError("full read \(full == nil ? "refused" : "accepted") what the summary read \(summary == nil ? "refused" : "accepted")")
    }
    guard let full, let summary else { return 0 }
    guard InstanceSummary(full) == InstanceSummary(summary) else { fatalError("summaries differ") }
    if full.foreignLayout == nil {
        var writer = JSONWriter(pretty: true, capacity: 2048)
        writer.write(full.json)
        guard let again = try? StateStore.decodeState(writer.bytes, path: "fuzz"), again == full else {
            fatalError("a state does not survive its own encoding")
        }
    }
    return 0
}
