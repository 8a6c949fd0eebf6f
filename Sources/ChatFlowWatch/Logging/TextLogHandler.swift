import ChatFlow
import Glibc
import Logging

/// A compact text line on stderr: `2026-11-25T14:03:12.123Z info transition instance.id=… …`.
public struct TextLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]

    public init(label: String) {}

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = timestamp() + " " + event.level.rawValue + " " + "\(event.message)"
        let all = metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 })
        for key in all.keys.sorted() {
            let value = "\(all[key]!)"
            line += " " + key + "=" + (value.contains(" ") || value.isEmpty ? JSONValue.string(value).compactText : value)
        }
        writeStandardError(line + "\n")
    }

    private func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &parts)
        let millis = String(Int(now.tv_nsec / 1_000_000))
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } + "."
            + String(repeating: "0", count: 3 - millis.count) + millis + "Z"
    }
}
