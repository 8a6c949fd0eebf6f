import ArgumentParser
import ChatFlow

import Glibc

struct Hooks: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set up hooks.", subcommands: [InstallExamples.self])
}

struct InstallExamples: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-examples",
        abstract: "Write the example hooks (testing, review, @any) into the hooks directory with safe modes.",
        discussion: """
            Files get mode 0755 (samples 0644) and the directory 0755 whatever the umask, so the watcher \
            trusts them. Existing hooks are kept unless --force. Settings go in <root>/hooks.env.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Hooks directory (default: <root>/hooks).", valueName: "DIR"))
    var hooks: String?

    @Flag(help: "Replace hooks that already exist.")
    var force = false

    func run() throws {
        let engine = try global.makeEngine()
        let directory = FileSystem.absolute(hooks ?? engine.layout.hooksDirectory)
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw ChatFlowError.io(operation: "create directory", path: directory, errno: errno)
        }
        // Not group- or world-writable, or the watcher refuses every hook in it.
        guard chmod(directory, 0o755) == 0 else { throw ChatFlowError.io(operation: "chmod", path: directory, errno: errno) }
        for (name, text) in exampleHooks {
            let path = directory + "/" + name
            if FileSystem.exists(path) && !force {
                print("kept     \(path) (exists; --force replaces it)")
                continue
            }
            let temp = directory + "/." + name + ".tmp"
            let file = try FileDescriptor(opening: temp, flags: O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode: 0o600)
            try file.write(Array(text.utf8), at: 0)
            let mode: mode_t = name.hasSuffix(".sample") ? 0o644 : 0o755
            guard fchmod(file.rawValue, mode) == 0 else { throw ChatFlowError.io(operation: "chmod", path: temp, errno: errno) }
            guard rename(temp, path) == 0 else { throw ChatFlowError.io(operation: "rename \(temp) to", path: path, errno: errno) }
            print("wrote    \(path)")
        }
        let settings = engine.layout.hookEnvironmentFile
        if !FileSystem.exists(settings) {
            let file = try FileDescriptor(opening: settings, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
            try file.write(Array(Self.settingsTemplate.utf8), at: 0)
            print("wrote    \(settings)")
        }
    }

    static let settingsTemplate = """
        # Settings the watcher passes to every hook (KEY=VALUE; no expansion). Used by the examples:
        # CHATFLOW_TEST_COMMAND=make test
        # CHATFLOW_REVIEW_COMMAND=
        # CHATFLOW_REWORK_PHASE=implement

        """
}
