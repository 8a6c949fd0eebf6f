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
        let engine = try global.makeEngine()
        let lease = try parseDuration(ttl, "--ttl")
        try engine.prepare()
        let watch = wait ? try global.changes(of: engine) : nil
        let deadline = timeout.map { Timestamps.unix() + $0 }
        var checked = false
        var warning: String?
        while true {
            if let grant = try engine.claim(phase: phase, owner: owner, feature: feature, ttl: lease) {
                Output.now(json ? grant.json.prettyText : "\(grant.instanceID) \(grant.transition) \(grant.claim.token)")
                return
            }
            // Nothing to take: a phase no workflow has may be a typo (looked at only here, off
            // the path of a claim that wins).
            if !checked {
                warning = try engine.unknownPhaseWarning(phase, feature: feature)
                if let warning, watch != nil, !json { writeStandardError("chatflow: warning: \(warning); waiting for one that has\n") }
                checked = true
            }
            guard let watch else {
                let hint = warning.map { "; " + $0 } ?? " (use --wait to wait for it)"
                Output.error("nothing in phase \(IdentifierKind.quote(phase)) is claimable\(hint)", code: "not_found", json: json)
                throw ExitCode(ExitStatus.notFound)
            }
            // Any change may free a claim or bring an instance in; an expired lease changes no file.
            guard try watch.nextChange(deadline: deadline, wakeAtLeastEvery: 5) != nil else {
                Output.error("nothing in phase \(IdentifierKind.quote(phase)) became claimable within \(HookOutcome.seconds(timeout ?? 0))", code: "timeout", json: json)
                throw ExitCode(ExitStatus.timeout)
            }
        }
    }
}

struct Heartbeat: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Renew a claim's lease (exit 4 if the token is wrong or expired).")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The instance id.") var id: String
    @Option(help: "The claim token.") var token: String
    @Option(help: ArgumentHelp("The new lease, from now (default 5m).", valueName: "DURATION")) var ttl: String = "5m"

    func run() throws {
        let state = try global.makeEngine().heartbeat(id, token: token, ttl: try parseDuration(ttl, "--ttl"))
        print("\(id): claimed until \(Output.time(state.currentEntry?.claim?.expiresAt))")
    }
}

struct Release: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Give a claim up (exit 4 if the token is wrong or expired).")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The instance id.") var id: String
    @Option(help: "The claim token.") var token: String

    func run() throws {
        try global.makeEngine().release(id, token: token)
        print("\(id): released")
    }
}
