import ArgumentParser
import ChatFlow

import Glibc

// Exit codes (README): 0 ok, 1 error, 2 usage or invalid input, 3 not found, 4 conflict.
// ArgumentParser's own usage code is 64, so parsing and running are separated here to map each
// failure to its code; help and --version go to stdout with exit 0.
let arguments = GlobalOptions.movingLeadingOptions(Array(CommandLine.arguments.dropFirst()))
let wantsJSON = arguments.contains("--json")

// `chatflow ui …` is chatflow-ui's, --help included: handed over before parsing.
if arguments.first == "ui" {
    do {
        try UI.exec(Array(arguments.dropFirst()))
    } catch {
        Output.error("\(error)", code: "io", json: false)
        exit(ExitStatus.failure)
    }
}

func finish(_ error: Error) -> Never {
    if Chatflow.exitCode(for: error) == .success {
        print(Chatflow.fullMessage(for: error))
        exit(0)
    }
    if let error = error as? ExitCode { exit(error.rawValue) }
    let (code, kind, message): (Int32, String, String)
    if let error = error as? ChatFlowError {
        (code, kind, message) = (ExitStatus.code(for: error), error.code, error.description)
    } else if error is ValidationError {
        (code, kind, message) = (ExitStatus.usage, "invalid_input", Chatflow.message(for: error))
    } else {
        (code, kind, message) = (ExitStatus.failure, "error", Chatflow.message(for: error))
    }
    Output.error(message, code: kind, json: wantsJSON)
    exit(code)
}

let command: ParsableCommand
do {
    command = try Chatflow.parseAsRoot(arguments)
} catch {
    if Chatflow.exitCode(for: error) == .success { finish(error) }
    Output.error(Chatflow.message(for: error) + " (see `chatflow help`)", code: "usage", json: wantsJSON)
    exit(ExitStatus.usage)
}
do {
    var runnable = command
    try runnable.run()
} catch {
    finish(error)
}
