import ArgumentParser
import ChatFlow

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a state directory and say how to fix each problem; --fix repairs what is safe.",
        discussion: """
            Checks every state file and history, feature links against instances, stale temp files, \
            hook permissions and inotify limits. --fix rebuilds links and removes stale temp files; \
            corrupt state files are never touched. Exit 0 when nothing is left to fix, 1 otherwise.
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Repair what is safe to repair.")
    var fix = false

    @Option(help: ArgumentHelp("Hooks directory to check (default: <root>/hooks).", valueName: "DIR"))
    var hooks: String?

    @Flag(help: "Print a JSON array of findings.")
    var json = false

    func run() throws {
        let engine = try global.makeEngine()
        let findings = try engine.diagnose(fix: fix, hooksDirectory: hooks)
        if json {
            Output.json(.array(findings.map(\.json)))
        } else if findings.isEmpty {
            let checked = engine.storeDescription == engine.root ? engine.root : "\(engine.storeDescription) (and this host's \(engine.root))"
            print("\(checked): no problems found")
        } else {
            for finding in findings {
                print((finding.fixed ? "fixed: " : "problem: ") + finding.problem)
                if !finding.fixed { print("  fix: " + finding.fix) }
            }
        }
        if findings.contains(where: { !$0.fixed }) { throw ExitCode(ExitStatus.failure) }
    }
}
