import ChatFlow
import ChatFlowWatch
import MCP

/// Instances as resources (`chatflow://instances/ID`, the `status` document as JSON), and the
/// subscriptions to them: a change from the event source sends `notifications/resources/updated`
/// to a subscribed URI, and an instance not listed before sends `list_changed`.
actor InstanceResources {
    static let scheme = "chatflow://instances/"

    private let engine: WorkflowEngine
    private var subscribed: Set<String> = []
    private var known: Set<String> = []

    init(engine: WorkflowEngine) { self.engine = engine }

    /// The instances there are now, so that only a new one is announced as a list change.
    func prime() { known = Set((try? engine.instanceIDs()) ?? []) }

    static func uri(_ id: String) -> String { scheme + id }

    static func instanceID(_ uri: String) throws(MCPError) -> String {
        guard uri.hasPrefix(scheme), case let id = String(uri.dropFirst(scheme.count)), (try? Identifiers.validateInstanceID(id)) != nil else {
            throw MCPError.invalidParams("not a ChatFlow instance: \(IdentifierKind.quote(uri)) (expected \(scheme)wfi_…)")
        }
        return id
    }

    static let template = Resource.Template(
        uriTemplate: scheme + "{id}", name: "instance", description: "A workflow instance's state, history, claim and running hooks (as `status` returns them).",
        mimeType: "application/json")

    func list() throws -> [Resource] {
        let states = try engine.list(unreadable: { _, _ in })
        known = Set(states.map(\.instanceID))
        return states.map { state in
            Resource(
                name: state.instanceID, uri: Self.uri(state.instanceID), title: "\(state.featureID): \(state.currentPhase)",
                description: "feature \(state.featureID), workflow \(state.workflowName), phase \(state.currentPhase), \(state.status.rawValue)",
                mimeType: "application/json")
        }
    }

    func read(_ uri: String) throws -> ReadResource.Result {
        let id = try Self.instanceID(uri)
        guard let state = try engine.status(id) else { throw MCPError.invalidParams("no instance \(id) under \(engine.root)") }
        let document = try engine.statusDocument(state)
        return ReadResource.Result(contents: [.text(document.prettyText, uri: uri, mimeType: "application/json")])
    }

    func subscribe(_ uri: String) throws {
        _ = try Self.instanceID(uri)
        subscribed.insert(uri)
    }

    func unsubscribe(_ uri: String) { subscribed.remove(uri) }

    /// The notifications a change calls for.
    func notifications(for change: InstanceChange) -> (updated: [String], listChanged: Bool) {
        switch change {
        case .instance(let id):
            let uri = Self.uri(id)
            let isNew = known.insert(id).inserted
            return (subscribed.contains(uri) ? [uri] : [], isNew)
        case .rescanAll:
            return (subscribed.sorted(), true)
        }
    }
}
