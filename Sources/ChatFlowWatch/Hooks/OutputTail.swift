/// Keeps the last `limit` bytes of a stream and counts the rest.
struct OutputTail {
    let limit: Int
    private var ring: [UInt8] = []
    /// Where the oldest byte is once the ring is full.
    private var start = 0
    private(set) var dropped = 0

    init(limit: Int) { self.limit = max(1, limit) }

    mutating func append(_ chunk: ArraySlice<UInt8>) {
        var chunk = chunk
        if ring.count < limit {
            let room = min(limit - ring.count, chunk.count)
            ring.append(contentsOf: chunk.prefix(room))
            chunk = chunk.dropFirst(room)
        }
        guard !chunk.isEmpty else { return }
        dropped += chunk.count
        // Only the last `limit` bytes of the chunk can survive.
        if chunk.count > limit { chunk = chunk.suffix(limit) }
        for byte in chunk {
            ring[start] = byte
            start = start + 1 == limit ? 0 : start + 1
        }
    }

    var bytes: [UInt8] { Array(ring[start...] + ring[..<start]) }
}

