import ArgumentParser
import ChatFlow
import Foundation

import Glibc

/// A worker process the scenarios spawn (and kill).
struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A torture worker process (spawned by the scenarios).")

    @Option(help: "The state directory.")
    var root: String

    @Option(help: "crash: random start/trigger/fail until killed; advance: trigger --ids round robin; mix: contention.")
    var mode: String

    @Option(help: "Instance ids (advance, mix).")
    var ids: String = ""

    @Option(help: "Triggers (advance).")
    var count: Int = 0

    @Option(help: "Milliseconds between triggers (advance).")
    var intervalMs: Double = 0

    @Option(help: "Seconds to run (mix).")
    var seconds: Double = 5

    @Option(help: "Who claims (claim).")
    var name: String = "worker"

    func run() throws {
        let engine = WorkflowEngine(root: root)
        var generator = SystemRandomNumberGenerator()
        // Small schemas keep state files small; `mix` moves with --to so nothing completes.
        let schema = WorkflowSchema(name: "torture", phaseNames: (0..<20).map { "p\($0)" })
        switch mode {
        case "crash":
            var mine: [String] = []
            while true {
                let roll = Int.random(in: 0..<10, using: &generator)
                if mine.isEmpty || roll < 3 {
                    mine.append(try engine.start(schema: schema, featureID: "f\(Int.random(in: 0..<4, using: &generator))"))
                } else if roll < 9 {
                    _ = try? engine.trigger(mine.randomElement(using: &generator)!, data: ["n": .number(JSONNumber(roll))])
                } else {
                    _ = try? engine.fail(mine.removeLast(), reason: "crash worker")
                }
            }
        case "advance":
            let list = ids.split(separator: ",").map(String.init)
            for sequence in 0..<count {
                try engine.trigger(list[sequence % list.count])
                if intervalMs > 0 { usleep(useconds_t(intervalMs * 1000)) }
            }
        case "mix":
            try mix(engine, schema: schema, generator: &generator)
        case "claim":
            try claimRounds(engine)
        default:
            throw ValidationError("unknown mode \(mode)")
        }
    }

    /// Round k: waits (inotify) until instance k of `--ids` is in `review`, then makes one claim
    /// and prints `k WIN ID TOKEN` or `k LOSE`; the scenario reads that line from all 16
    /// workers before it opens round k+1.
    private func claimRounds(_ engine: WorkflowEngine) throws {
        let list = ids.split(separator: ",").map(String.init)
        let watch = try InstanceWatch(layout: engine.layout)
        for (round, id) in list.enumerated() {
            while try engine.freshStatus(id)?.currentPhase != "review" {
                guard try watch.nextChange(deadline: Timestamps.unix() + 60) != nil else { throw ValidationError("round \(round) never opened") }
            }
            let line: String
            if let grant = try engine.claim(phase: "review", owner: name, ttl: 3600) {
                line = "\(round) WIN \(grant.instanceID) \(grant.claim.token)"
            } else {
                line = "\(round) LOSE"
            }
            try writeAll(1, Array((line + "\n").utf8), operation: "write", path: "standard output")
        }
    }

    /// Mixed operations for `seconds`; prints `{"triggers": {id: n}, "unexpected": [...]}`.
    private func mix(_ engine: WorkflowEngine, schema: WorkflowSchema, generator: inout SystemRandomNumberGenerator) throws {
        let shared = ids.split(separator: ",").map(String.init)
        var mine: [String] = []
        var triggers: [String: Int] = [:]
        var unexpected: [String] = []
        let deadline = Timestamps.monotonic() + seconds
        while Timestamps.monotonic() < deadline {
            do {
                switch Int.random(in: 0..<20, using: &generator) {
                case 0..<2:
                    mine.append(try engine.start(schema: schema, featureID: "mix"))
                case 2..<8:
                    guard let id = mine.randomElement(using: &generator) else { continue }
                    try engine.trigger(id, to: "p\(Int.random(in: 0..<20, using: &generator))")
                    triggers[id, default: 0] += 1
                case 8..<14:
                    let id = shared.randomElement(using: &generator)!
                    try engine.trigger(id, to: "p\(Int.random(in: 0..<20, using: &generator))")
                    triggers[id, default: 0] += 1
                case 14:
                    guard !mine.isEmpty else { continue }
                    try engine.fail(mine.removeLast())
                case 15..<18:
                    _ = try engine.status((mine + shared).randomElement(using: &generator)!)
                default:
                    _ = try engine.featureStatus("mix")
                }
            } catch {
                unexpected.append(error.description)
            }
        }
        let report: JSONValue = [
            "triggers": .object(triggers.mapValues { .number(JSONNumber($0)) }),
            "unexpected": .array(unexpected.map(JSONValue.string)),
        ]
        print(report.compactText)
    }
}
