/// How `chatflow-watch` runs.
public struct WatchConfiguration: Sendable {
    /// Where hooks live (default `<root>/hooks`).
    public var hooksDirectory: String?
    /// Hooks running at once, across instances.
    public var jobs: Int
    /// Default per-hook timeout in seconds.
    public var timeout: Double = 600
    /// Between SIGTERM and SIGKILL when a hook times out or is ended at shutdown.
    public var killGrace: Double = 5
    /// How long running hooks may take to finish after SIGTERM/SIGINT.
    public var shutdownGrace: Double = 30
    /// Skip transitions made while the watcher was down.
    public var fromNow = false
    /// Process the backlog, then exit.
    public var once = false
    /// Bytes of each run's output kept in its log (the tail).
    public var outputLimit = 1 << 20
    /// Retries of failed hooks unless a hook says otherwise (default: none).
    public var retries = 0
    /// Seconds before the first retry; doubled each time, up to `retryMaxDelay`, with jitter.
    public var retryDelay = 1.0
    public var retryMaxDelay = 300.0
    /// Exit codes never retried.
    public var noRetryExitCodes: [Int32] = []

    var retry: RetryPolicy.Defaults {
        .init(retries: retries, delay: retryDelay, maxDelay: retryMaxDelay, noRetryExitCodes: noRetryExitCodes)
    }

    public init(jobs: Int) {
        self.jobs = jobs
    }
}
