import Glibc

/// The phases a workflow goes through, stored with each instance so any process can advance it.
public struct WorkflowSchema: Sendable, Hashable {
    /// One phase: its name and an optional task description.
    public struct Phase: Sendable, Hashable {
        public var name: String
        public var task: String?

        public init(name: String, task: String? = nil) {
            self.name = name
            self.task = task
        }
    }

    public var name: String
    public var phases: [Phase]

    public init(name: String, phases: [Phase]) {
        self.name = name
        self.phases = phases
    }

    /// A schema from phase names alone.
    public init(name: String, phaseNames: [String]) {
        self.init(name: name, phases: phaseNames.map { Phase(name: $0) })
    }

    /// Throws unless the schema has a valid name and at least one phase, all valid and unique.
    public func validate() throws(ChatFlowError) {
        if let problem = Identifiers.nameProblem(name) {
            throw .invalidSchema(reason: "workflow name \(IdentifierKind.quote(name)): \(problem)")
        }
        guard !phases.isEmpty else { throw .invalidSchema(reason: "it has no phases") }
        var seen = Set<String>()
        for phase in phases {
            if let problem = Identifiers.nameProblem(phase.name) {
                throw .invalidSchema(reason: "phase name \(IdentifierKind.quote(phase.name)): \(problem)")
            }
            guard seen.insert(phase.name).inserted else {
                throw .invalidSchema(reason: "phase \(IdentifierKind.quote(phase.name)) appears twice")
            }
        }
    }

    /// The index of a phase by name.
    public func index(of phaseName: String) -> Int? {
        phases.firstIndex { $0.name == phaseName }
    }

    public var phaseNames: [String] { phases.map(\.name) }
}

extension WorkflowSchema {
    /// Reads a schema from a JSON file (`{"name": …, "phases": [{"name": …, "task": …}]}`).
    public init(contentsOfFile path: String) throws(ChatFlowError) {
        let bytes: [UInt8]
        do {
            let file = try FileDescriptor(opening: path, flags: O_RDONLY | O_NONBLOCK)
            bytes = try file.readAll(limit: 1 << 20)
        } catch {
            throw .invalidJSON(what: "schema file \(path)", reason: error.description)
        }
        let json: JSONValue
        do {
            json = try JSONValue(parsing: bytes)
        } catch {
            throw .invalidJSON(what: "schema file \(path)", reason: error.description)
        }
        try self.init(json: json)
    }
}
