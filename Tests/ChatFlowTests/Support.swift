import ChatFlow

#if canImport(Glibc)
import Glibc
#endif

/// A fresh state directory on the real disk (not tmpfs), removed by the caller's `defer`.
struct TemporaryRoot: ~Copyable {
    let path: String

    init() {
        var template = Array("/tmp/chatflow-test-XXXXXX".utf8CString)
        let base = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        path = base + "/.chatflow"
    }

    deinit {
        let base = String(path.dropLast("/.chatflow".count))
        _ = system("rm -rf '\(base)'")
    }

    var engine: WorkflowEngine { WorkflowEngine(root: path) }
}

let fourPhases = WorkflowSchema(name: "dev", phaseNames: ["design", "implement", "testing", "review"])
