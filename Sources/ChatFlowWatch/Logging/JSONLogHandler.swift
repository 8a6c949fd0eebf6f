import ChatFlow
import Logging

import Glibc

/// One JSON object per line on stderr: `{"time":…,"level":…,"message":…, metadata…}`.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: JSONValue] = [
            "time": .number(JSONNumber(Timestamps.unix())), "level": .string(event.level.rawValue),
            "message": .string("\(event.message)"), "label": .string(label),
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            object[key] = .string("\(value)")
        }
        writeStandardError(JSONValue.object(object).compactText + "\n")
    }
}
