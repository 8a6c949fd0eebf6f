import ChatFlow

/// One reconciled transition on its way to its hooks: what was detected, the state's bytes it
/// was detected in (the hooks' stdin), and the hooks looked up for it when it was seen.
struct TransitionJob: Sendable {
    var transition: Transition
    var stateText: [UInt8]
    /// The hooks to run, in order (the event's, then `@any`'s).
    var hooks: [Hook]
    /// Hook files that will not run, and why (logged when the transition starts).
    var refused: [RefusedHook]
    /// Set when the first hook was already started where the change was read (the fast path).
    var started: StartedRun?
    /// Set for a `chatflow rerun`: the request, removed once its hooks have run.
    var rerun: RerunRequest? = nil
    /// Added to the hooks' environment (the `@hook-failed` variables).
    var extraEnvironment: [String: String] = [:]
}
