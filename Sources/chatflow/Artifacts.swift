import ArgumentParser
import ChatFlow

#if canImport(Glibc)
import Glibc
#endif

struct SaveArtifact: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save-artifact", abstract: "Save standard input (or --file) as a task artifact of an instance.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The instance id.")
    var id: String

    @Argument(help: "The artifact name (letters, digits, '.', '_', '-').")
    var name: String

    func run() throws {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(0, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw ChatFlowError.io(operation: "read", path: "standard input", errno: errno) }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
            if bytes.count > WorkflowEngine.maximumArtifactBytes { break }
        }
        try global.engine.saveArtifact(id, name: name, bytes: bytes)
        print(global.engine.layout.tasksDirectory(id) + "/" + name)
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
        let names = try global.engine.artifacts(id)
        if json { Output.json(.array(names.map(JSONValue.string))) } else { names.forEach { print($0) } }
    }
}
