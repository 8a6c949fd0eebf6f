/// Hook runs and task artifacts.
extension Operations {
    static let runs: [Operation] = [
        Operation(
            "runs", "Hook runs recorded by chatflow-watch (of one instance, if id is given): finished ones with their outcome, then running ones.",
            readOnly: true, properties: ["id": ArgumentSchema.id]
        ) { (arguments, engine) throws(ChatFlowError) -> OperationResult in
            let (ended, running) = try engine.hookRuns.runs(of: try arguments.string("id"))
            let now = Timestamps.unix()
            let lines =
                ended.map { record in
                    let took = HookOutcome.seconds(record.endedAt - record.startedAt)
                    let lost = record.logError.map { "  (log incomplete: \($0))" } ?? ""
                    return "\(record.instanceID)  #\(record.transition) \(record.phase)  \(record.hook)  \(record.outcome.summary)  \(took)  \(Timestamps.text(record.startedAt))  \(record.logPath)\(lost)"
                }
                + running.map {
                    "\($0.instanceID)  #\($0.transition) \($0.phase)  \($0.hook)  running (pid \($0.pid), \(HookOutcome.seconds(now - $0.startedAt)))  \(Timestamps.text($0.startedAt))  \($0.logPath)"
                }
            return OperationResult(
                document: ["runs": .array(ended.map(\.json) + running.map { $0.report(now: now) })], text: lines.joined(separator: "\n"),
                listing: "runs")
        },
        Operation(
            "logs",
            "A hook run's output: the newest run of the instance (or of transition and hook). Without offset, its last max_bytes; with offset (the next_offset of an earlier call), what was written since: call again while running is true to follow it.",
            readOnly: true,
            properties: [
                "id": ArgumentSchema.id, "transition": ArgumentSchema.integer("Only runs of this transition (#N in runs).", minimum: 0),
                "hook": ArgumentSchema.string("Only runs of this hook (its path in the hooks directory)."),
                "offset": ArgumentSchema.integer("Read from this byte of the log.", minimum: 0),
                "max_bytes": ArgumentSchema.integer("At most this many bytes (default 65536, at most 1048576).", minimum: 1),
            ], required: ["id"]
        ) { (arguments, engine) throws(ChatFlowError) -> OperationResult in
            let maxBytes = try arguments.int("max_bytes") ?? 65536
            guard (1...(1 << 20)).contains(maxBytes) else { throw arguments.wrong("max_bytes", "1 to 1048576") }
            let (report, run, text) = try engine.hookRuns.logReport(
                of: try arguments.required("id"), transition: try arguments.int("transition"), hook: try arguments.string("hook"),
                offset: try arguments.int("offset"), maxBytes: maxBytes)
            let header = "== \(run.hook) for #\(run.transition): " + (run.ended.map { $0.outcome.summary } ?? "running") + " =="
            return OperationResult(document: report, text: header + "\n" + text)
        },
        Operation(
            "rerun",
            "Ask the watcher to run a transition's hooks again (the latest transition unless given; one hook if given): a refused hook once fixed, a failed, timed-out or interrupted one. The running chatflow-watch, or the next to start, runs them in order with the instance's other work.",
            properties: [
                "id": ArgumentSchema.id, "transition": ArgumentSchema.integer("The transition (#N in runs; default the latest).", minimum: 0),
                "hook": ArgumentSchema.string("Only this hook (its path in the hooks directory)."),
            ], required: ["id"]
        ) { (arguments, engine) throws(ChatFlowError) -> OperationResult in
            let receipt = try engine.requestRerun(try arguments.required("id"), transition: try arguments.int("transition"), hook: try arguments.string("hook"))
            return OperationResult(document: receipt.json, text: receipt.text)
        },
    ]

    static let artifacts: [Operation] = [
        Operation(
            "artifacts", "The names of an instance's task artifacts.", readOnly: true, properties: ["id": ArgumentSchema.id], required: ["id"]
        ) { (arguments, engine) throws(ChatFlowError) -> OperationResult in
            let id = try arguments.required("id")
            let names = try engine.artifacts.names(id)
            return OperationResult(
                document: ["instance_id": .string(id), "artifacts": .array(names.map(JSONValue.string))], text: names.joined(separator: "\n"),
                listing: "artifacts")
        },
        Operation(
            "artifact", "One task artifact's content: text if it is UTF-8, else base64.", readOnly: true,
            properties: ["id": ArgumentSchema.id, "name": ArgumentSchema.string("The artifact name.")], required: ["id", "name"]
        ) { (arguments, engine) throws(ChatFlowError) -> OperationResult in
            let id = try arguments.required("id"), name = try arguments.required("name")
            let bytes = try engine.artifacts.read(id, name: name)
            var document: [String: JSONValue] = ["instance_id": .string(id), "name": .string(name), "size": .number(JSONNumber(bytes.count))]
            if let text = String(validating: bytes, as: UTF8.self) {
                document["text"] = .string(text)
                return OperationResult(document: .object(document), text: text)
            }
            document["base64"] = .string(Base64.encode(bytes))
            return OperationResult(document: .object(document), text: "\(name): \(bytes.count) bytes of binary data (see base64)")
        },
        Operation(
            "save_artifact", "Save text (or base64 bytes) as a task artifact of an instance, replacing one of the same name.",
            properties: [
                "id": ArgumentSchema.id, "name": ArgumentSchema.string("The artifact name (letters, digits, '.', '_', '-')."),
                "text": ArgumentSchema.string("The content, as text."),
                "base64": ArgumentSchema.string("The content, base64-encoded (instead of text)."),
            ], required: ["id", "name"]
        ) { (arguments, engine) throws(ChatFlowError) -> OperationResult in
            let id = try arguments.required("id"), name = try arguments.required("name")
            let bytes: [UInt8]
            switch (try arguments.string("text"), try arguments.string("base64")) {
            case (let text?, nil): bytes = Array(text.utf8)
            case (nil, let encoded?):
                guard let decoded = Base64.decode(encoded) else { throw arguments.wrong("base64", "valid base64") }
                bytes = decoded
            default: throw .invalidJSON(what: "arguments of save_artifact", reason: "give exactly one of text or base64")
            }
            try engine.artifacts.save(id, name: name, bytes: bytes)
            let path = engine.layout.tasksDirectory(id) + "/" + name
            return OperationResult(document: ["instance_id": .string(id), "name": .string(name), "path": .string(path)], text: path)
        },
    ]
}
