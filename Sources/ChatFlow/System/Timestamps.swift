import Glibc

/// The two clocks ChatFlow uses.
package enum Timestamps {
    /// Wall-clock time as Unix seconds, like the original's `time.time()`.
    package static func unix() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// Monotonic seconds for TTLs and durations; the coarse clock is cheap enough for every cache read.
    package static func monotonic(coarse: Bool = false) -> Double {
        var now = timespec()
        clock_gettime(coarse ? CLOCK_MONOTONIC_COARSE : CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
