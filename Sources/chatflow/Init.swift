import ArgumentParser
import ChatFlow

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the state directory (--root, else $CHATFLOW_ROOT, else ./.chatflow); prints its path.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let engine = WorkflowEngine(root: StateDirectory.forCreating(explicit: global.root))
        try engine.prepare()
        print(engine.root)
    }
}
