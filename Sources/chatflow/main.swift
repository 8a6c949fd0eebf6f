import ChatFlow
import ChatFlowCommand

import Glibc

// A PostgreSQL store is chatflow-pg's (it links postgres-nio and NIO, which a hook's call to
// `chatflow` must not load): handed over before anything else, as `chatflow ui` is.
let arguments = Array(CommandLine.arguments.dropFirst())
if let url = CommandMain.storeURL(in: arguments), url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
    do {
        try CommandMain.exec("chatflow-pg", arguments, purpose: "the PostgreSQL store")
    } catch {
        writeStandardError("chatflow: error: \(error)\n")
        exit(1)
    }
}
CommandMain.run()
