import ChatFlow
import ChatFlowTestSupport
import Foundation
import Testing

import Glibc

private func mode(_ path: String) -> mode_t {
    var info = stat()
    return lstat(path, &info) == 0 ? info.st_mode & 0o7777 : 0
}

/// Setting hooks up as a new user does: the example hooks, under umask 002, with settings in
/// hooks.env, and what a user sees when something is wrong.
@Suite("Hook set-up (real binaries, real watcher)", .serialized, .timeLimit(.minutes(2)))
struct HookSetupTests {
    @Test("install-examples under umask 002 writes trusted hooks (no README), and the embedded copies match hooks.example/")
    func installExamples() throws {
        let sandbox = Sandbox()
        rmdir(sandbox.hooks)
        let command = "umask 002 && exec \"$0\" --root \"$1\" hooks install-examples"
        let result = try runToEnd("/bin/sh", ["-c", command, binaries.appendingPathComponent("chatflow").path, sandbox.root])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(mode(sandbox.hooks) == 0o755)
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("hooks.example").path
        let names = try FileManager.default.contentsOfDirectory(atPath: source).filter { $0 != "README.md" }.sorted()
        #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox.hooks).sorted() == names)
        for name in names {
            #expect(mode(sandbox.hooks + "/" + name) == (name.hasSuffix(".sample") ? 0o644 : 0o755), "\(name)")
            #expect(
                FileManager.default.contents(atPath: sandbox.hooks + "/" + name) == FileManager.default.contents(atPath: source + "/" + name),
                "\(name) differs from hooks.example/ (run scripts/embed-example-hooks.sh)")
        }
        #expect(FileManager.default.fileExists(atPath: sandbox.root + "/hooks.env"))
        let doctor = try run("chatflow", ["--root", sandbox.root, "doctor"])
        #expect(!doctor.stdout.contains("hook"), "doctor trusts every installed hook: \(doctor.stdout)")
        // A second run keeps what is there.
        let again = try run("chatflow", ["--root", sandbox.root, "hooks", "install-examples"])
        #expect(again.stdout.contains("kept"))
    }

    @Test("a refused hook is in `chatflow runs` as refused, with its reason and fix")
    func refusedInRuns() async throws {
        let sandbox = Sandbox()
        sandbox.hook("design", "exit 0", mode: 0o775)
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: devSchema, featureID: "f")
        #expect(await eventually { (try? run("chatflow", ["--root", sandbox.root, "runs", id]).stdout.contains("refused")) == true })
        let runs = try run("chatflow", ["--root", sandbox.root, "runs", id, "--json"])
        let record = try JSONValue(parsing: runs.stdout).arrayValue?.first
        #expect(record?["refused"] == .bool(true))
        #expect(record?["hook"]?.stringValue == "design")
        #expect(record?["error"]?.stringValue?.contains("chmod go-w") == true)
        #expect(await watcher.stop() == 0)
    }

    @Test("the testing example: a test command that cannot start leaves the instance in testing; hooks.env sets the command")
    func testingHookSettings() async throws {
        let sandbox = Sandbox()
        #expect(try run("chatflow", ["--root", sandbox.root, "hooks", "install-examples"]).status == 0)
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        let engine = sandbox.engine
        // No Makefile and no setting: the default `make test` cannot start.
        let stuck = try engine.start(schema: devSchema, featureID: "f")
        try engine.trigger(stuck, to: "testing")
        #expect(await eventually {
            (try? run("chatflow", ["--root", sandbox.root, "runs", stuck]).stdout.contains("testing  exit 2")) == true
        })
        #expect(try engine.freshStatus(stuck)?.currentPhase == "testing", "not sent back as failing tests")
        let log = try String(contentsOfFile: sandbox.engine.layout.runLogFile(stuck, transition: 1, hook: "testing"), encoding: .utf8)
        #expect(log.contains("cannot start the test command") && log.contains("hooks.env"))

        // The setting comes from hooks.env, not the watcher's environment.
        // Kept as install-examples made it (0644, whatever the umask): hooks.env is trusted as hooks are.
        try "CHATFLOW_TEST_COMMAND='echo 12 passed'\n".write(toFile: sandbox.root + "/hooks.env", atomically: true, encoding: .utf8)
        #expect(chmod(sandbox.root + "/hooks.env", 0o644) == 0)
        let passing = try engine.start(schema: devSchema, featureID: "f")
        try engine.trigger(passing, to: "testing")
        #expect(await eventually { (try? engine.freshStatus(passing)?.currentPhase) == "review" })
        #expect(try run("chatflow", ["--root", sandbox.root, "artifact", passing, "test-output-1.txt"]).stdout == "12 passed\n")
        #expect(await watcher.stop() == 0)
    }

    @Test("hooks.env is trusted only as a hook is: world-writable, a link to another file or another user's file is refused whole, settings that load code are skipped, and doctor says so")
    func untrustedSettings() async throws {
        let sandbox = Sandbox()
        let settings = sandbox.root + "/hooks.env"
        let seen = sandbox.directory + "/seen.log"
        sandbox.hook("@any", "echo \"[$MARK] [$LD_PRELOAD] [$BASH_ENV]\" >> \(seen)")
        func write(_ text: String, mode: mode_t) throws {
            // Its mode set before it takes the name, so the watcher never sees it otherwise (umask).
            let temp = sandbox.directory + "/hooks.env.new"
            try text.write(toFile: temp, atomically: false, encoding: .utf8)
            #expect(chmod(temp, mode) == 0)
            #expect(rename(temp, settings) == 0)
        }
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        let engine = sandbox.engine
        let id = try engine.start(schema: WorkflowSchema(name: "long", phaseNames: (0..<10).map { "p\($0)" }), featureID: "f")
        // The start's own run first, so each step below counts only its trigger's.
        #expect(await eventually { sandbox.lines("seen.log").count == 1 })
        func step(_ expected: String) async throws {
            let before = sandbox.lines("seen.log").count
            try engine.trigger(id)
            #expect(await eventually { sandbox.lines("seen.log").count > before })
            #expect(sandbox.lines("seen.log").last == expected)
        }
        // Trusted: its settings reach the hook, but never those that load code.
        try write("MARK=mine\nLD_PRELOAD=/tmp/evil.so\nexport BASH_ENV=/tmp/evil.sh\n", mode: 0o644)
        try await step("[mine] [] []")
        var doctor = try run("chatflow", ["--root", sandbox.root, "doctor"])
        #expect(doctor.stdout.contains("LD_PRELOAD") && doctor.stdout.contains("BASH_ENV"), "\(doctor.stdout)")
        // World-writable: refused whole.
        try write("MARK=theirs\n", mode: 0o666)
        try await step("[] [] []")
        doctor = try run("chatflow", ["--root", sandbox.root, "doctor"])
        #expect(doctor.stdout.contains("hooks.env is group- or world-writable"), "\(doctor.stdout)")
        // Another user's file (as root, the tests can make one): refused whole.
        if geteuid() == 0 {
            try write("MARK=nobody\n", mode: 0o644)
            #expect(chown(settings, 65534, 65534) == 0)
            try await step("[] [] []")
        }
        // A link (to a file others could own or change): refused whole, even to a good file.
        let elsewhere = sandbox.directory + "/elsewhere.env"
        try "MARK=linked\n".write(toFile: elsewhere, atomically: false, encoding: .utf8)
        unlink(settings)
        #expect(symlink(elsewhere, settings) == 0)
        try await step("[] [] []")
        #expect(watcher.log.contains("hooks.env refused"))
        #expect(await watcher.stop() == 0)
    }

    @Test("a hook is refused when a directory above it could let another user swap it: world- or group-writable (but a sticky one, or the user's private group), or owned by someone else; doctor and the watcher say which and how to fix it")
    func ancestorChain() async throws {
        let sandbox = Sandbox()
        sandbox.hook("b", sandbox.recorder())
        try sandbox.engine.prepare()
        func doctor() throws -> String { try run("chatflow", ["--root", sandbox.root, "doctor"]).stdout }
        #expect(!(try doctor()).contains("above the hooks"))
        // The project directory world-writable: anyone could rename .chatflow and put theirs there.
        #expect(chmod(sandbox.directory, 0o777) == 0)
        let report = try doctor()
        #expect(report.contains("above the hooks, is world-writable") && report.contains(sandbox.directory), "\(report)")
        let watcher = try Watcher(sandbox)
        #expect(await watcher.ready())
        let id = try sandbox.engine.start(schema: WorkflowSchema(name: "w", phaseNames: ["a", "b"]), featureID: "f")
        try sandbox.engine.trigger(id)
        #expect(await eventually { (try? run("chatflow", ["--root", sandbox.root, "runs", id]).stdout.contains("refused")) == true })
        #expect(sandbox.lines().isEmpty, "the hook did not run")
        #expect(await watcher.stop() == 0)
        // Sticky (as /tmp is): others cannot rename what they do not own.
        #expect(chmod(sandbox.directory, 0o1777) == 0)
        #expect(!(try doctor()).contains("above the hooks"))
        // Group-writable by a group of others.
        #expect(chmod(sandbox.directory, 0o775) == 0)
        if geteuid() == 0 {
            #expect(chown(sandbox.directory, 0, 65534) == 0)
            #expect(try doctor().contains("is group-writable"))
            // Owned by another user.
            #expect(chmod(sandbox.directory, 0o755) == 0 && chown(sandbox.directory, 65534, 65534) == 0)
            #expect(try doctor().contains("is owned by uid 65534"))
            #expect(chown(sandbox.directory, 0, 0) == 0)
        }
        #expect(chmod(sandbox.directory, 0o755) == 0)
        #expect(!(try doctor()).contains("above the hooks"))
    }

    @Test("a hooks directory that is a symbolic link is judged by its target: a trusted one works, a writable one is refused naming the target")
    func linkedHooksDirectory() throws {
        let sandbox = Sandbox()
        try sandbox.engine.prepare()
        let target = sandbox.directory + "/shared-hooks"
        #expect(mkdir(target, 0o755) == 0 && chmod(target, 0o755) == 0)
        try "#!/bin/sh\n".write(toFile: target + "/b", atomically: false, encoding: .utf8)
        #expect(chmod(target + "/b", 0o755) == 0)
        try FileManager.default.removeItem(atPath: sandbox.hooks)
        #expect(symlink(target, sandbox.hooks) == 0)
        var report = try run("chatflow", ["--root", sandbox.root, "doctor"]).stdout
        #expect(!report.contains("hooks"), "a trusted target passes: \(report)")
        #expect(chmod(target, 0o777) == 0)
        report = try run("chatflow", ["--root", sandbox.root, "doctor"]).stdout
        #expect(report.contains("the target of \(sandbox.hooks)") && report.contains("chmod go-w '\(target)'"), "\(report)")
    }
}
