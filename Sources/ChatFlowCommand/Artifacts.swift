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

    @Option(help: ArgumentHelp("Read the artifact from this file instead of standard input.", valueName: "PATH"))
    var file: String?

    func run() throws {
        let engine = try global.makeEngine()
        let bytes: [UInt8]
        if let file {
            let descriptor: FileDescriptor
            do {
                descriptor = try FileDescriptor(opening: file, flags: O_RDONLY)
            } catch {
                throw ChatFlowError.invalidJSON(what: "--file \(file)", reason: "cannot be read: \(error)")
            }
            bytes = try readToEnd(descriptor.rawValue, limit: TaskArtifacts.maximumBytes, path: file)
        } else {
            bytes = try readToEnd(0, limit: TaskArtifacts.maximumBytes, path: "standard input")
        }
        try engine.artifacts.save(id, name: name, bytes: bytes)
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
        Output.result(try global.call("artifacts", ["id": .string(id)]), json: json)
    }
}

struct Artifact: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write one task artifact's bytes to standard output (exit 3 if there is none).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The instance id.")
    var id: String

    @Argument(help: "The artifact name.")
    var name: String

    @Flag(help: "Print JSON: {instance_id, name, size, text} (base64 instead of text for bytes that are not UTF-8).")
    var json = false

    func run() throws {
        guard json else {
            let bytes = try global.makeEngine().artifacts.read(id, name: name)
            return try writeAll(1, bytes, operation: "write", path: "standard output")
        }
        Output.result(try global.call("artifact", ["id": .string(id), "name": .string(name)]), json: true)
    }
}
