import ArgumentParser
import ChatFlow

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create the state directory layout.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let engine = global.makeEngine()
        try engine.prepare()
        print(engine.root)
    }
}
