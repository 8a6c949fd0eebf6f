// libFuzzer target: the write path. The input is trigger data (JSON text, else the bytes as a
// string). Properties: a trigger either is refused with nothing written, or is accepted and then
// reads back equal from a fresh engine (its snapshot in the history, its members in `variables`
// and `meta`, the history one entry longer): the store never accepts what it cannot read back.
import Glibc

private final class Target: @unchecked Sendable {
    let root: String
    var engine: WorkflowEngine
    var id = ""
    var triggers = 0

    init() {
        var template = Array("/dev/shm/chatflow-fuzz-XXXXXX".utf8CString)
        root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) } + "/.chatflow"
        engine = WorkflowEngine(root: root)
    }

    /// A fresh instance every 200 triggers, so a history's length stays small.
    func instance() -> String {
        if triggers % 200 == 0 {
            id = try! engine.start(schema: WorkflowSchema(name: "fuzz", phaseNames: ["a", "b"]), featureID: "fuzz", context: ["seed": 1])
        }
        triggers += 1
        return id
    }
}

nonisolated(unsafe) private let target = Target()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWrite(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let value = (try? JSONValue(parsing: bytes)) ?? .string(String(decoding: bytes, as: UTF8.self))
    let id = target.instance()
    let reader = { WorkflowEngine(root: target.root) }
    guard let before = try? reader().freshStatus(id) else { fatalError("the instance does not read back before the trigger") }
    let meta: [String: JSONValue] = ["fuzz": value]
    do {
        try target.engine.trigger(id, data: value, meta: meta, to: "a")
    } catch {
        guard case .invalidJSON = error else { fatalError("a trigger failed with \(error)") }
        guard let after = try? reader().freshStatus(id), after == before else { fatalError("a refused trigger changed the instance") }
        return 0
    }
    let fresh = reader()
    guard let after = try? fresh.freshStatus(id) else { fatalError("an accepted trigger does not read back") }
    guard after.historyLength == before.historyLength + 1 else { fatalError("history_length \(after.historyLength) after \(before.historyLength)") }
    guard after.meta["fuzz"] == value else { fatalError("meta does not read back equal") }
    if let members = value.objectValue {
        for (key, member) in members where after.variables[key] != member { fatalError("variable \(key) does not read back equal") }
    }
    guard let history = try? fresh.history(id), history.count == after.historyLength,
          history[history.count - 2].triggerDataSnapshot == value
    else { fatalError("the trigger data does not read back equal from the history") }
    return 0
}
