import Glibc

/// Which store a process opens: `--store URL`, else a non-empty `$CHATFLOW_STORE`, else the files
/// under the state directory. One reading of the choice for every executable, including
/// `chatflow`, which must decide before it links anything that can open a database.
public enum StoreSelection {
    /// The environment variable that names the store when `--store` is not given.
    public static let environmentVariable = "CHATFLOW_STORE"

    /// `--store`'s help, the same in every executable.
    public static let optionHelp =
        "Where instances live: postgres://USER[:PASSWORD]@HOST[:PORT]/DB (default: $CHATFLOW_STORE, else the files under the state directory)."

    /// `explicit` (a `--store` value), else a non-empty `$CHATFLOW_STORE`; `nil` is the file store.
    public static func url(explicit: String?) -> String? {
        if let explicit { return explicit }
        guard let value = getenv(environmentVariable), value.pointee != 0 else { return nil }
        return String(cString: value)
    }

    /// The store a raw command line names (`--store URL` or `--store=URL`, before any `--`),
    /// else the environment's.
    public static func url(inArguments arguments: [String]) -> String? {
        for (index, argument) in arguments.enumerated() {
            if argument == "--" { break }
            if argument == "--store", index + 1 < arguments.count { return arguments[index + 1] }
            if argument.hasPrefix("--store=") { return String(argument.dropFirst("--store=".count)) }
        }
        return url(explicit: nil)
    }

    /// Whether `url` names a PostgreSQL store.
    public static func isPostgres(_ url: String) -> Bool {
        url.hasPrefix("postgres://") || url.hasPrefix("postgresql://")
    }

    /// The error for a store this build cannot open, naming its scheme only (a URL may hold a
    /// password).
    package static func unsupported(_ url: String, by program: String) -> ChatFlowError {
        .invalidJSON(
            what: "store \(url.prefix(while: { $0 != ":" })):…",
            reason: "\(program) opens postgres:// stores and the files under --root; give one of those")
    }
}
