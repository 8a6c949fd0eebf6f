import Glibc

/// Every failure of the engine, naming the thing and the reason, and saying what to do.
public enum ChatFlowError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No instance with this id exists under the root.
    case notFound(instanceID: String, root: String)
    /// An identifier that would be unsafe or ambiguous in a path.
    case invalidIdentifier(kind: IdentifierKind, value: String, reason: String)
    /// A workflow schema that cannot be run.
    case invalidSchema(reason: String)
    /// `--to` named a phase the instance's schema does not have.
    case unknownPhase(phase: String, instanceID: String, known: [String])
    /// The instance is completed or failed; nothing was written.
    case instanceFinished(instanceID: String, status: InstanceStatus)
    /// A wait whose condition can never hold: the instance finished without meeting it.
    case cannotHold(instanceID: String, status: InstanceStatus, phase: String, wanted: String)
    /// A state file exists but cannot be read as ChatFlow state. It is never overwritten.
    case corruptState(path: String, reason: String)
    /// Caller-supplied JSON (context, data, meta, schema file) is malformed or of the wrong kind.
    case invalidJSON(what: String, reason: String)
    /// `trigger` was told which transition to expect and the instance has moved on; nothing was written.
    case transitionMismatch(instanceID: String, expected: Int, actual: Int)
    /// A system call failed.
    case io(operation: String, path: String, errno: Int32)
    /// No state directory was found; `looked` lists where, nearest first.
    case noStateDirectory(looked: [String])
    /// A feature with no instances under the root.
    case featureNotFound(featureID: String, root: String)
    /// An instance has no artifact of that name.
    case artifactNotFound(instanceID: String, name: String)
    /// A claim token was wrong or expired, or a claimed instance was changed without its token.
    case claimMismatch(instanceID: String, reason: String)
    /// No hook run of the instance matches (`detail` says which filter).
    case runNotFound(instanceID: String, detail: String)
    /// A database store failed or could not be reached (`store` names it without its password).
    case store(operation: String, store: String, reason: String)
    /// `chatflow migrate`: the destination already holds an instance the source has.
    case alreadyExists(instanceID: String, store: String)
    /// `claim` without waiting found nothing to take (`hint` says what to do).
    case nothingClaimable(phase: String, hint: String)
    /// A wait ran out before its condition held (`what` is the condition, in words).
    case timedOut(seconds: Double, what: String)

    public var description: String {
        switch self {
        case .notFound(let id, let root):
            return "instance \(id) not found under \(root); list instances with `chatflow list`"
        case .invalidIdentifier(let kind, let value, let reason):
            return "invalid \(kind.rawValue) \(IdentifierKind.quote(value)): \(reason)"
        case .invalidSchema(let reason):
            return "invalid workflow schema: \(reason)"
        case .unknownPhase(let phase, let id, let known):
            return "phase \(IdentifierKind.quote(phase)) is not in the schema of \(id); known phases: \(known.joined(separator: ", "))"
        case .instanceFinished(let id, let status):
            return "instance \(id) is \(status.rawValue); nothing was changed (start a new instance to continue the work)"
        case .cannotHold(let id, let status, let phase, let wanted):
            return "instance \(id) is \(status.rawValue) in phase \(IdentifierKind.quote(phase)) and will not change: it will never be \(wanted) (wait for another instance, or start a new one)"
        case .corruptState(let path, let reason):
            return "corrupt state file \(path): \(reason); it was left untouched (inspect it, or run `chatflow doctor`)"
        case .invalidJSON(let what, let reason):
            return "invalid \(what): \(reason)"
        case .transitionMismatch(let id, let expected, let actual):
            return "instance \(id) is at transition \(actual), not \(expected); another process moved it on, nothing was changed"
        case .io(let operation, let path, let code):
            return "\(operation) \(path) failed: \(String(cString: strerror(code))) (errno \(code))"
        case .noStateDirectory(let looked):
            let places = looked.count == 1 ? looked[0] : "\(looked[0]) and its parents up to \(looked.last!)"
            return "no ChatFlow state directory: looked for \(places); create one with `chatflow init` (or pass --root DIR, or set CHATFLOW_ROOT)"
        case .featureNotFound(let feature, let root):
            return "feature \(IdentifierKind.quote(feature)) has no instances under \(root); list instances with `chatflow list`"
        case .artifactNotFound(let id, let name):
            return "instance \(id) has no artifact \(IdentifierKind.quote(name)); list them with `chatflow artifacts \(id)`"
        case .claimMismatch(let id, let reason):
            return "instance \(id): \(reason); nothing was changed"
        case .store(let operation, let store, let reason):
            return "\(operation) on \(store) failed: \(reason); check that the server is up and the URL is right (--store or $CHATFLOW_STORE)"
        case .alreadyExists(let id, let store):
            return "instance \(id) already exists in \(store); nothing was copied (migrate into a store without the source's instances)"
        case .nothingClaimable(let phase, let hint):
            return "nothing in phase \(IdentifierKind.quote(phase)) is claimable\(hint)"
        case .timedOut(let seconds, let what):
            return "the condition (\(what)) did not hold within \(HookOutcome.seconds(seconds)); wait again to keep waiting"
        case .runNotFound(let id, let detail):
            return "no hook run of \(id)\(detail.isEmpty ? "" : " matches " + detail) is recorded; list them with `chatflow runs \(id)`"
        }
    }

    /// A stable name for the kind of error, for agents that parse `--json` errors.
    public var code: String {
        switch self {
        case .notFound, .noStateDirectory, .featureNotFound, .artifactNotFound, .runNotFound, .nothingClaimable: "not_found"
        case .invalidIdentifier, .invalidSchema, .unknownPhase, .invalidJSON: "invalid_input"
        case .instanceFinished, .cannotHold: "finished"
        case .corruptState: "corrupt"
        case .transitionMismatch, .claimMismatch, .alreadyExists: "conflict"
        case .io, .store: "io"
        case .timedOut: "timeout"
        }
    }
}

/// The kinds of identifier ChatFlow validates before they touch a path.
public enum IdentifierKind: String, Sendable {
    case instanceID = "instance id"
    case featureID = "feature id"
    case workflowName = "workflow name"
    case phaseName = "phase name"
    case artifactName = "artifact name"

    /// Quotes a value for an error message, escaping control characters and truncating long input.
    public static func quote(_ value: String) -> String {
        var shown = ""
        for scalar in value.unicodeScalars.prefix(80) {
            shown += Terminal.isUnsafe(scalar) ? scalar.escaped(asASCII: true) : String(scalar)
        }
        if value.unicodeScalars.count > 80 { shown += "…" }
        return "'" + shown + "'"
    }
}

/// Text from others (an owner name, user data) made safe to print on a terminal: C0 and C1
/// control characters (ESC and CSI start terminal sequences) and the bidirectional overrides
/// and isolates (U+202E can make a line read backwards) are shown escaped, `\u{1B}`.
public enum Terminal {
    public static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
        var shown = ""
        for scalar in text.unicodeScalars {
            if isUnsafe(scalar) {
                shown += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                shown.unicodeScalars.append(scalar)
            }
        }
        return shown
    }

    /// A control character or a bidirectional formatting character.
    public static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00..<0x20, 0x7F...0x9F, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}
