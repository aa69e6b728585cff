// TCPSocket.swift: TCP stream sockets over a NetworkInterface: bind, connect (blocking or
// EINPROGRESS), read/write/readv/writev/peek, shutdown, close with SO_LINGER, options,
// readiness callbacks. The state lives in a TCPControlBlock the interface also holds.
import NICQueuesCore
import UThreads

/// A TCP socket (a connection's application end).
///
/// ```swift
/// let socket = try TCPSocket.connect(interface: interface, to: SocketAddress("10.0.0.1:80")!)
/// _ = try socket.write(Array("GET / HTTP/1.0\r\n\r\n".utf8))
/// var buffer = [UInt8](repeating: 0, count: 4096)
/// while try socket.read(into: &buffer) > 0 { /* ... */ }
/// socket.close()
/// ```
///
/// ## Blocking
/// Blocking calls (``connect(to:)``, ``read(into:)-(UnsafeMutableRawBufferPointer)``,
/// ``write(_:)-(UnsafeRawBufferPointer)`` while the send buffer is full, ``close()``
/// with a linger time) park the calling uthread, as ``UDPSocket`` does; the interface's
/// poller unparks it. `UThreadRef.interrupt()` ends the wait with
/// `SocketError.interrupted`, ``receiveTimeout`` and ``sendTimeout`` with
/// `SocketError.timedOut`. With ``isNonBlocking`` the calls fail with
/// `SocketError.wouldBlock` (and connect with `SocketError.inProgress`) instead.
///
/// ## Errors
/// The connection's errors come as the `SocketError` Linux's errno would be:
/// `SocketError.connectionRefused` (RST to our SYN), `SocketError.connectionReset`,
/// `SocketError.connectionTimedOut`, `SocketError.brokenPipe` (write after shutdown),
/// `SocketError.notConnectedStream`...
///
/// ## Readiness
/// ``setReadinessHandler(_:)`` is called, under the interface's lock, whenever what
/// epoll would report changes: readable (data, end of stream, error), writable (connect
/// done, space after the buffer was full), error, hang-up, read hang-up (the peer's FIN);
/// and on each arrival of new data.
///
/// ## Lifetime
/// ``close()`` returns at once and the FIN goes in the background (unless ``linger`` says
/// otherwise); the interface keeps the connection until its FIN exchange and TIME_WAIT
/// are over. Dropping the last reference to an open socket closes it. Any number of
/// uthreads may use one socket; its state is guarded by the interface's lock.
public final class TCPSocket: @unchecked Sendable {
    public let interface: NetworkInterface
    let block: TCPControlBlock

    /// An unconnected socket; options set now apply to the connection ``connect(to:)`` makes.
    public init(interface: NetworkInterface, configuration: TCPConfiguration = TCPConfiguration()) {
        self.interface = interface
        block = TCPControlBlock(interface: interface, configuration: configuration)
    }

    /// The socket of an accepted connection.
    init(interface: NetworkInterface, block: TCPControlBlock) {
        self.interface = interface
        self.block = block
    }

    deinit {
        close()
        interface.tcpBury()
    }

    /// A connected socket (blocking connect).
    /// - Parameters:
    ///   - interface: the interface whose address and routes it uses.
    ///   - remote: the peer's address and port.
    ///   - configuration: buffers, window scaling, congestion control and timers.
    ///   - timeout: how long the handshake may take (nil: the SYN retries decide).
    public static func connect(interface: NetworkInterface, to remote: SocketAddress,
                               configuration: TCPConfiguration = TCPConfiguration(),
                               timeout: Duration? = nil) throws(SocketError) -> TCPSocket {
        let s = TCPSocket(interface: interface, configuration: configuration)
        try s.connect(to: remote, timeout: timeout)
        return s
    }

    // MARK: options

    /// TCP_NODELAY.
    public var noDelay: Bool {
        get { withLock { block.connection?.noDelay ?? block.configuration.noDelay } }
        set {
            withLock {
                block.configuration.noDelay = newValue
                if block.connection != nil {
                    block.connection!.noDelay = newValue
                    block.afterChange(now: interface.clock.now)   // Nagle may have held data back
                }
            }
            interface.flushLocked()
        }
    }

    /// TCP_NODELAY and TCP_CORK at once, as one setsockopt changes them. `push`: what
    /// waits goes out now, short or not, past Nagle and the cork (Linux's
    /// TCP_NAGLE_PUSH when a program uncorks or sets TCP_NODELAY).
    public func setNagle(noDelay: Bool, cork: Bool, push: Bool) {
        withLock {
            block.configuration.noDelay = noDelay
            block.configuration.cork = cork
            guard block.connection != nil else { return }
            if push {
                block.connection!.noDelay = true
                block.connection!.cork = false
                block.afterChange(now: interface.clock.now)
            }
            block.connection!.noDelay = noDelay
            block.connection!.cork = cork
        }
        if push { interface.flushLocked() }
    }

    /// SO_KEEPALIVE and its knobs.
    public var keepalive: TCPKeepalive {
        get { withLock { block.connection?.keepalive ?? block.configuration.keepalive } }
        set {
            withLock {
                block.configuration.keepalive = newValue
                if block.connection != nil {
                    block.connection!.keepalive = newValue
                    block.afterChange(now: interface.clock.now)
                }
            }
        }
    }

    /// SO_RCVBUF, bytes; takes effect on the next connect (set it before connecting).
    public var receiveBufferSize: Int {
        get { withLock { block.configuration.receiveBufferSize } }
        set { withLock { block.configuration.receiveBufferSize = max(1024, newValue) } }
    }

    /// SO_SNDBUF, bytes; takes effect on the next connect (set it before connecting).
    public var sendBufferSize: Int {
        get { withLock { block.configuration.sendBufferSize } }
        set { withLock { block.configuration.sendBufferSize = max(1024, newValue) } }
    }

    /// SO_LINGER: nil, close returns at once and the FIN goes in the background; `.zero`,
    /// close resets the connection; otherwise close waits up to this long for the FIN to
    /// be acknowledged.
    public var linger: Duration? {
        get { withLock { block.configuration.linger } }
        set { withLock { block.configuration.linger = newValue } }
    }

    /// O_NONBLOCK.
    public var isNonBlocking: Bool {
        get { withLock { block.nonBlocking } }
        set { withLock { block.nonBlocking = newValue } }
    }

    /// SO_RCVTIMEO (nil: wait for ever).
    public var receiveTimeout: Duration? {
        get { withLock { block.receiveTimeout } }
        set { withLock { block.receiveTimeout = newValue } }
    }

    /// SO_SNDTIMEO (nil: wait for ever); also bounds a blocking ``connect(to:)``.
    public var sendTimeout: Duration? {
        get { withLock { block.sendTimeout } }
        set { withLock { block.sendTimeout = newValue } }
    }

    /// SO_REUSEADDR for ``bind(port:address:)``: share a port other sockets hold.
    public var reuseAddress: Bool {
        get { withLock { block.reuseAddress } }
        set { withLock { block.reuseAddress = newValue } }
    }

    /// The bound address, or nil before bind or connect.
    public var localAddress: SocketAddress? {
        withLock { block.localPort == 0 ? nil : SocketAddress(interface.address, block.localPort) }
    }

    /// The peer, once connect started (or for an accepted socket).
    public var remoteAddress: SocketAddress? { withLock { block.remote } }

    public var state: TCPState { withLock { block.state } }

    /// TCP_INFO.
    public var info: TCPInfo {
        withLock {
            block.connection?.info ?? TCPInfo(state: .closed, smoothedRTT: nil, rttVariance: nil, rto: block.configuration.initialRTO,
                                              congestionWindow: 0, slowStartThreshold: 0, maximumSegmentSize: 0, peerWindow: 0,
                                              bytesInFlight: 0, sendWindowScale: 0, receiveWindowScale: 0, sackEnabled: false,
                                              timestampsEnabled: false, congestionControl: block.configuration.congestionControl,
                                              statistics: TCPStatistics())
        }
    }

    /// Bytes ready to read now (FIONREAD).
    public var readableBytes: Int { withLock { block.connection?.readableBytes ?? 0 } }

    /// SO_ERROR: returns and clears the connection's pending error.
    public func takeError() -> SocketError? {
        withLock { () -> SocketError? in
            guard block.connection != nil, let e = block.connection!.takeError() else { return nil }
            return block.socketError(e)
        }
    }

    /// What the socket is ready for now.
    public var readiness: Readiness { withLock { block.currentReadiness } }

    /// Called, with the interface's lock held, when the readiness changes (see the type's
    /// documentation): it must be short and must not call back into the socket or the
    /// interface (set a flag, unpark a uthread).
    public func setReadinessHandler(_ handler: (@Sendable (Readiness) -> Void)?) {
        // The old handler is released after the lock (it may hold the last reference to a
        // socket, whose deinit takes the lock).
        var old = handler
        withLock { swap(&old, &block.readinessHandler) }
        old = nil
    }

    // MARK: bind and connect

    /// Binds to `port` on the interface's address (0: a free ephemeral port, 32768–60999).
    /// - Parameters:
    ///   - port: the local port (0: an ephemeral one).
    ///   - address: nil, 0.0.0.0 or the interface's address.
    public func bind(port: UInt16 = 0, address: IPv4Address? = nil) throws(SocketError) {
        if let address, !address.isUnspecified, address != interface.address { throw .addressNotAvailable(address) }
        try withLock { () throws(SocketError) in
            if block.appClosed { throw .closed }
            if block.localPort != 0 || block.connection != nil { throw .alreadyBound }
            try bindLocked(port)
        }
    }

    private func bindLocked(_ port: UInt16) throws(SocketError) {
        if port == 0 {
            guard let p = interface.tcpAllocateEphemeralPort() else { throw .addressInUse(0) }
            block.localPort = p
        } else {
            guard interface.tcpBindPort(port, shared: block.reuseAddress) else { throw .addressInUse(port) }
            block.localPort = port
        }
        block.holdsPort = true
    }

    /// Connects to `remote`. Blocking: returns once the connection is established, or
    /// throws why not (`SocketError.connectionRefused`, `SocketError.connectionTimedOut`,
    /// `SocketError.timedOut` after ``sendTimeout``...). Non-blocking: sends the SYN and
    /// throws `SocketError.inProgress`; the socket turns writable when the handshake is
    /// done (or readable with an error when it failed), and a second call reports it.
    public func connect(to remote: SocketAddress) throws(SocketError) {
        try connect(to: remote, timeout: nil)
    }

    func connect(to remote: SocketAddress, timeout: Duration?) throws(SocketError) {
        guard remote.port != 0, !remote.address.isUnspecified, !remote.address.isBroadcast, !remote.address.isMulticast else {
            throw .invalidDestination(remote)
        }
        let i = interface
        i.lock.lock()
        defer { i.lock.unlock(); i.tcpBury() }
        let b = block
        if b.appClosed { throw .closed }
        if b.connection != nil {
            // A second call: the outcome of a non-blocking connect, once (as Linux).
            switch b.state {
            case .synSent, .synReceived:
                if b.nonBlocking { throw .alreadyInProgress }
            case .closed:
                if b.connectPending {
                    b.connectPending = false
                    if let e = b.connection!.takeError() { throw b.socketError(e) }
                    throw .connectionRefused
                }
                throw .invalidArgument
            default:
                if b.connectPending { b.connectPending = false; return }
                throw .alreadyConnected
            }
        } else {
            guard i.route(remote.address) != nil else { i.counters.ipv4.noRoute &+= 1; throw .networkUnreachable(remote.address) }
            if b.localPort == 0 { try bindLocked(0) }
            let key = TCPFlowKey(localPort: b.localPort, remote: remote)
            guard i.tcpInsert(b, key: key) else { throw .addressInUse(b.localPort) }
            let now = i.clock.now
            let local = SocketAddress(i.address, b.localPort)
            b.remote = remote
            b.key = key
            b.inTable = true
            b.attach(TCPConnection(connectingFrom: local, to: remote, isn: i.tcp.isn(local: local, remote: remote, now: now),
                                   mss: i.tcpMSS, configuration: b.configuration, now: now))
            i.counters.tcp.activeOpens &+= 1
            b.afterChange(now: now)
            i.flush()
            if b.nonBlocking {
                b.connectPending = true
                throw .inProgress
            }
        }
        // Blocking: wait for the handshake.
        var deadline: MonotonicInstant? = nil
        var outcome = WaitOutcome.woken
        while true {
            switch b.state {
            case .synSent, .synReceived: break
            case .closed:
                b.connectPending = false
                if let e = b.connection!.takeError() { throw b.socketError(e) }
                throw .connectionRefused
            default:
                b.connectPending = false
                return
            }
            if b.appClosed { throw .closed }
            switch outcome {
            case .woken: break
            case .interrupted: throw .interrupted
            case .timedOut:
                b.connection!.abort()
                b.afterChange(now: i.clock.now)
                i.flush()
                throw .timedOut
            }
            outcome = try b.park(deadline: &deadline, timeout: timeout ?? b.sendTimeout)
        }
    }

    // MARK: read

    /// Reads what is there (parking until something is, when blocking). Returns the bytes
    /// copied; 0 at the end of the stream (or for an empty buffer).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        try receive(into: buffer, peek: false)
    }

    /// Reads into an array; returns the bytes copied (0: end of stream).
    public func read(into buffer: inout [UInt8]) throws(SocketError) -> Int {
        try buffer.withUnsafeMutableBytes { b in Result { () throws(SocketError) in try read(into: b) } }.get()
    }

    /// Reads into several buffers in order (readv); waits (when blocking) only for the first byte.
    public func readv(_ buffers: [UnsafeMutableRawBufferPointer]) throws(SocketError) -> Int {
        var total = 0
        for b in buffers where b.count > 0 {
            let n: Int
            do { n = try receive(into: b, peek: false, wait: total == 0) } catch {
                if total > 0 { return total }
                throw error
            }
            total += n
            if n < b.count { break }
        }
        return total
    }

    /// Copies what is there without consuming it (MSG_PEEK); waits like read.
    public func peek(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        try receive(into: buffer, peek: true)
    }

    private func receive(into buffer: UnsafeMutableRawBufferPointer, peek: Bool, wait: Bool = true) throws(SocketError) -> Int {
        let i = interface
        let b = block
        i.lock.lock()
        defer { i.lock.unlock() }
        var deadline: MonotonicInstant? = nil
        var outcome = WaitOutcome.woken
        while true {
            if b.appClosed { throw .closed }
            guard b.hasConnection else { throw .notConnectedStream }
            if b.readShut { return 0 }
            if buffer.count == 0 { return 0 }
            if peek {
                let n = b.connection?.peek(into: buffer) ?? 0
                if n > 0 { return n }
                if b.connection?.readiness.contains(.readable) == true {
                    // End of stream, or an error to report.
                    if let e = b.connection?.pendingError { throw b.socketError(e) }
                    return 0
                }
            } else {
                let r: Int?
                do { r = try b.connection!.receive(into: buffer) } catch {
                    if error == .notConnected && (b.state == .synSent || b.state == .synReceived) {
                        r = nil   // still connecting: a blocking read waits
                    } else {
                        b.afterChange(now: i.clock.now)
                        throw b.socketError(error)
                    }
                }
                if let n = r {
                    if n > 0 {
                        // The window may have opened: the update goes out now.
                        b.afterChange(now: i.clock.now)
                        i.flush()
                    }
                    return n
                }
                if b.state == .closed { throw .notConnectedStream }
            }
            switch outcome {
            case .woken: break
            case .interrupted: throw .interrupted
            case .timedOut: throw .timedOut
            }
            if b.nonBlocking || !wait { throw .wouldBlock }
            outcome = try b.park(deadline: &deadline, timeout: b.receiveTimeout)
        }
    }

    // MARK: write

    /// Writes `bytes`. Blocking: all of them (parking while the send buffer is full);
    /// non-blocking: what fits, `SocketError.wouldBlock` when nothing does. After part
    /// was written, a later failure (timeout, interrupt, error) returns the part.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Int {
        let i = interface
        let b = block
        i.lock.lock()
        defer { i.lock.unlock() }
        var sent = 0
        var deadline: MonotonicInstant? = nil
        var outcome = WaitOutcome.woken
        while true {
            if b.appClosed { throw .closed }
            guard b.hasConnection else { throw .notConnectedStream }
            if bytes.count == sent { return sent }
            let n: Int
            do { n = try b.connection!.send(UnsafeRawBufferPointer(rebasing: bytes[sent...])) } catch {
                if sent > 0 { return sent }
                switch error {
                case .notConnected:
                    // Still connecting: a blocking write waits for the handshake.
                    if b.state != .synSent && b.state != .synReceived { throw .notConnectedStream }
                default: throw b.socketError(error)   // the connection's error once, then EPIPE
                }
                n = 0
            }
            if n > 0 {
                sent += n
                b.afterChange(now: i.clock.now)
                i.flush()
                if sent == bytes.count { return sent }
                continue   // Nagle, window updates: try again before parking
            }
            switch outcome {
            case .woken: break
            case .interrupted: if sent > 0 { return sent }; throw .interrupted
            case .timedOut: if sent > 0 { return sent }; throw .timedOut
            }
            if b.nonBlocking { if sent > 0 { return sent }; throw .wouldBlock }
            outcome = try b.park(deadline: &deadline, timeout: b.sendTimeout)
        }
    }

    /// Writes the bytes of a collection (as ``write(_:)-(UnsafeRawBufferPointer)``).
    public func write(_ bytes: some Collection<UInt8>) throws(SocketError) -> Int {
        let r: Result<Int, SocketError>? = bytes.withContiguousStorageIfAvailable { p in
            Result { () throws(SocketError) in try write(UnsafeRawBufferPointer(p)) }
        }
        if let r { return try r.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBytes { p in Result { () throws(SocketError) in try write(p) } }.get()
    }

    /// Writes several buffers in order (writev).
    public func writev(_ buffers: [UnsafeRawBufferPointer]) throws(SocketError) -> Int {
        var total = 0
        for b in buffers where b.count > 0 {
            let n: Int
            do { n = try write(b) } catch {
                if total > 0 { return total }
                throw error
            }
            total += n
            if n < b.count { break }
        }
        return total
    }

    // MARK: shutdown and close

    /// shutdown(2): `.write` sends a FIN after the queued data; `.read` makes reads return
    /// end of stream; `.both` does both.
    public func shutdown(_ how: SocketShutdown) throws(SocketError) {
        let i = interface
        try withLock { () throws(SocketError) in
            let b = block
            if b.appClosed { throw .closed }
            guard b.hasConnection else { throw .notConnectedStream }
            switch b.state {
            case .closed, .listen, .synSent: throw .notConnectedStream
            default: break
            }
            if how != .write { b.readShut = true }
            if how != .read { b.connection!.shutdownWrite() }
            b.afterChange(now: i.clock.now)
            b.wakeAll()
            i.flush()
        }
        i.tcpBury()
    }

    /// Closes the socket (see ``linger``). Blocked calls on it end with
    /// `SocketError.closed`. The connection finishes in the background.
    public func close() {
        let i = interface
        let b = block
        i.lock.lock()
        if b.appClosed { i.lock.unlock(); return }
        b.appClosed = true
        let linger = b.configuration.linger
        if b.connection == nil {
            b.releasePort()
        } else if linger == .zero {
            b.connection!.abort()
        } else {
            b.connection!.close()
        }
        b.afterChange(now: i.clock.now)
        b.notify()
        b.wakeAll()
        i.flush()
        if let linger, linger > .zero, b.connection != nil, UThread.isInUThread {
            var deadline: MonotonicInstant? = nil
            waiting: while true {
                switch b.state {
                case .finWait1, .closing, .lastAck, .synSent, .synReceived, .established, .closeWait: break
                default: break waiting
                }
                guard let outcome = try? b.park(deadline: &deadline, timeout: linger), outcome == .woken else { break }
            }
        }
        i.lock.unlock()
        i.tcpBury()
    }

    /// Resets the connection (RST) and closes the socket.
    public func abort() {
        let i = interface
        let b = block
        i.lock.withLock {
            if b.appClosed { return }
            b.appClosed = true
            if b.connection == nil {
                b.releasePort()
            } else {
                b.connection!.abort()
            }
            b.afterChange(now: i.clock.now)
            b.notify()
            b.wakeAll()
            i.flush()
        }
        i.tcpBury()
    }

    @inline(__always)
    private func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        try interface.lock.withLock(body)
    }
}

extension NetworkInterface {
    /// Transmits what the batch holds (lock not held).
    func flushLocked() { lock.withLock { flush() } }
}
