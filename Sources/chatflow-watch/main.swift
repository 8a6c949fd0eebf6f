import ArgumentParser
import ChatFlow

import Glibc

// Exit codes: 0 stopped or done, 1 error, 2 bad usage (ArgumentParser's own is 64), 3 no state
// directory; help and --version go to stdout with exit 0.
do {
    var command = try WatchCommand.parseAsRoot()
    try command.run()
} catch let error as ExitCode {
    exit(error.rawValue)
} catch {
    if WatchCommand.exitCode(for: error) == .success {
        print(WatchCommand.fullMessage(for: error))
        exit(0)
    }
    writeStandardError(WatchCommand.fullMessage(for: error) + "\n")
    exit(2)
}
