// UDPSocket.swift: UDP sockets over a NetworkInterface: bind (ephemeral ports), connect,
// send/sendTo, receive/receiveFrom, blocking (the uthread parks) or not, timeouts, a
// bounded receive queue of pool buffers with a drop counter, readiness callbacks.
import NICQueuesCore
import UThreads

/// Counters of one socket.
public struct UDPSocketStatistics: Sendable, Equatable {
    public var received: UInt64 = 0
    /// Datagrams dropped because the receive queue was full.
    public var droppedQueueFull: UInt64 = 0
    public var sent: UInt64 = 0
    public init() {}
}

/// A UDP socket. Received datagrams wait in their pool buffers (no copy until `receive`).
///
/// ```swift
/// let socket = try UDPSocket(interface: interface, port: 7)
/// var buffer = [UInt8](repeating: 0, count: 2048)
/// while true {
///     let (n, from) = try socket.receiveFrom(into: &buffer)
///     _ = try socket.send(buffer[..<n], to: from)
/// }
/// ```
///
/// Blocking calls park the calling uthread; the interface's poller unparks it. Any
/// number of uthreads may use one socket; its state is guarded by the interface's lock.
public final class UDPSocket: UThreadParking, @unchecked Sendable {
    public let interface: NetworkInterface
    // Guarded by interface.lock.
    @exclusivity(unchecked) private var queue: PacketBatch
    private let sources: UnsafeMutablePointer<SocketAddress>
    @exclusivity(unchecked) private var sourceHead = 0
    @exclusivity(unchecked) var waiters: [UThreadRef] = []
    @exclusivity(unchecked) private var pendingError: SocketError?
    @exclusivity(unchecked) private var readinessHandler: (@Sendable (Readiness) -> Void)?
    @exclusivity(unchecked) private var stats = UDPSocketStatistics()
    @exclusivity(unchecked) private var port: UInt16 = 0
    @exclusivity(unchecked) private var remote: SocketAddress?
    @exclusivity(unchecked) private var isClosed = false
    @exclusivity(unchecked) private var nonBlocking = false
    @exclusivity(unchecked) private var timeout: Duration?

    /// An unbound socket (it binds an ephemeral port on first send or connect).
    public init(interface: NetworkInterface) {
        self.interface = interface
        let capacity = interface.configuration.udpReceiveQueueLength
        queue = PacketBatch(capacity: capacity)
        sources = .allocate(capacity: capacity)
        waiters.reserveCapacity(4)
    }

    /// A socket bound to `port` (0: an ephemeral port).
    public convenience init(interface: NetworkInterface, port: UInt16) throws(SocketError) {
        self.init(interface: interface)
        try bind(port: port)
    }

    deinit {
        close()
        sources.deallocate()
    }

    // MARK: options

    /// Non-blocking mode: `receive` fails with `wouldBlock` instead of parking.
    public var isNonBlocking: Bool {
        get { interface.lock.withLock { nonBlocking } }
        set { interface.lock.withLock { nonBlocking = newValue } }
    }

    /// How long a blocking `receive` waits (nil: for ever), like SO_RCVTIMEO.
    public var receiveTimeout: Duration? {
        get { interface.lock.withLock { timeout } }
        set { interface.lock.withLock { timeout = newValue } }
    }

    /// The bound address, or nil before binding.
    public var localAddress: SocketAddress? {
        interface.lock.withLock { port == 0 ? nil : SocketAddress(interface.address, port) }
    }

    /// The connected peer, if any.
    public var remoteAddress: SocketAddress? { interface.lock.withLock { remote } }

    public var statistics: UDPSocketStatistics { interface.lock.withLock { stats } }

    /// Datagrams waiting.
    public var queuedDatagrams: Int { interface.lock.withLock { queue.count } }

    /// What the socket is ready for now.
    public var readiness: Readiness { interface.lock.withLock { currentReadiness } }

    private var currentReadiness: Readiness {
        if isClosed { return [.hangUp] }
        var r: Readiness = [.writable]
        if !queue.isEmpty { r.insert(.readable) }
        if pendingError != nil { r.formUnion([.readable, .error]) }
        return r
    }

    /// Called when the socket becomes readable, gets an error or is closed, with the
    /// interface's lock held (from the poller): it must be short and must not call back
    /// into the socket or the interface (set a flag, unpark a uthread).
    public func setReadinessHandler(_ handler: (@Sendable (Readiness) -> Void)?) {
        interface.lock.withLock { readinessHandler = handler }
    }

    // MARK: bind and connect

    /// Binds to `port` on the interface's address (0: a free ephemeral port, 32768–60999).
    /// - Parameters:
    ///   - requested: the local port (0: an ephemeral one).
    ///   - address: nil, 0.0.0.0 or the interface's address.
    public func bind(port requested: UInt16 = 0, address: IPv4Address? = nil) throws(SocketError) {
        if let address, !address.isUnspecified, address != interface.address { throw .addressNotAvailable(address) }
        try interface.lock.withLock { () throws(SocketError) in
            if isClosed { throw .closed }
            if port != 0 { throw .alreadyBound }
            try bindLocked(requested)
        }
    }

    private func bindLocked(_ requested: UInt16) throws(SocketError) {
        let chosen: UInt16
        if requested != 0 {
            guard interface.udpPorts[Int(requested)] == nil else { throw .addressInUse(requested) }
            chosen = requested
        } else {
            guard let p = interface.allocateEphemeralPort() else { throw .addressInUse(0) }
            chosen = p
        }
        interface.udpPorts[Int(chosen)] = Unmanaged.passUnretained(self)
        port = chosen
    }

    /// Sets the default destination and receives only from it (binding an ephemeral port
    /// first when unbound).
    public func connect(to peer: SocketAddress) throws(SocketError) {
        guard peer.port != 0, !peer.address.isUnspecified else { throw .invalidDestination(peer) }
        try interface.lock.withLock { () throws(SocketError) in
            if isClosed { throw .closed }
            if port == 0 { try bindLocked(0) }
            remote = peer
            pendingError = nil
        }
    }

    /// Releases the port, drops queued datagrams and wakes blocked callers (`closed`).
    public func close() {
        interface.lock.withLock {
            if isClosed { return }
            isClosed = true
            if port != 0, interface.udpPorts[Int(port)]?.toOpaque() == Unmanaged.passUnretained(self).toOpaque() {
                interface.udpPorts[Int(port)] = nil
            }
            queue.removeAll()
            wakeAll()
            readinessHandler?([.hangUp])
        }
    }

    // MARK: send

    /// Sends to the connected peer. Returns the bytes sent.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Int {
        try send(bytes, destination: nil)
    }

    /// Sends to `destination`. Returns the bytes sent.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, to destination: SocketAddress) throws(SocketError) -> Int {
        try send(bytes, destination: destination)
    }

    @discardableResult
    public func send(_ bytes: some Collection<UInt8>, to destination: SocketAddress? = nil) throws(SocketError) -> Int {
        let r: Result<Int, SocketError>? = bytes.withContiguousStorageIfAvailable { b in
            Result { () throws(SocketError) in try send(UnsafeRawBufferPointer(b), destination: destination) }
        }
        if let r { return try r.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBytes { b in
            Result { () throws(SocketError) in try send(b, destination: destination) }
        }.get()
    }

    private func send(_ bytes: UnsafeRawBufferPointer, destination: SocketAddress?) throws(SocketError) -> Int {
        let i = interface
        guard bytes.count <= i.maximumUDPPayload else { throw .messageTooLong(length: bytes.count, maximum: i.maximumUDPPayload) }
        if let d = destination, d.port == 0 || d.address.isUnspecified { throw .invalidDestination(d) }
        // Build the datagram outside the lock: a pool buffer, the payload, the UDP header.
        guard var frame = i.pool.allocate() else { throw .noBufferSpace }
        let length = transportOffset + UDPHeader.length + bytes.count
        do { try frame.setLength(length) } catch { throw .noBufferSpace }
        let out = UnsafeMutableRawBufferPointer(start: frame.unsafeData, count: length)
        if let base = bytes.baseAddress, bytes.count > 0 {
            (out.baseAddress! + transportOffset + UDPHeader.length).copyMemory(from: base, byteCount: bytes.count)
        }
        let now = i.clock.now
        let compute = i.computeUDPChecksums
        i.lock.lock()
        defer { i.lock.unlock() }
        do {
            if isClosed { throw .closed }
            if let e = pendingError { pendingError = nil; throw e }
            guard let to = destination ?? remote else { throw .notConnected }
            if port == 0 { try bindLocked(0) }
            guard i.route(to.address) != nil else { i.counters.ipv4.noRoute &+= 1; throw .networkUnreachable(to.address) }
            let header = UDPHeader(sourcePort: port, destinationPort: to.port, payloadLength: bytes.count)
            do {
                try header.emit(into: UnsafeMutableRawBufferPointer(rebasing: out[transportOffset...]),
                                source: i.address, destination: to.address, computeChecksum: compute)
            } catch { throw .messageTooLong(length: bytes.count, maximum: i.maximumUDPPayload) }
            switch i.outputIPv4(frame, to: to.address, protocol: .udp, payloadLength: UDPHeader.length + bytes.count, now: now) {
            case .sent, .queued:
                i.counters.udp.sent &+= 1
                stats.sent &+= 1
                i.flush()
                return bytes.count
            case .noRoute: throw .networkUnreachable(to.address)
            case .queueFull: throw .noBufferSpace
            }
        }
    }

    // MARK: receive

    /// Receives one datagram into `buffer` (the excess of a longer one is lost, as with
    /// recv without MSG_TRUNC). Returns the bytes copied.
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        try receiveFrom(into: buffer).count
    }

    /// Receives one datagram and says who sent it.
    public func receiveFrom(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> (count: Int, from: SocketAddress) {
        var deadline: MonotonicInstant? = nil
        interface.lock.lock()
        while true {
            if let frame = queue.popFirst() {
                let from = sources[sourceHead]
                sourceHead = (sourceHead + 1) % queue.capacity
                interface.lock.unlock()
                let n = min(frame.length, buffer.count)
                if n > 0, let dst = buffer.baseAddress { dst.copyMemory(from: frame.unsafeData, byteCount: n) }
                return (n, from)
            }
            try awaitDatagram(deadline: &deadline)
        }
    }

    /// A receive found the queue empty (lock held): throws what it reports now (lock
    /// released), or parks until a datagram, an error, a close, the deadline or an
    /// interrupt, and returns with the lock held for the caller to look again.
    private func awaitDatagram(deadline: inout MonotonicInstant?) throws(SocketError) {
        if let e = pendingError { pendingError = nil; interface.lock.unlock(); throw e }
        if isClosed { interface.lock.unlock(); throw .closed }
        if nonBlocking { interface.lock.unlock(); throw .wouldBlock }
        guard UThread.isInUThread else { interface.lock.unlock(); throw .notOnUThread }
        if deadline == nil, let t = timeout { deadline = MonotonicInstant.now.advanced(by: t) }
        let outcome = parkWaiting(lock: interface.lock, until: deadline)
        if !queue.isEmpty || pendingError != nil || isClosed { return }
        if outcome == .interrupted { interface.lock.unlock(); throw .interrupted }
        if outcome == .timedOut { interface.lock.unlock(); throw .timedOut }
    }

    /// Receives one datagram into `buffers` in order (recvmsg), or copies it and leaves it
    /// queued (`peek`, MSG_PEEK). Returns the bytes copied, the datagram's full length
    /// (what MSG_TRUNC reports) and the sender.
    public func receiveMessage(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>,
                               peek: Bool) throws(SocketError) -> (count: Int, length: Int, from: SocketAddress) {
        var deadline: MonotonicInstant? = nil
        interface.lock.lock()
        while true {
            if !queue.isEmpty {
                let from = sources[sourceHead]
                let (copied, length) = queue.withBytes(at: 0) { (bytes: UnsafeRawBufferPointer) -> (Int, Int) in
                    var done = 0
                    for b in buffers where done < bytes.count && b.count > 0 {
                        let n = min(b.count, bytes.count - done)
                        b.baseAddress!.copyMemory(from: bytes.baseAddress! + done, byteCount: n)
                        done += n
                    }
                    return (done, bytes.count)
                }
                if !peek {
                    _ = queue.popFirst()
                    sourceHead = (sourceHead + 1) % queue.capacity
                }
                interface.lock.unlock()
                return (copied, length, from)
            }
            try awaitDatagram(deadline: &deadline)
        }
    }

    /// The next datagram's length (0 when none waits): FIONREAD on a datagram socket.
    public var nextDatagramLength: Int { interface.lock.withLock { queue.isEmpty ? 0 : queue.length(at: 0) } }

    /// Receives into an array; returns the bytes copied.
    public func receive(into buffer: inout [UInt8]) throws(SocketError) -> Int {
        try buffer.withUnsafeMutableBytes { b in Result { () throws(SocketError) in try receive(into: b) } }.get()
    }

    /// Receives into an array; returns the bytes copied and the sender.
    public func receiveFrom(into buffer: inout [UInt8]) throws(SocketError) -> (count: Int, from: SocketAddress) {
        try buffer.withUnsafeMutableBytes { b in Result { () throws(SocketError) in try receiveFrom(into: b) } }.get()
    }

    // MARK: from the interface (lock held)

    /// Whether a datagram from `from` is for this socket (a connected one takes only its peer's).
    func accepts(from: SocketAddress) -> Bool {
        guard let remote else { return true }
        return remote == from
    }

    /// Queues a received datagram (the buffer holds just its payload). False when full.
    func deliver(_ frame: consuming PacketBuffer, from: SocketAddress) -> Bool {
        if queue.isFull {
            stats.droppedQueueFull &+= 1
            return false
        }
        sources[(sourceHead + queue.count) % queue.capacity] = from
        let wasEmpty = queue.isEmpty
        queue.append(frame)
        stats.received &+= 1
        // Wake one waiter per datagram, taking it off the list so the next datagram wakes
        // the next one (a woken waiter that finds the queue empty registers again).
        if !waiters.isEmpty { waiters.removeFirst().unpark() }
        if wasEmpty { readinessHandler?(currentReadiness) }
        return true
    }

    /// An ICMP error about a datagram we sent to `from`: kept for the next call when the
    /// socket is connected to `from` (RFC 1122 §4.1.3.3; Linux without IP_RECVERR).
    func reportError(_ error: SocketError, from: SocketAddress) {
        guard let remote, remote == from else { return }
        pendingError = error
        wakeAll()
        readinessHandler?(currentReadiness)
    }

    private func wakeAll() { wakeAllWaiters() }
}

extension NetworkInterface {
    /// A free port from the ephemeral range, searched from a moving start. Lock held.
    func allocateEphemeralPort() -> UInt16? {
        let span = Int(ephemeralPorts.upperBound - ephemeralPorts.lowerBound) + 1
        for _ in 0..<span {
            let p = nextEphemeral
            nextEphemeral = p >= ephemeralPorts.upperBound ? ephemeralPorts.lowerBound : p + 1
            if udpPorts[Int(p)] == nil { return p }
        }
        return nil
    }
}
