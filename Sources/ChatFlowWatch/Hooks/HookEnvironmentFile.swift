import ChatFlow
import Glibc
import Logging
import Synchronization

/// `<root>/hooks.env`: per-project settings every hook gets in its environment (the example
/// hooks' test and review commands), so they do not depend on the watcher's shell.
///
/// `KEY=VALUE` lines; blank lines and `#` comments are skipped, `export ` is allowed, a value in
/// matching single or double quotes loses them; nothing is expanded. A line that is not a
/// setting is skipped with a warning. The file is re-read when an `lstat` says it changed.
/// It is trusted only as a hook is (`HookSettingsFile`): a link, another user's file or one
/// others can write is refused whole, and settings that load code (`LD_PRELOAD`, `BASH_ENV`)
/// are skipped, each with an error in the watcher's log.
final class HookEnvironmentFile: Sendable {
    let path: String
    private let logger: Logger
    private let cached = Mutex<(stamp: FileStamp?, values: [String: String])?>(nil)

    init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    /// The settings as the file now says (none when it does not exist).
    func values() -> [String: String] {
        let stamp = FileStamp(lstatOf: path)
        if let cached = cached.withLock({ $0 }), cached.stamp == stamp, let stamp, stamp.changed < Timestamps.unix() - 0.1 {
            return cached.values
        }
        let bytes: [UInt8]
        switch HookSettingsFile.read(path) {
        case .success(let read?): bytes = read
        case .success(nil):
            cached.withLock { $0 = (stamp, [:]) }
            return [:]
        case .failure(let refused):
            logger.error("hooks.env refused: hooks run without its settings", metadata: ["reason": "\(refused.reason)"])
            cached.withLock { $0 = (stamp, [:]) }
            return [:]
        }
        var (values, skipped) = HookEnvironmentFile.parse(String(decoding: bytes, as: UTF8.self))
        for line in skipped {
            logger.warning("skipping a line of hooks.env that is not KEY=VALUE", metadata: ["path": "\(path)", "line": "\(line)"])
        }
        for name in values.keys.sorted() where HookSettingsFile.loadsCode(name) {
            values[name] = nil
            logger.error(
                "skipping a setting of hooks.env that makes the loader or the shell run code before a hook starts; set it inside the hook instead",
                metadata: ["path": "\(path)", "name": "\(name)"])
        }
        cached.withLock { $0 = (stamp, values) }
        return values
    }

    /// The settings, and the line numbers skipped.
    static func parse(_ text: String) -> (values: [String: String], skipped: [Int]) {
        var values: [String: String] = [:]
        var skipped: [Int] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = raw.trimmingCharacters(in: " \t\r")[...]
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = line.dropFirst(7).drop(while: { $0 == " " }) }
            guard let equals = line.firstIndex(of: "="), isName(line[..<equals]) else {
                skipped.append(index + 1)
                continue
            }
            var value = String(line[line.index(after: equals)...])
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            values[String(line[..<equals])] = value
        }
        return (values, skipped)
    }

    private static func isName(_ text: Substring) -> Bool {
        guard let first = text.first, first == "_" || first.isLetter && first.isASCII else { return false }
        return text.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }
}
