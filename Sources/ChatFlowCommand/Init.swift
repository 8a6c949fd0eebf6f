import ArgumentParser
import ChatFlow

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the state directory (--root, else $CHATFLOW_ROOT, else ./.chatflow); prints its path.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        if let url = global.storeURL {
            // The database's tables (migrations), and this host's directory for hooks and runs.
            let engine = try GlobalOptions.openStore(url, root: StateDirectory.forCreating(explicit: global.root))
            try engine.prepare()
            try WorkflowEngine(root: engine.root).prepare()
            print(engine.storeDescription)
            return
        }
        let engine = WorkflowEngine(root: StateDirectory.forCreating(explicit: global.root))
        try engine.prepare()
        print(engine.root)
    }
}
