import ChatFlow
import ChatFlowCommand

import Glibc

// A PostgreSQL store (and `migrate`, which always has one) is chatflow-pg's: it links
// postgres-nio and NIO, which a hook's call to `chatflow` must not load. Handed over before
// anything else, as `chatflow ui` is.
let arguments = Array(CommandLine.arguments.dropFirst())
if CommandMain.needsDatabaseDriver(arguments) {
    do {
        try CommandMain.exec("chatflow-pg", arguments, purpose: "the PostgreSQL store")
    } catch {
        writeStandardError("chatflow: error: \(error)\n")
        exit(1)
    }
}
CommandMain.run()
