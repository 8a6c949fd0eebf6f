import Synchronization

/// Workflow schemas already decoded or encoded in this process. A schema never changes after
/// start, yet every trigger read and wrote it whole: with 200 phases, decoding (and checking) and
/// encoding it were most of a trigger's CPU time (perf, fifth session). Keyed by the stored text
/// for decoding and by the value for encoding; bounded, so hostile or many schemas cost memory
/// only up to the bound.
enum SchemaCache {
    private static let limit = 256
    private static let decoded = Mutex<[[UInt8]: WorkflowSchema]>([:])
    private static let encoded = Mutex<[WorkflowSchema: [UInt8]]>([:])

    /// The schema stored as `text` (a `workflow_schema` value), decoded and checked once.
    static func schema(text: ArraySlice<UInt8>) throws(StateDecodingError) -> WorkflowSchema {
        let key = Array(text)
        if let known = decoded.withLock({ $0[key] }) { return known }
        let schema: WorkflowSchema
        do {
            let json = try key.withUnsafeBytes { (raw) throws(JSONParseError) in try JSONParser.parse(raw) }
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
        if let known = encoded.withLock({ $0[schema] }) { return known }
        var writer = JSONWriter(pretty: true, level: 1, capacity: 64 * schema.phases.count + 64)
        writer.write(schema.json)
        let text = writer.bytes
        encoded.withLock { cache in
            if cache.count >= limit { cache.removeAll() }
            cache[schema] = text
        }
        return text
    }
}
