import ChatFlow
import ChatFlowHarness
import ChatFlowWatch
import Dispatch
import Foundation
import Glibc

/// 9. catchup: the watcher's recovery of a backlog.
extension Bench {
    func catchup() throws {
        for count in quick ? [2000] : [10_000, 100_000] {
            let root = newRoot("catchup-\(count)")
            let engine = WorkflowEngine(root: root)
            for index in 0..<count { _ = try engine.start(schema: schema(3), featureID: "f\(index % 100)") }
            sync()
            // This VM's host trims the page cache within minutes, so "first start" alone measures
            // how much of the just-created instances is still cached (2.1–7.9 s seen). Measured
            // apart: from a cold cache (dropped, when root may), then warm (every state read once).
            var cold: Double?
            if (try? "3\n".write(toFile: "/proc/sys/vm/drop_caches", atomically: false, encoding: .utf8)) != nil {
                let (coldWatcher, seconds) = try startTimedWatcher(root)
                stop(coldWatcher)
                cold = seconds
                unlink(engine.layout.ledgerFile)
            }
            for id in try engine.instanceIDs() { _ = read(engine.layout.stateFile(id)) }
            let (watcher, firstStart) = try startTimedWatcher(root)
            let rss = residentMegabytes(watcher.processIdentifier)
            let idle = quick ? 3.0 : 10.0
            // Idle starts once the catch-up's last writes (ledger, log) are done.
            usleep(500_000)
            let before = ThreadActivity(of: watcher.processIdentifier)
            usleep(UInt32(idle * 1_000_000))
            let after = ThreadActivity(of: watcher.processIdentifier)
            stop(watcher)
            for id in try engine.instanceIDs() { _ = read(engine.layout.stateFile(id)) }
            let (again, restart) = try startTimedWatcher(root)
            stop(again)
            if let cold {
                record(Figure(name: "catchup.\(count)_first_start_cold_cache", unit: "s", n: count, value: cold, note: "page cache dropped; ledger empty"))
            }
            record(Figure(name: "catchup.\(count)_first_start_to_caught_up", unit: "s", n: count, value: firstStart, note: "no hooks; ledger empty; states cached"))
            record(Figure(name: "catchup.\(count)_restart_to_caught_up", unit: "s", n: count, value: restart, note: "ledger present; states cached"))
            record(Figure(name: "catchup.\(count)_rss", unit: "MB", n: count, value: rss))
            record(Figure(
                name: "catchup.\(count)_idle_cpu", unit: "%", value: (after.cpuSeconds - before.cpuSeconds) / idle * 100,
                note: "over \(Int(idle)) s idle; \(after.contextSwitches - before.contextSwitches) thread wake-ups"))
        }
    }

    func residentMegabytes(_ pid: Int32) -> Double {
        for line in lines("/proc/\(pid)/status") where line.hasPrefix("VmRSS:") {
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0
            return kilobytes / 1024
        }
        return 0
    }
}
