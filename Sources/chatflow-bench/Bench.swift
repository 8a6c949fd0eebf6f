import ChatFlow
import ChatFlowHarness
import ChatFlowWatch
import Foundation
import Histogram

import Glibc

/// One scenario's figures. Latencies are in milliseconds.
struct Figure {
    var name: String
    var unit: String
    var p50: Double?
    var p90: Double?
    var p99: Double?
    var max: Double?
    var n: Int?
    var value: Double?
    var note: String = ""

    var json: JSONValue {
        var object: [String: JSONValue] = ["name": .string(name), "unit": .string(unit)]
        for (key, number) in [("p50", p50), ("p90", p90), ("p99", p99), ("max", max), ("value", value)] {
            if let number { object[key] = .number(JSONNumber((number * 1000).rounded() / 1000)) }
        }
        if let n { object["n"] = .number(JSONNumber(n)) }
        if !note.isEmpty { object["note"] = .string(note) }
        return .object(object)
    }
}

/// Latency samples in microseconds, summarised by an HdrHistogram.
struct Samples {
    private var histogram = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    private(set) var count = 0

    mutating func add(seconds: Double) {
        _ = histogram.record(UInt64(Swift.max(0, seconds) * 1_000_000))
        count += 1
    }

    /// Milliseconds at `percentile`.
    func percentile(_ percentile: Double) -> Double { Double(histogram.valueAtPercentile(percentile)) / 1000 }

    func figure(_ name: String, note: String = "") -> Figure {
        func ms(_ percentile: Double) -> Double { Double(histogram.valueAtPercentile(percentile)) / 1000 }
        return Figure(
            name: name, unit: "ms", p50: ms(50), p90: ms(90), p99: ms(99), max: Double(histogram.max) / 1000, n: count,
            note: note)
    }
}

/// When one of a writer's triggers was called and when it returned (unix seconds).
struct WriterTime {
    let called: Double
    let returned: Double
}

final class Bench: Harness {
    let quick: Bool
    let json: Bool
    private(set) var figures: [Figure] = []

    init(quick: Bool, json: Bool) throws {
        self.quick = quick
        self.json = json
        try super.init(scratchPrefix: ".chatflow-bench")
    }

    func record(_ figure: Figure) {
        figures.append(figure)
        if json {
            print(figure.json.compactText)
        } else {
            FileHandle.standardError.write(Data("  \(figure.name): done\n".utf8))
        }
    }

    func printTable() {
        func cell(_ value: Double?) -> String { value.map { String(format: "%.3f", $0) } ?? "-" }
        print("scenario".padding(toLength: 51, withPad: " ", startingAt: 0) + "unit      p50       p90       p99       max        n      value  note")
        for figure in figures {
            var line = figure.name.padding(toLength: 51, withPad: " ", startingAt: 0)
            line += figure.unit.padding(toLength: 7, withPad: " ", startingAt: 0)
            for value in [figure.p50, figure.p90, figure.p99, figure.max] {
                line += cell(value).leftPadded(10)
            }
            line += (figure.n.map(String.init) ?? "-").leftPadded(9)
            line += (figure.value.map { String(format: "%.1f", $0) } ?? "-").leftPadded(11)
            print(line + "  " + figure.note)
        }
    }

    /// Starts chatflow-watch (warnings only) and returns it with the seconds until it was ready.
    func startTimedWatcher(_ root: String, _ extra: [String] = []) throws -> (Process, Double) {
        let start = Timestamps.monotonic()
        let watcher = try startWatcher(root, extra, logLevel: "warning", log: root + "/../watch.log")
        return (watcher, Timestamps.monotonic() - start)
    }

    /// Writer report lines `<id> <seq> <returned> <called>` → times per (id, seq).
    func writerTimes(_ path: String) -> [String: [Int: WriterTime]] {
        var result: [String: [Int: WriterTime]] = [:]
        for line in lines(path) {
            let parts = line.split(separator: " ")
            guard parts.count == 4, let seq = Int(parts[1]), let returned = Double(parts[2]), let called = Double(parts[3]) else { continue }
            result[String(parts[0]), default: [:]][seq] = WriterTime(called: called, returned: returned)
        }
        return result
    }
}
