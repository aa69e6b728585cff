// TCPConnection.swift: one connection's control block and its public surface. It takes
// parsed segments and application calls, and says what to send; it never touches a
// device, a lock or a clock of its own (time comes in as `now`, nanoseconds).
// SKELETON (branch tcp): the API contract; bodies marked "tcpcore" are filled in by the core.

/// One TCP connection (RFC 9293), as a state machine.
///
/// The network side: ``input(_:now:)`` for each arriving segment, then
/// ``nextSegment(now:)`` until it returns nil, copying each segment's payload with
/// ``copyPayload(of:into:)``; ``handleTimers(now:)`` at ``nextDeadline`` (then
/// ``nextSegment(now:)`` again). The application side: ``send(_:)``, ``receive(into:)``,
/// ``shutdownWrite()``, ``close()``, ``abort()``, after each of which the caller drains
/// ``nextSegment(now:)``. A connection whose ``isFinished`` is true can be dropped.
public struct TCPConnection: ~Copyable {
    public let local: SocketAddress
    public let remote: SocketAddress

    /// Active open: the first ``nextSegment(now:)`` is the SYN (state SYN-SENT).
    /// - Parameters:
    ///   - isn: from ``ISNGenerator``.
    ///   - mss: largest payload the route carries (device MTU − 40); the MSS we advertise
    ///     and the ceiling of what we send.
    public init(connectingFrom local: SocketAddress, to remote: SocketAddress, isn: SequenceNumber, mss: Int,
                configuration: TCPConfiguration, now: Int64) { fatalError("tcpcore") }

    /// Passive open from a SYN that reached a listener: state SYN-RECEIVED, the first
    /// ``nextSegment(now:)`` is the SYN-ACK. Nil when `syn` is not an acceptable SYN
    /// (no SYN bit, ACK or RST set).
    public init?(acceptingSYN syn: TCPSegment, local: SocketAddress, remote: SocketAddress, isn: SequenceNumber,
                 mss: Int, configuration: TCPConfiguration, now: Int64) { fatalError("tcpcore") }

    /// A connection rebuilt from the ACK that completes a SYN-cookie handshake
    /// (state ESTABLISHED; window scaling and SACK as the cookie recorded them).
    public init(cookieACK ack: TCPSegment, cookie: SYNCookies.Decoded, local: SocketAddress, remote: SocketAddress,
                mss: Int, configuration: TCPConfiguration, now: Int64) { fatalError("tcpcore") }

    public var state: TCPState { fatalError("tcpcore") }
    /// The error that ended the connection (or the last soft error), until it is taken.
    public var pendingError: TCPError? { fatalError("tcpcore") }
    /// Returns and clears the pending error (SO_ERROR).
    public mutating func takeError() -> TCPError? { fatalError("tcpcore") }
    public var readiness: TCPReadiness { fatalError("tcpcore") }
    /// Bytes ready for ``receive(into:)``.
    public var readableBytes: Int { fatalError("tcpcore") }
    /// Send-buffer space free now.
    public var writableSpace: Int { fatalError("tcpcore") }
    /// Nothing more to do: closed, or TIME_WAIT over. The owner may free it.
    public var isFinished: Bool { fatalError("tcpcore") }
    /// The earliest time ``handleTimers(now:)`` has work (retransmission, delayed ACK,
    /// persist, keepalive, TIME_WAIT, FIN_WAIT_2), or nil.
    public var nextDeadline: Int64? { fatalError("tcpcore") }
    public var info: TCPInfo { fatalError("tcpcore") }

    // Options that may change after creation.
    public var noDelay: Bool {
        get { fatalError("tcpcore") }
        set { fatalError("tcpcore") }
    }
    public var keepalive: TCPKeepalive {
        get { fatalError("tcpcore") }
        set { fatalError("tcpcore") }
    }

    // MARK: application side

    /// Copies as much of `bytes` into the send buffer as fits. Returns the bytes taken (0
    /// when the buffer is full).
    /// - Throws: ``TCPError/writeClosed`` after shutdown or close, the pending error on a
    ///   dead connection, ``TCPError/notConnected`` before the handshake started.
    public mutating func send(_ bytes: UnsafeRawBufferPointer) throws(TCPError) -> Int { fatalError("tcpcore") }

    /// Copies received in-order bytes out. Returns the count; 0 means end of stream (the
    /// peer's FIN was read) when `buffer` is not empty; nil means nothing yet.
    /// - Throws: the pending error (``TCPError/reset``...) once the data before it is read.
    public mutating func receive(into buffer: UnsafeMutableRawBufferPointer) throws(TCPError) -> Int? { fatalError("tcpcore") }

    /// Like ``receive(into:)`` but leaves the bytes (MSG_PEEK).
    public func peek(into buffer: UnsafeMutableRawBufferPointer) -> Int { fatalError("tcpcore") }

    /// shutdown(SHUT_WR): a FIN after the queued data.
    public mutating func shutdownWrite() { fatalError("tcpcore") }

    /// close(): shutdownWrite, and data arriving afterwards (or unread now) is answered
    /// with RST, as Linux does. Closing a LISTEN/SYN-SENT connection ends it at once.
    public mutating func close() { fatalError("tcpcore") }

    /// abort(): RST (when synchronized) and CLOSED at once; pending error ``TCPError/aborted``.
    public mutating func abort() { fatalError("tcpcore") }

    // MARK: network side

    /// Processes one arriving segment for this connection (RFC 9293 §3.10.7).
    public mutating func input(_ segment: TCPSegment, now: Int64) { fatalError("tcpcore") }

    /// An ICMP error about a segment of ours: hard errors end a connection attempt
    /// (RFC 1122 §4.2.3.9; soft otherwise).
    public mutating func icmpUnreachable(now: Int64) { fatalError("tcpcore") }

    /// The next segment to transmit now (ACKs, data under the congestion and peer
    /// windows, retransmissions, FIN, RST, probes), or nil. Call until nil.
    public mutating func nextSegment(now: Int64) -> TCPOutgoingSegment? { fatalError("tcpcore") }

    /// Copies `segment`'s payload from the send buffer into `buffer` (at least
    /// `segment.payloadLength` bytes).
    public func copyPayload(of segment: TCPOutgoingSegment, into buffer: UnsafeMutableRawBufferPointer) { fatalError("tcpcore") }

    /// Runs the timers due at `now`.
    public mutating func handleTimers(now: Int64) { fatalError("tcpcore") }

    /// The RST to answer a segment that matches no connection (RFC 9293 §3.10.7.1), or nil
    /// (a RST is never answered).
    public static func reset(answering segment: TCPSegment) -> TCPOutgoingSegment? { fatalError("tcpcore") }
}

/// Initial sequence numbers per RFC 6528: a 4 µs clock plus a keyed hash (SipHash-2-4)
/// of the connection's addresses and ports under a secret chosen at random.
public struct ISNGenerator: Sendable {
    public init() { fatalError("tcpcore") }
    /// A generator with a given key (tests).
    public init(key0: UInt64, key1: UInt64) { fatalError("tcpcore") }
    public func isn(local: SocketAddress, remote: SocketAddress, now: Int64) -> SequenceNumber { fatalError("tcpcore") }
}

/// SYN cookies (used when a listener's SYN backlog is full): the ISN of our SYN-ACK
/// encodes a coarse time counter, the MSS (one of a small table) and, in the timestamp
/// option's low bits when timestamps are on, window scale and SACK-permitted; a keyed hash
/// makes it unforgeable. The completing ACK is checked and decoded.
public struct SYNCookies: Sendable {
    public struct Decoded: Sendable, Hashable {
        /// Our ISN (the cookie) and the peer's.
        public var localISN: SequenceNumber
        public var remoteISN: SequenceNumber
        public var mss: Int
        public var windowScale: UInt8?
        public var sackPermitted: Bool
        public var timestamps: Bool
        public init(localISN: SequenceNumber, remoteISN: SequenceNumber, mss: Int, windowScale: UInt8?, sackPermitted: Bool, timestamps: Bool) {
            self.localISN = localISN; self.remoteISN = remoteISN; self.mss = mss
            self.windowScale = windowScale; self.sackPermitted = sackPermitted; self.timestamps = timestamps
        }
    }
    public init() { fatalError("tcpcore") }
    public init(key0: UInt64, key1: UInt64) { fatalError("tcpcore") }
    /// The SYN-ACK answering `syn` with a cookie as its ISN (nothing is stored).
    public func synAck(answering syn: TCPSegment, local: SocketAddress, remote: SocketAddress, mss: Int,
                       configuration: TCPConfiguration, now: Int64) -> TCPOutgoingSegment { fatalError("tcpcore") }
    /// The handshake state, if `ack` (ACK set, no SYN/RST) carries a valid cookie from the
    /// last two minutes.
    public func validate(_ ack: TCPSegment, local: SocketAddress, remote: SocketAddress, now: Int64) -> Decoded? { fatalError("tcpcore") }
}
