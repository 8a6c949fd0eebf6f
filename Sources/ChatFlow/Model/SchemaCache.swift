import Synchronization

/// Workflow schemas already decoded or encoded in this process. A schema never changes after
/// start, yet every trigger read and wrote it whole: with 200 phases, decoding (and checking) and
/// encoding it were most of a trigger's CPU time (perf, docs/BENCHMARKS.md). Keyed by the stored text
/// for decoding and by the value for encoding; bounded, so hostile or many schemas cost memory
/// only up to the bound.
enum SchemaCache {
    private static let limit = 256
    private static let decoded = Mutex<[Text: WorkflowSchema]>([:])
    private static let encoded = Mutex<Encoded>(Encoded())

    /// A stored text as a key, hashed in one pass over its bytes: `[UInt8]`'s own hashing feeds
    /// the hasher a byte at a time, which was 2.4 % of a trigger's CPU samples at 41 phases.
    private struct Text: Hashable {
        let bytes: [UInt8]
        func hash(into hasher: inout Hasher) { bytes.withUnsafeBytes { hasher.combine(bytes: $0) } }
    }

    /// The texts written, and the last one again: a process that commits mostly writes one schema,
    /// and comparing it is cheaper than hashing it.
    private struct Encoded {
        var texts: [WorkflowSchema: [UInt8]] = [:]
        var last: (schema: WorkflowSchema, text: [UInt8])?
    }

    /// The schema stored as `text` (a `workflow_schema` value), decoded and checked once.
    static func schema(text: ArraySlice<UInt8>) throws(StateDecodingError) -> WorkflowSchema {
        let key = Text(bytes: Array(text))
        if let known = decoded.withLock({ $0[key] }) { return known }
        let schema: WorkflowSchema
        do {
            let json = try key.bytes.withUnsafeBytes { (raw) throws(JSONParseError) in try JSONParser.parse(raw) }
            schema = try WorkflowSchema(json: json)
        } catch let error as JSONParseError {
            throw StateDecodingError(reason: "workflow_schema: not valid JSON: \(error)")
        } catch let error as ChatFlowError {
            throw StateDecodingError(reason: error.description)
        } catch {
            throw StateDecodingError(reason: "\(error)")
        }
        decoded.withLock { cache in
            if cache.count >= limit { cache.removeAll() }
            cache[key] = schema
        }
        return schema
    }

    /// The schema as the state file holds it: pretty JSON indented for a member of the top level.
    static func prettyText(_ schema: WorkflowSchema) -> [UInt8] {
        let known = encoded.withLock { (cache) -> [UInt8]? in
            if let last = cache.last, last.schema == schema { return last.text }
            guard let text = cache.texts[schema] else { return nil }
            cache.last = (schema, text)
            return text
        }
        if let known { return known }
        var writer = JSONWriter(pretty: true, level: 1, capacity: 64 * schema.phases.count + 64)
        writer.write(schema.json)
        let text = writer.bytes
        encoded.withLock { cache in
            if cache.texts.count >= limit { cache.texts.removeAll() }
            cache.texts[schema] = text
            cache.last = (schema, text)
        }
        return text
    }
}
