import ArgumentParser
import ChatFlow

import Glibc

struct SaveArtifact: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save-artifact", abstract: "Save standard input (or --file) as a task artifact of an instance.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The instance id.")
    var id: String

    @Argument(help: "The artifact name (letters, digits, '.', '_', '-').")
    var name: String

    func run() throws {
        let engine = global.makeEngine()
        let bytes = try readToEnd(0, limit: WorkflowEngine.maximumArtifactBytes, path: "standard input")
        try engine.saveArtifact(id, name: name, bytes: bytes)
        print(engine.layout.tasksDirectory(id) + "/" + name)
    }
}

struct Artifacts: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List an instance's task artifacts.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The instance id.")
    var id: String

    @Flag(help: "Print a JSON array of names.")
    var json = false

    func run() throws {
        let engine = global.makeEngine()
        let names = try engine.artifacts(id)
        if json { Output.json(.array(names.map(JSONValue.string))) } else { names.forEach { print($0) } }
    }
}
