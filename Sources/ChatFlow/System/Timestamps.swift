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

extension Timestamps {
    /// `300`, `30s`, `5m`, `1h` → seconds; `nil` unless positive and finite.
    package static func seconds(duration text: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
        var number = Substring(text)
        var scale = 1.0
        if let last = text.last, let unit = units[last] {
            number = number.dropLast()
            scale = unit
        }
        guard let value = Double(number), value > 0, value.isFinite else { return nil }
        return value * scale
    }
}
