// TCPControlBlock.swift: what the interface keeps per TCP socket: the connection state
// machine, ports and addresses, options, the uthreads parked on it, readiness reporting,
// and the step after every input, timer or application call (send what the connection
// asks, reschedule its timer, report readiness, leave the table when finished).
import NICQueuesCore
import UThreads

/// The state behind a ``TCPSocket`` (or a listener's child not yet accepted). Every field
/// is guarded by the interface's lock. The interface's table holds it while it has a
/// connection that is not finished, so it outlives a socket the application closed.
final class TCPControlBlock: UThreadParking, @unchecked Sendable {
    unowned(unsafe) let interface: NetworkInterface
    @exclusivity(unchecked) var configuration: TCPConfiguration
    /// Set once, by ``attach(_:)`` (no observer: it would turn every in-place mutation
    /// through `connection!` into a copy out and back).
    @exclusivity(unchecked) var connection: TCPConnection?
    /// `connection != nil`, kept apart: testing the optional itself copies the struct.
    @exclusivity(unchecked) private(set) var hasConnection = false
    /// Bound local port (0: none), and whether the port table counts it.
    @exclusivity(unchecked) var localPort: UInt16 = 0
    @exclusivity(unchecked) var holdsPort = false
    @exclusivity(unchecked) var remote: SocketAddress?
    @exclusivity(unchecked) var key: TCPFlowKey?
    @exclusivity(unchecked) var inTable = false

    // Application-side state.
    @exclusivity(unchecked) var waiters: [UThreadRef] = []
    @exclusivity(unchecked) var readinessHandler: (@Sendable (Readiness) -> Void)?
    @exclusivity(unchecked) var nonBlocking = false
    @exclusivity(unchecked) var receiveTimeout: Duration?
    @exclusivity(unchecked) var sendTimeout: Duration?
    @exclusivity(unchecked) var reuseAddress = false
    @exclusivity(unchecked) var appClosed = false
    @exclusivity(unchecked) var readShut = false
    /// A non-blocking connect started and its outcome not yet reported by connect().
    @exclusivity(unchecked) var connectPending = false

    /// The listener of a child still in SYN-RECEIVED (unretained: a listener detaches its
    /// children when it closes).
    @exclusivity(unchecked) var parent: Unmanaged<TCPListener>?

    // What was reported last (readiness changes are reported, not levels).
    @exclusivity(unchecked) var lastReadiness: Readiness = []
    @exclusivity(unchecked) var lastReadable = 0
    @exclusivity(unchecked) var lastSpace = 0
    @exclusivity(unchecked) var lastState: TCPState = .closed

    // Timer heap bookkeeping (TCPDemux.swift).
    @exclusivity(unchecked) var timerAt: Int64 = .max
    @exclusivity(unchecked) var timerGeneration: UInt32 = 0
    @exclusivity(unchecked) var timerEntries = 0
    @exclusivity(unchecked) var retired = false

    init(interface: NetworkInterface, configuration: TCPConfiguration) {
        self.interface = interface
        self.configuration = configuration
        waiters.reserveCapacity(2)
    }

    var state: TCPState { inPlace { $0.state } ?? .closed }

    /// Gives the block its connection (once).
    func attach(_ c: consuming TCPConnection) {
        var c = c
        c.segmentationOffload = interface.tcpSegmentationPayload
        connection = Optional(consume c)
        hasConnection = true
    }

    /// Runs `body` on the connection where it lies, nil when there is none. Reading
    /// through `connection?.` copies the whole struct (and retains its buffers), even for
    /// one field; an inout access does not.
    @inline(__always)
    func inPlace<R>(_ body: (inout TCPConnection) -> R) -> R? {
        guard hasConnection else { return nil }
        return body(&connection!)
    }

    /// Readiness as epoll would see it.
    var currentReadiness: Readiness {
        if appClosed { return [.hangUp] }
        guard let r = inPlace({ $0.readiness }) else { return [.writable, .hangUp] }   // Linux: a fresh socket is EPOLLOUT|EPOLLHUP
        var s = Readiness(r)
        if readShut { s.insert(.readable) }
        if state == .synSent || state == .synReceived { s.remove(.writable) }
        return s
    }

    // MARK: from the network (lock held)

    func segmentArrived(_ segment: TCPSegment, now: Int64) {
        connection!.input(segment, now: now)
        afterChange(now: now)
    }

    func unreachable(_ code: ICMPUnreachableCode, now: Int64) {
        connection!.icmpUnreachable(code, now: now)
        afterChange(now: now)
    }

    func timersDue(now: Int64) {
        guard hasConnection else { return }
        if let d = inPlace({ $0.nextDeadline }) ?? nil, d <= now {
            connection!.handleTimers(now: now)
        }
        afterChange(now: now)
    }

    /// After anything touched the connection: transmit what it wants sent, keep its timer
    /// scheduled, report readiness, hand an established child to its listener, and leave
    /// the table when the connection is finished.
    func afterChange(now: Int64) {
        guard hasConnection, let remote else { return }
        let i = interface
        let port = localPort
        while let segment = connection!.nextSegment(now: now) {
            i.transmitTCP(segment, localPort: port, remote: remote, now: now) { buffer in
                _ = inPlace { $0.copyPayload(of: segment, into: buffer) }
            }
        }
        // Never at or before `now`: a deadline the timers did not move must not spin the heap.
        if let d = inPlace({ $0.nextDeadline }) ?? nil { i.tcpSchedule(self, at: max(d, now &+ 1)) }
        let s = state
        if let p = parent {
            switch s {
            case .listen, .synSent, .synReceived: break
            case .closed:
                parent = nil
                p._withUnsafeGuaranteedRef { $0.childFailed(self) }
            default:
                parent = nil
                p._withUnsafeGuaranteedRef { $0.childEstablished(self) }
            }
        }
        notify()
        if inTable && inPlace({ $0.isFinished }) == true { leaveTable() }
    }

    /// Out of the table (the connection is over); the port is free again.
    func leaveTable() {
        guard inTable, let key else { return }
        inTable = false
        releasePort()
        interface.tcpRetire(self, key: key)
    }

    func releasePort() {
        if holdsPort {
            holdsPort = false
            interface.tcpReleasePort(localPort)
        }
    }

    /// Reports a change of readiness to the handler and wakes every parked uthread (they
    /// re-check their own condition). New data counts as a change (edge-triggered epoll
    /// wants an event per arrival).
    func notify() {
        let r = currentReadiness
        let (readable, space) = inPlace { ($0.readableBytes, $0.writableSpace) } ?? (0, 0)
        let s = state
        let changed = r != lastReadiness || readable > lastReadable || (lastSpace == 0 && space > 0) || s != lastState
        lastReadiness = r
        lastReadable = readable
        lastSpace = space
        lastState = s
        guard changed else { return }
        wakeAll()
        readinessHandler?(r)
    }

    func wakeAll() { wakeAllWaiters() }

    // MARK: parking (lock held on entry and on return)

    /// Parks the calling uthread until `notify` wakes it, `deadline` passes (set from
    /// `timeout` on the first wait) or it is interrupted.
    func park(deadline: inout MonotonicInstant?, timeout: Duration?) throws(SocketError) -> WaitOutcome {
        guard UThread.isInUThread else { throw .notOnUThread }
        if deadline == nil, let t = timeout { deadline = MonotonicInstant.now.advanced(by: t) }
        return parkWaiting(lock: interface.lock, until: deadline)
    }

    /// The socket error for the connection's error.
    func socketError(_ e: TCPError) -> SocketError { SocketError(e, remote: remote?.address) }
}

extension Readiness {
    /// poll/epoll readiness for a TCP connection's (the pure state machine has its own
    /// ``TCPReadiness``: NetProtocols depends on nothing).
    @inlinable
    public init(_ r: TCPReadiness) {
        var s: Readiness = []
        if r.contains(.readable) { s.insert(.readable) }
        if r.contains(.writable) { s.insert(.writable) }
        if r.contains(.error) { s.insert(.error) }
        if r.contains(.hangUp) { s.insert(.hangUp) }
        if r.contains(.readHangUp) { s.insert(.readHangUp) }
        self = s
    }
}
