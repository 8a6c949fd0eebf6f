/// The run journal: one `RunRecord` per hook run, appended by chatflow-watch.
package struct RunJournal: Sendable {
    package let path: String

    package init(layout: Layout) { path = layout.runJournalFile }

    /// Every recorded run, oldest first.
    package func records() throws(ChatFlowError) -> [RunRecord] {
        try AppendLog.read(path).values.compactMap { try? RunRecord(json: $0) }
    }
}
