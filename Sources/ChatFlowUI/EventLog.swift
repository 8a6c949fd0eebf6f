import ChatFlow
import ChatFlowWatch

/// The change events the pages follow (server-sent events), numbered, with the newest kept so a
/// page that reconnects with `Last-Event-ID` gets what it missed. Fed by the same change source
/// as the watcher.
actor EventLog {
    struct Event: Sendable {
        var sequence: Int
        /// `nil`: read everything again.
        var instanceID: String?
    }

    /// Ids are `EPOCH-SEQUENCE`: a page that saw another server process's ids reloads all.
    nonisolated let epoch: String
    private var events: [Event] = []
    private var next = 1
    private var subscribers: [Int: AsyncStream<Event>.Continuation] = [:]
    private var nextSubscriber = 0
    static let kept = 4096

    init(epoch: String) { self.epoch = epoch }

    func append(_ change: InstanceChange) {
        let event: Event
        switch change {
        case .instance(let id): event = Event(sequence: next, instanceID: id)
        case .rescanAll: event = Event(sequence: next, instanceID: nil)
        }
        next += 1
        events.append(event)
        if events.count > Self.kept { events.removeFirst(events.count - Self.kept) }
        for continuation in subscribers.values { continuation.yield(event) }
    }

    /// A stream of events from now on, preceded by those after `lastEventID` when it is this
    /// server's and still kept; `missed` tells the page to read everything again.
    func subscribe(after lastEventID: String?) -> (id: Int, replay: [Event], missed: Bool, stream: AsyncStream<Event>) {
        var replay: [Event] = []
        var missed = false
        if let lastEventID {
            let parts = lastEventID.split(separator: "-")
            if parts.count == 2, parts[0] == epoch, let seen = Int(parts[1]) {
                replay = events.filter { $0.sequence > seen }
                missed = seen < (events.first?.sequence ?? next) - 1
            } else {
                missed = true
            }
        }
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(Self.kept))
        let id = nextSubscriber
        nextSubscriber += 1
        subscribers[id] = continuation
        return (id, replay, missed, stream)
    }

    func unsubscribe(_ id: Int) {
        subscribers.removeValue(forKey: id)?.finish()
    }

    /// A keep-alive for one page (sequence 0: a comment line, not an event).
    func ping(_ id: Int) { subscribers[id]?.yield(Event(sequence: 0, instanceID: nil)) }

    var subscriberCount: Int { subscribers.count }
}
