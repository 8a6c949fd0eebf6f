import ChatFlow

/// When and how often a failed hook is tried again, learning from Temporal's RetryPolicy and
/// systemd's `Restart=`: a number of retries (attempts after the first), an exponential backoff
/// from a first delay with jitter and a cap, and exit codes that are never retried.
///
/// A run is retried when it exited non-zero (but not with a never-retried code), was killed by a
/// signal, timed out, could not be launched, or its status was lost; never when it succeeded,
/// was refused (fix it, then `chatflow rerun`) or was interrupted by the watcher's shutdown.
struct RetryPolicy: Sendable {
    /// The watcher's defaults (`--retries`, `--retry-delay`, `--retry-max-delay`,
    /// `--no-retry-exit`), overridden per hook by its header lines.
    struct Defaults: Sendable {
        var retries = 0
        var delay = 1.0
        var maxDelay = 300.0
        var noRetryExitCodes: [Int32] = []
    }

    let retries: Int
    let delay: Double
    let maxDelay: Double
    let noRetryExitCodes: [Int32]

    init(hook: Hook, defaults: Defaults) {
        retries = hook.retries ?? defaults.retries
        delay = hook.retryDelay ?? defaults.delay
        maxDelay = max(defaults.maxDelay, hook.retryDelay ?? 0)
        noRetryExitCodes = hook.noRetryExitCodes ?? defaults.noRetryExitCodes
    }

    /// Whether this outcome is worth another attempt.
    func retries(_ outcome: HookOutcome) -> Bool {
        switch outcome {
        case .exited(let code): code != 0 && !noRetryExitCodes.contains(code)
        case .signaled, .timedOut, .failedToLaunch, .statusLost: true
        case .refused, .interrupted: false
        }
    }

    /// The wait before retry `number` (1 for the first): delay × 2^(number−1), capped, then
    /// "equal jitter" (between half of it and all of it), so retries of many hooks spread out.
    func delay(beforeRetry number: Int, random: Double = Double.random(in: 0...1)) -> Double {
        let base = min(maxDelay, delay * Double(1 << min(number - 1, 30)))
        return base / 2 + base / 2 * random
    }
}
