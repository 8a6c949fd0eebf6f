import ChatFlow
import ChatFlowTestSupport
import Foundation
import Logging
import Testing
@testable import ChatFlowWatch

import Glibc

/// Runs `body` with standard error sent to a file, and returns what was written.
private func capturingStandardError(_ body: () -> Void) -> String {
    let directory = TemporaryDirectory()
    let path = directory.path + "/stderr"
    let file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let saved = dup(2)
    dup2(file, 2)
    body()
    dup2(saved, 2)
    close(saved)
    close(file)
    return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

@Suite("Log handlers", .serialized)
struct LogHandlerTests {
    @Test("JSON: one parsable object per line with level, message, label and metadata; below the level nothing")
    func json() throws {
        let text = capturingStandardError {
            var handler = JSONLogHandler(label: "watch")
            handler.logLevel = .info
            var logger = Logger(label: "watch", factory: { _ in handler })
            logger[metadataKey: "session"] = "s1"
            logger.info("hook run", metadata: ["hook.name": "testing", "note": "with \"quotes\"\nand a newline"])
            logger.debug("not shown")
        }
        let lines = text.split(separator: "\n")
        #expect(lines.count == 1)
        let object = try JSONValue(parsing: String(lines[0]))
        #expect(object["level"]?.stringValue == "info")
        #expect(object["message"]?.stringValue == "hook run")
        #expect(object["label"]?.stringValue == "watch")
        #expect(object["session"]?.stringValue == "s1")
        #expect(object["note"]?.stringValue == "with \"quotes\"\nand a newline")
        #expect(object["time"]?.doubleValue != nil)
    }

    @Test("text: time, level, message, then sorted key=value with values that need it quoted")
    func text() {
        let text = capturingStandardError {
            var handler = TextLogHandler(label: "watch")
            handler.logLevel = .warning
            let logger = Logger(label: "watch", factory: { _ in handler })
            logger.warning("hook refused", metadata: ["reason": "group-writable hook", "b": "2", "a": ""])
            logger.info("not shown")
        }
        let lines = text.split(separator: "\n")
        #expect(lines.count == 1)
        let line = String(lines[0])
        #expect(line.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warning hook refused a="" b=2 reason="group-writable hook"/) != nil, "\(line)")
    }
}
