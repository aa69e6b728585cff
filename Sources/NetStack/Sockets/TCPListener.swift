// TCPListener.swift: a listening TCP socket: SYNs become SYN-RECEIVED children (at most
// `backlog`; beyond it, SYN cookies), established children wait in the accept queue,
// accept() takes them (parking, non-blocking or with a timeout).
import NICQueuesCore
import UThreads

/// A listening TCP socket.
///
/// ```swift
/// let listener = try TCPListener(interface: interface, port: 80)
/// while true {
///     let connection = try listener.accept()
///     runtime.spawn { serve(connection) }
/// }
/// ```
///
/// A SYN for the port makes a child connection in SYN-RECEIVED; once its handshake
/// completes it waits in the accept queue for ``accept()``. At most `backlog` children
/// may be in SYN-RECEIVED: further SYNs are answered with SYN cookies (RFC 4987 §3.6),
/// which keep no state until the completing ACK. When `backlog` established connections
/// already wait for ``accept()``, new SYNs are dropped (the peer retransmits), as Linux
/// does. Closing the listener resets the connections that were not accepted.
///
/// ``setReadinessHandler(_:)`` reports `.readable` when a connection is waiting and
/// `.hangUp` once closed, under the interface's lock.
public final class TCPListener: UThreadParking, @unchecked Sendable {
    public let interface: NetworkInterface
    public let port: UInt16
    public let backlog: Int
    public let configuration: TCPConfiguration

    // Guarded by interface.lock.
    /// Children in SYN-RECEIVED (retained through the table).
    @exclusivity(unchecked) private var embryos: [ObjectIdentifier: Unmanaged<TCPControlBlock>] = [:]
    /// Established, waiting for accept (retained here; a taken slot is nil, so trimming the
    /// queue under the lock never releases a block).
    @exclusivity(unchecked) private var acceptQueue: [TCPControlBlock?] = []
    @exclusivity(unchecked) private var acceptHead = 0
    @exclusivity(unchecked) var waiters: [UThreadRef] = []
    @exclusivity(unchecked) private var readinessHandler: (@Sendable (Readiness) -> Void)?
    @exclusivity(unchecked) private var isClosed = false
    @exclusivity(unchecked) private var nonBlocking = false
    @exclusivity(unchecked) private var timeout: Duration?
    @exclusivity(unchecked) private var lastReadiness: Readiness = []
    /// Statistics: children made, cookies sent and accepted, SYNs dropped.
    @exclusivity(unchecked) public private(set) var synCookiesSent: UInt64 = 0

    /// Listens on `port` (0: an ephemeral port) of the interface's address.
    /// - Parameters:
    ///   - interface: the interface whose address it listens on.
    ///   - requested: the port (0: an ephemeral one).
    ///   - backlog: children in SYN-RECEIVED, and connections waiting for ``accept()``,
    ///     at most (like listen(2)'s, and `tcp_max_syn_backlog`).
    ///   - configuration: for every accepted connection.
    ///   - reuseAddress: SO_REUSEADDR: listen even while connections (e.g. in TIME_WAIT)
    ///     hold the port, though not while another listener does.
    public init(interface: NetworkInterface, port requested: UInt16, backlog: Int = 128,
                configuration: TCPConfiguration = TCPConfiguration(), reuseAddress: Bool = false) throws(SocketError) {
        guard backlog >= 1 else { throw .invalidArgument }
        self.interface = interface
        self.backlog = backlog
        self.configuration = configuration
        self.port = try interface.lock.withLock { () throws(SocketError) -> UInt16 in
            if requested == 0 {
                guard let p = interface.tcpAllocateEphemeralPort() else { throw .addressInUse(0) }
                return p
            }
            guard interface.tcp.listeners[requested] == nil, interface.tcpBindPort(requested, shared: reuseAddress) else {
                throw .addressInUse(requested)
            }
            return requested
        }
        interface.lock.withLock {
            interface.tcp.listeners[port] = Unmanaged.passUnretained(self)
        }
        acceptQueue.reserveCapacity(min(backlog, 1024))
    }

    deinit { close() }

    /// The address the listener takes connections on.
    public var localAddress: SocketAddress { SocketAddress(interface.address, port) }

    /// O_NONBLOCK: ``accept()`` fails with `SocketError.wouldBlock` when nothing waits.
    public var isNonBlocking: Bool {
        get { interface.lock.withLock { nonBlocking } }
        set { interface.lock.withLock { nonBlocking = newValue } }
    }

    /// How long a blocking ``accept()`` waits (nil: for ever); then `SocketError.timedOut`.
    public var acceptTimeout: Duration? {
        get { interface.lock.withLock { timeout } }
        set { interface.lock.withLock { timeout = newValue } }
    }

    /// Connections waiting for ``accept()``.
    public var pendingConnections: Int { interface.lock.withLock { acceptQueue.count - acceptHead } }

    /// Children in SYN-RECEIVED.
    public var halfOpenConnections: Int { interface.lock.withLock { embryos.count } }

    public var readiness: Readiness { interface.lock.withLock { currentReadiness } }

    private var currentReadiness: Readiness {
        if isClosed { return [.hangUp] }
        return acceptQueue.count > acceptHead ? [.readable] : []
    }

    /// Called, with the interface's lock held, when a connection starts waiting or the
    /// listener closes; it must be short and must not call into the interface.
    public func setReadinessHandler(_ handler: (@Sendable (Readiness) -> Void)?) {
        var old = handler
        interface.lock.withLock { swap(&old, &readinessHandler) }
        old = nil   // released without the lock (it may hold a socket whose deinit takes it)
    }

    /// The next established connection (parking until there is one, when blocking).
    public func accept() throws(SocketError) -> TCPSocket {
        interface.lock.lock()
        var deadline: MonotonicInstant? = nil
        while true {
            if acceptHead < acceptQueue.count {
                let block = acceptQueue[acceptHead].take()!
                acceptHead += 1
                if acceptHead == acceptQueue.count {
                    acceptQueue.removeAll(keepingCapacity: true)
                    acceptHead = 0
                } else if acceptHead >= 64 && acceptHead * 2 >= acceptQueue.count {
                    acceptQueue.removeFirst(acceptHead)
                    acceptHead = 0
                }
                report()
                interface.lock.unlock()
                return TCPSocket(interface: interface, block: block)
            }
            if isClosed { interface.lock.unlock(); throw .closed }
            if nonBlocking { interface.lock.unlock(); throw .wouldBlock }
            guard UThread.isInUThread else { interface.lock.unlock(); throw .notOnUThread }
            if deadline == nil, let t = timeout { deadline = MonotonicInstant.now.advanced(by: t) }
            let outcome = parkWaiting(lock: interface.lock, until: deadline)
            if acceptHead < acceptQueue.count || isClosed { continue }
            if outcome == .interrupted { interface.lock.unlock(); throw .interrupted }
            if outcome == .timedOut { interface.lock.unlock(); throw .timedOut }
        }
    }

    /// Stops listening: the port is released, children not accepted are reset, blocked
    /// ``accept()`` calls end with `SocketError.closed`.
    public func close() {
        let i = interface
        var orphans: [TCPControlBlock] = []
        i.lock.withLock {
            if isClosed { return }
            isClosed = true
            if let l = i.tcp.listeners[port], l.toOpaque() == Unmanaged.passUnretained(self).toOpaque() {
                i.tcp.listeners[port] = nil
            }
            i.tcpReleasePort(port)
            let now = i.clock.now
            for (_, u) in embryos {
                u._withUnsafeGuaranteedRef { b in
                    b.parent = nil
                    b.appClosed = true
                    if b.connection != nil { b.connection!.abort() }
                    b.afterChange(now: now)
                }
            }
            embryos.removeAll()
            for case let b? in acceptQueue[acceptHead...] {
                b.appClosed = true
                if b.connection != nil { b.connection!.abort() }
                b.afterChange(now: now)
            }
            orphans = acceptQueue[acceptHead...].compactMap { $0 }   // released below, outside the lock
            acceptQueue.removeAll()
            acceptHead = 0
            wakeAllWaiters()
            report()
            i.flush()
        }
        orphans.removeAll()
        i.tcpBury()
    }

    // MARK: from the interface (lock held)

    private func report() {
        let r = currentReadiness
        if r != lastReadiness {
            lastReadiness = r
            readinessHandler?(r)
        }
    }

    /// A segment for our port that matches no connection: a SYN makes a child (or a
    /// cookie), an ACK may complete a cookie handshake, anything else is answered with RST.
    func segmentArrived(_ segment: TCPSegment, from remote: SocketAddress, now: Int64) {
        let i = interface
        let flags = segment.flags
        if flags.contains(.rst) { return }
        let local = SocketAddress(i.address, port)
        if flags.contains(.ack) {
            if !flags.contains(.syn), let cookies = i.tcp.cookies,
               let decoded = cookies.validate(segment, local: local, remote: remote, now: now) {
                guard acceptQueue.count - acceptHead < backlog else {
                    i.counters.tcp.listenOverflows &+= 1
                    return   // Linux drops it; the peer's retransmission may find room
                }
                i.counters.tcp.synCookiesAccepted &+= 1
                let b = TCPControlBlock(interface: i, configuration: configuration)
                b.attach(TCPConnection(cookieACK: segment, cookie: decoded, local: local, remote: remote,
                                       mss: i.tcpMSS, configuration: configuration, now: now))
                install(b, remote: remote, now: now, parent: false)
                return
            }
            if i.tcp.cookies != nil && !flags.contains(.syn) { i.counters.tcp.synCookiesFailed &+= 1 }
            i.sendTCPReset(answering: segment, localPort: port, remote: remote, now: now)
            return
        }
        guard flags.contains(.syn), !flags.contains(.fin) else { return }
        if acceptQueue.count - acceptHead >= backlog {
            i.counters.tcp.listenOverflows &+= 1
            return
        }
        let mss = i.tcpMSS
        if embryos.count >= backlog {
            // SYN queue full: answer with a cookie and keep nothing (RFC 4987 §3.6).
            if i.tcp.cookies == nil { i.tcp.cookies = SYNCookies() }
            let synAck = i.tcp.cookies!.synAck(answering: segment, local: local, remote: remote, mss: mss,
                                               configuration: configuration, now: now)
            i.counters.tcp.synCookiesSent &+= 1
            synCookiesSent &+= 1
            i.transmitTCP(synAck, localPort: port, remote: remote, now: now) { _ in }
            return
        }
        let isn = i.tcp.isn(local: local, remote: remote, now: now)
        guard let connection = TCPConnection(acceptingSYN: segment, local: local, remote: remote, isn: isn, mss: mss,
                                             configuration: configuration, now: now) else { return }
        let b = TCPControlBlock(interface: i, configuration: configuration)
        b.attach(connection)
        install(b, remote: remote, now: now, parent: true)
    }

    /// Puts a new child in the table and lets it send (its SYN-ACK, or nothing for a
    /// cookie connection, which goes straight to the accept queue).
    private func install(_ b: TCPControlBlock, remote: SocketAddress, now: Int64, parent: Bool) {
        let i = interface
        let key = TCPFlowKey(localPort: port, remote: remote)
        guard i.tcpInsert(b, key: key) else { return }
        b.localPort = port
        _ = i.tcpBindPort(port, shared: true)
        b.holdsPort = true
        b.remote = remote
        b.key = key
        b.inTable = true
        i.counters.tcp.passiveOpens &+= 1
        if parent {
            b.parent = Unmanaged.passUnretained(self)
            embryos[ObjectIdentifier(b)] = Unmanaged.passUnretained(b)
        } else {
            enqueue(b)
        }
        b.afterChange(now: now)
    }

    private func enqueue(_ b: TCPControlBlock) {
        acceptQueue.append(b)
        if let w = waiters.first {
            waiters.removeFirst()
            w.unpark()
        }
        report()
    }

    /// A child's handshake completed.
    func childEstablished(_ b: TCPControlBlock) {
        embryos[ObjectIdentifier(b)] = nil
        if isClosed { return }
        enqueue(b)
    }

    /// A child died before its handshake completed (RST, SYN-ACK retries exhausted).
    func childFailed(_ b: TCPControlBlock) {
        embryos[ObjectIdentifier(b)] = nil
        b.appClosed = true
    }
}
