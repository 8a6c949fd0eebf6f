import ArgumentParser
import ChatFlow

import Glibc

// Documented exit codes: 0 ok, 1 error, 2 usage, 3 not found. ArgumentParser's own usage code
// is 64, so parsing and running are separated here to map each failure to its code.
let command: ParsableCommand
do {
    command = try Chatflow.parseAsRoot(GlobalOptions.movingLeadingOptions(Array(CommandLine.arguments.dropFirst())))
} catch {
    if Chatflow.exitCode(for: error) == .success { Chatflow.exit(withError: error) }
    Output.error(Chatflow.message(for: error) + " (see `chatflow help`)")
    exit(ExitStatus.usage)
}
do {
    var runnable = command
    try runnable.run()
} catch let error as ChatFlowError {
    Output.error(error.description)
    exit(ExitStatus.code(for: error))
} catch let error as ExitCode {
    exit(error.rawValue)
} catch {
    Output.error(Chatflow.message(for: error))
    exit(error is ValidationError ? ExitStatus.usage : ExitStatus.failure)
}
