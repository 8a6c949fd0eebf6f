import ArgumentParser
import ChatFlow

/// `30`, `30s`, `5m`, `1h` → seconds.
func parseDuration(_ text: String, _ option: String) throws -> Double {
    guard let seconds = Timestamps.seconds(duration: text) else {
        throw ValidationError("\(option) must be a duration like 300, 30s, 5m or 1h, not \(IdentifierKind.quote(text))")
    }
    return seconds
}

struct ClaimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "claim",
        abstract: "Take the oldest instance in a phase that is unclaimed (or whose lease expired); prints its id, transition and claim token.",
        discussion: """
            Atomic under the instance's lock: concurrent claimers get exactly one winner. Renew with \
            `chatflow heartbeat ID --token T`, give up with `release`, and pass `--token T` to `trigger`/`fail`; \
            the transition clears the claim. Exit 3 when nothing is claimable (with --wait: 5 on timeout); \
            a phase no instance's workflow has is named as such, with the phases they have.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "The phase to take work from.")
    var phase: String

    @Option(name: .customLong("as"), help: ArgumentHelp("Who claims (an agent's name).", valueName: "NAME"))
    var owner: String

    @Option(help: "Only this feature's instances.")
    var feature: String?

    @Option(help: ArgumentHelp("The lease (default 5m).", valueName: "DURATION"))
    var ttl: String = "5m"

    @Flag(help: "Wait (event-driven) until something is claimable.")
    var wait = false

    @Option(help: ArgumentHelp("With --wait: give up after this many seconds (exit 5).", valueName: "SECONDS"))
    var timeout: Double?

    @Flag(help: "Print JSON: {instance_id, transition, owner, token, expires_at}.")
    var json = false

    func run() throws {
        var arguments = ArgumentValues()
        arguments["phase"] = phase
        arguments["as"] = owner
        arguments["feature"] = feature
        arguments.set("ttl", try parseDuration(ttl, "--ttl"))
        arguments.set("wait", wait)
        arguments.set("timeout_seconds", timeout)
        try global.call("claim", arguments.values, warn: wait && !json) { result in
            let grant = result.document
            // `read id transition token < <(chatflow claim …)`.
            let line = [grant["instance_id"]?.stringValue, grant["transition"]?.intValue.map(String.init), grant["token"]?.stringValue]
            Output.now(json ? grant.prettyText : line.map { $0 ?? "" }.joined(separator: " "))
        }
    }
}

struct Heartbeat: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Renew a claim's lease (exit 4 if the token is wrong or expired).")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The instance id.") var id: String
    @Option(help: "The claim token.") var token: String
    @Option(help: ArgumentHelp("The new lease, from now (default 5m).", valueName: "DURATION")) var ttl: String = "5m"

    @Flag(help: "Print JSON: {instance_id, owner, expires_at}.") var json = false

    func run() throws {
        let values: [String: JSONValue] = ["id": .string(id), "token": .string(token), "ttl": .number(JSONNumber(try parseDuration(ttl, "--ttl")))]
        Output.result(try global.call("heartbeat", values), json: json)
    }
}

struct Release: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Give a claim up (exit 4 if the token is wrong or expired).")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The instance id.") var id: String
    @Option(help: "The claim token.") var token: String

    @Flag(help: "Print JSON: {instance_id, released}.") var json = false

    func run() throws {
        Output.result(try global.call("release", ["id": .string(id), "token": .string(token)]), json: json)
    }
}
