import Glibc

/// A request to run a transition's hooks again (`chatflow rerun`): one small JSON file in
/// `.watch/reruns/`, written atomically. The running watcher (or the next one to start) takes
/// it, runs the hooks in order with the instance's other work, and removes the file once they
/// have run; a watcher that dies first takes it again at its next start.
package struct RerunRequest: Sendable, Hashable {
    package var instanceID: String
    /// The transition (`nil`: the instance's latest).
    package var transition: Int?
    /// One hook only (`nil`: all of the transition's hooks).
    package var hook: String?
    package var requestedAt: Double
    /// The request's file.
    package var path: String

    package var json: JSONValue {
        .object([
            "instance_id": .string(instanceID), "transition": transition.map { .number(JSONNumber($0)) } ?? .null,
            "hook": hook.map(JSONValue.string) ?? .null, "requested_at": .number(JSONNumber(requestedAt)),
        ])
    }

    /// Writes a request; returns it.
    package static func submit(
        _ layout: Layout, instanceID: String, transition: Int?, hook: String?
    ) throws(ChatFlowError) -> RerunRequest {
        try FileSystem.createDirectory(layout.rerunsDirectory)
        let now = Timestamps.unix()
        let name = String(format6(now)) + "-" + Identifiers.newInstanceID().dropFirst(4) + ".json"
        let request = RerunRequest(
            instanceID: instanceID, transition: transition, hook: hook, requestedAt: now, path: layout.rerunsDirectory + "/" + name)
        var writer = JSONWriter(pretty: false, capacity: 256)
        writer.write(request.json)
        try StateStore.replace(
            request.path, temp: layout.rerunsDirectory + "/." + name + ".tmp", bytes: writer.bytes, directory: layout.rerunsDirectory)
        return request
    }

    /// The requests waiting, oldest first; unreadable files are skipped.
    package static func pending(_ layout: Layout) -> [RerunRequest] {
        let names = ((try? FileSystem.list(layout.rerunsDirectory)) ?? []).filter { !$0.hasPrefix(".") && $0.hasSuffix(".json") }.sorted()
        return names.compactMap { name in
            let path = layout.rerunsDirectory + "/" + name
            guard let bytes = try? FileDescriptor(opening: path, flags: O_RDONLY | O_NOFOLLOW | O_NONBLOCK).readAll(limit: 65536),
                let json = try? JSONValue(parsing: bytes), let id = json["instance_id"]?.stringValue, Identifiers.isInstanceID(id)
            else { return nil }
            return RerunRequest(
                instanceID: id, transition: json["transition"]?.intValue, hook: json["hook"]?.stringValue,
                requestedAt: json["requested_at"]?.doubleValue ?? 0, path: path)
        }
    }

    /// Done: the file goes.
    package func remove() { unlink(path) }

    private static func format6(_ seconds: Double) -> String {
        let micros = String(Int64(seconds * 1_000_000))
        return String(repeating: "0", count: max(0, 17 - micros.count)) + micros
    }
}
