import ChatFlow
import ChatFlowTestSupport
import Testing
@testable import ChatFlowWatch

/// One row of the detector's table: an instance as it now stands, where the watcher left off,
/// what its history file says, and the transitions that must come out.
struct DetectorCase: Sendable, CustomTestStringConvertible {
    var name: String
    var phases: [String]
    /// Phases entered, in order (the last is current unless finished).
    var entered: [String]
    var status: InstanceStatus
    var next: Int
    /// What the history file holds; `nil` models a file another writer left that does not
    /// explain the phases (missing, or a different length).
    var historyReadable = true
    var expected: [String]
    var fallback = false

    var testDescription: String { name }

    var summary: InstanceSummary {
        let finished = status.isFinished
        let state = InstanceState(
            instanceID: "wfi_000000000001", featureID: "f", workflowName: "dev",
            schema: WorkflowSchema(name: "dev", phaseNames: phases), currentPhase: entered.last!, status: status,
            variables: [:], meta: [:], createdAt: 0, updatedAt: 0, historyLength: entered.count, historyBytes: 0,
            currentEntry: finished ? nil : HistoryEntry(phase: entered.last!, task: nil, startedAt: 0))
        var summary = InstanceSummary(state)
        summary.previousPhase = entered.count > 1 ? entered[entered.count - 2] : nil
        return summary
    }

    func history(from start: Int) -> [HistoryEntry]? {
        guard historyReadable else { return nil }
        return entered[start...].map { HistoryEntry(phase: $0, task: nil, startedAt: 0, status: .completed) }
    }
}

let detectorCases: [DetectorCase] = [
    DetectorCase(
        name: "a new instance: its first phase", phases: ["a", "b"], entered: ["a"], status: .created, next: 0,
        expected: ["0 a prev=- status=created"]),
    DetectorCase(
        name: "a burst: three phases entered since the last look, each with its predecessor",
        phases: ["a", "b", "c", "d"], entered: ["a", "b", "c", "d"], status: .running, next: 1,
        expected: ["1 b prev=a status=running", "2 c prev=b status=running", "3 d prev=c status=running"]),
    DetectorCase(
        name: "completion: the terminal event after the last phase", phases: ["a", "b"], entered: ["a", "b"],
        status: .completed, next: 2, expected: ["2 @completed prev=b status=completed"]),
    DetectorCase(
        name: "entering the last phase and completing in one look", phases: ["a", "b"], entered: ["a", "b"],
        status: .completed, next: 1, expected: ["1 b prev=a status=running", "2 @completed prev=b status=completed"]),
    DetectorCase(
        name: "failure", phases: ["a", "b"], entered: ["a"], status: .failed, next: 1,
        expected: ["1 @failed prev=a status=failed"]),
    DetectorCase(
        name: "--to back to an earlier phase is a transition like any other",
        phases: ["design", "implement", "review"], entered: ["design", "implement", "review", "implement"],
        status: .running, next: 3, expected: ["3 implement prev=review status=running"]),
    DetectorCase(
        name: "a history replaced by a shorter one: nothing (the watcher rewinds)", phases: ["a", "b", "c"],
        entered: ["a", "b"], status: .running, next: 5, expected: []),
    DetectorCase(
        name: "nothing new", phases: ["a", "b"], entered: ["a", "b"], status: .running, next: 2, expected: []),
    DetectorCase(
        name: "a foreign write whose history does not explain the change: the current phase only",
        phases: ["a", "b", "c", "d"], entered: ["a", "b", "c", "d"], status: .running, next: 1, historyReadable: false,
        expected: ["3 d prev=c status=running"], fallback: true),
]

@Suite("Transition detector")
struct TransitionDetectorTests {
    @Test("every transition since the last look, in order, with its event, predecessor and status", arguments: detectorCases)
    func table(_ row: DetectorCase) {
        let (transitions, fallback) = TransitionDetector.transitions(of: row.summary, from: row.next) { row.history(from: $0) }
        let shown = transitions.map { "\($0.position) \($0.event) prev=\($0.previousPhase ?? "-") status=\($0.status)" }
        #expect(shown == row.expected)
        #expect(fallback == row.fallback)
        #expect(TransitionDetector.end(of: row.summary) == row.entered.count + (row.status.isFinished ? 1 : 0))
    }
}
