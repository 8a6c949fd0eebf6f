import Glibc

/// Finding the state directory, as git finds `.git`: an explicit `--root`, else
/// `$CHATFLOW_ROOT`, else the nearest `.chatflow` from the current directory upward.
public enum StateDirectory {
    /// The name searched for.
    public static let name = ".chatflow"

    /// An existing state directory, or `noStateDirectory` naming where it looked.
    public static func find(explicit: String? = nil) throws(ChatFlowError) -> String {
        if let given = explicit ?? environmentRoot() {
            guard FileSystem.isDirectory(given) else { throw .noStateDirectory(looked: [FileSystem.absolute(given)]) }
            return given
        }
        var looked: [String] = []
        var directory = FileSystem.absolute(FileSystem.currentDirectory())
        while true {
            let candidate = directory == "/" ? "/" + name : directory + "/" + name
            looked.append(candidate)
            if FileSystem.isDirectory(candidate) { return candidate }
            if directory == "/" { throw .noStateDirectory(looked: looked) }
            directory = FileSystem.parent(directory)
        }
    }

    /// Where `chatflow init` creates one: `explicit`, else `$CHATFLOW_ROOT`, else `./.chatflow`.
    public static func forCreating(explicit: String? = nil) -> String {
        explicit ?? environmentRoot() ?? name
    }

    /// The state directory of a host whose instances live in a database store: it keeps only
    /// this host's hooks, runs and artifacts, so it is found as `find` finds it, else created
    /// where `forCreating` says (with what `wait` watches, on first use).
    package static func forDatabaseStore(explicit: String? = nil) throws(ChatFlowError) -> String {
        let root = (try? find(explicit: explicit)) ?? forCreating(explicit: explicit)
        if !FileSystem.isDirectory(Layout(root: root).instancesDirectory) { try StateStore(layout: Layout(root: root)).prepare() }
        return root
    }

    /// The zero-config engine's root: an existing one found as `find` finds it, else `./.chatflow`
    /// (created by the first write).
    static func zeroConfigRoot() -> String {
        (try? find()) ?? forCreating()
    }

    private static func environmentRoot() -> String? {
        guard let value = getenvString("CHATFLOW_ROOT"), !value.isEmpty else { return nil }
        return value
    }
}
