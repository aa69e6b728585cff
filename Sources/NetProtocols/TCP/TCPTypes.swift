// TCPTypes.swift: the values the TCP state machine works with: its states, configuration,
// the segments it takes and the segments it asks to send, its errors and counters.

/// RFC 9293 §3.3.2.
public enum TCPState: String, Sendable, Hashable {
    case closed, listen, synSent, synReceived, established, finWait1, finWait2, closeWait, closing, lastAck, timeWait
}

/// Congestion control (selectable per connection).
public enum CongestionControlAlgorithm: String, Sendable, Hashable, CaseIterable {
    /// RFC 5681 with RFC 6582's recovery (and SACK-based loss recovery, RFC 6675, when SACK is on).
    case newReno = "newreno"
    /// RFC 9438.
    case cubic
}

/// Keepalive knobs (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT), Linux's defaults.
public struct TCPKeepalive: Sendable, Hashable {
    public var enabled = false
    public var idle: Duration = .seconds(7200)
    public var interval: Duration = .seconds(75)
    public var probes = 9
    public init() {}
}

/// How a connection behaves. Defaults follow Linux where it has a knob.
public struct TCPConfiguration: Sendable, Hashable {
    /// Receive buffer (the advertised window's ceiling), bytes (SO_RCVBUF).
    public var receiveBufferSize = 256 * 1024
    /// Send buffer, bytes (SO_SNDBUF).
    public var sendBufferSize = 256 * 1024
    public var congestionControl: CongestionControlAlgorithm = .cubic
    /// TCP_NODELAY: no Nagle.
    public var noDelay = false
    /// TCP_CORK: only full segments go out; a FIN, the persist timer (one RTO, at least
    /// 200 ms: Linux's cork ceiling) or uncorking sends a short one.
    public var cork = false
    public var keepalive = TCPKeepalive()
    /// Offer and use these options (RFC 7323, RFC 2018).
    public var windowScaling = true
    public var timestamps = true
    public var selectiveAcknowledgments = true
    /// RFC 6298 bounds; Linux's minimum is 200 ms (RFC 6298 says 1 s; datacenters go lower).
    public var minimumRTO: Duration = .milliseconds(200)
    public var maximumRTO: Duration = .seconds(120)
    public var initialRTO: Duration = .seconds(1)
    /// Delayed ACK timeout (Linux: 40 ms minimum); at most every second full segment waits.
    public var delayedACKTimeout: Duration = .milliseconds(40)
    /// TIME_WAIT length (2 MSL; Linux uses 60 s).
    public var timeWaitDuration: Duration = .seconds(60)
    /// FIN_WAIT_2 after close() (Linux's tcp_fin_timeout).
    public var finWait2Timeout: Duration = .seconds(60)
    /// SYN retransmissions before connect fails (tcp_syn_retries), SYN-ACK ones (tcp_synack_retries).
    public var synRetries = 6
    public var synAckRetries = 5
    /// Data retransmissions before the connection is dropped (tcp_retries2).
    public var maximumRetransmissions = 15
    /// Initial congestion window in segments (RFC 6928).
    public var initialWindowSegments = 10
    /// RFC 5681 §4.1: after an idle period longer than the RTO, restart from the initial
    /// window (Linux's tcp_slow_start_after_idle, on by default).
    public var slowStartAfterIdle = true
    /// Bytes of out-of-order data held at most (beyond it, segments are dropped and counted).
    public var outOfOrderLimit = 256 * 1024
    /// SO_LINGER: nil = close returns at once and the FIN goes in the background;
    /// .zero = close aborts with RST; otherwise the socket layer waits this long.
    public var linger: Duration? = nil
    public init() {}
}

/// A segment that arrived, parsed (its payload valid only during the call that takes it).
public struct TCPSegment {
    public var sequenceNumber: SequenceNumber
    public var acknowledgmentNumber: SequenceNumber
    public var flags: TCPFlags
    /// The window field as received (not yet scaled).
    public var window: UInt16
    public var options: TCPOptions
    public var payload: UnsafeRawBufferPointer

    public init(sequenceNumber: SequenceNumber, acknowledgmentNumber: SequenceNumber, flags: TCPFlags, window: UInt16,
                options: TCPOptions = TCPOptions(), payload: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.options = options
        self.payload = payload
    }

    public init(_ view: TCPSegmentView) {
        self.init(sequenceNumber: view.sequenceNumber, acknowledgmentNumber: view.acknowledgmentNumber, flags: view.flags,
                  window: view.window, options: view.options, payload: view.payload)
    }

    /// Sequence space the segment occupies (payload, plus one each for SYN and FIN).
    public var sequenceLength: Int { payload.count + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0) }
}

/// A segment the state machine wants sent. Its payload is `payloadLength` bytes of the
/// send buffer starting at `sequenceNumber` (past the SYN, when it has one): the caller
/// copies them with ``TCPConnection/copyPayload(of:into:)``.
public struct TCPOutgoingSegment: Hashable, Sendable {
    public var sequenceNumber: SequenceNumber
    public var acknowledgmentNumber: SequenceNumber
    public var flags: TCPFlags
    /// The window field to send (already scaled down).
    public var window: UInt16
    public var options: TCPOptions
    public var payloadLength: Int

    public init(sequenceNumber: SequenceNumber, acknowledgmentNumber: SequenceNumber, flags: TCPFlags, window: UInt16,
                options: TCPOptions = TCPOptions(), payloadLength: Int = 0) {
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.options = options
        self.payloadLength = payloadLength
    }

    /// The header for these ports.
    public func header(sourcePort: UInt16, destinationPort: UInt16) -> TCPHeader {
        TCPHeader(sourcePort: sourcePort, destinationPort: destinationPort, sequenceNumber: sequenceNumber,
                  acknowledgmentNumber: acknowledgmentNumber, flags: flags, window: window, options: options)
    }
}

/// Why a connection ended or a call on it failed.
public enum TCPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// RST in answer to our SYN (ECONNREFUSED).
    case refused
    /// RST on a synchronized connection (ECONNRESET; EPIPE for a write after it).
    case reset
    /// Retransmissions, SYN retries or keepalive probes ran out (ETIMEDOUT).
    case timedOut
    /// An ICMP host (or other) unreachable ended the connection attempt (EHOSTUNREACH).
    case unreachable
    /// An ICMP network unreachable ended the connection attempt (ENETUNREACH).
    case networkUnreachable
    /// The application aborted it.
    case aborted
    /// Write after shutdown(SHUT_WR) or close (EPIPE).
    case writeClosed
    /// Call in a state that does not allow it (ENOTCONN).
    case notConnected

    public var description: String {
        switch self {
        case .refused: "connection refused"
        case .reset: "connection reset by peer"
        case .timedOut: "connection timed out"
        case .unreachable: "host unreachable"
        case .networkUnreachable: "network unreachable"
        case .aborted: "connection aborted"
        case .writeClosed: "the connection is shut down for writing"
        case .notConnected: "not connected"
        }
    }
}

/// What a connection is ready for (the socket layer turns it into epoll events).
public struct TCPReadiness: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Data, end of stream, or an error to read.
    @inlinable public static var readable: TCPReadiness { TCPReadiness(rawValue: 1) }
    /// Send-buffer space (and the connection is established or closing the other way).
    @inlinable public static var writable: TCPReadiness { TCPReadiness(rawValue: 2) }
    @inlinable public static var error: TCPReadiness { TCPReadiness(rawValue: 4) }
    /// Both directions are done (EPOLLHUP).
    @inlinable public static var hangUp: TCPReadiness { TCPReadiness(rawValue: 8) }
    /// The peer's FIN arrived (EPOLLRDHUP).
    @inlinable public static var readHangUp: TCPReadiness { TCPReadiness(rawValue: 16) }
}

/// Counters of one connection (and, summed, of a stack).
public struct TCPStatistics: Sendable, Hashable {
    public var segmentsReceived: UInt64 = 0
    public var segmentsSent: UInt64 = 0
    public var bytesReceived: UInt64 = 0
    public var bytesSent: UInt64 = 0
    /// Segments sent again, for any reason: the sum of ``timeoutRetransmits``,
    /// ``fastRetransmits`` and ``sackRetransmits``.
    public var retransmittedSegments: UInt64 = 0
    /// Retransmission timeouts.
    public var timeouts: UInt64 = 0
    /// Segments sent again after a timeout (SYN, SYN-ACK, and data from SND.UNA on).
    public var timeoutRetransmits: UInt64 = 0
    /// Segments sent again on the third duplicate ACK, or on a NewReno partial ACK.
    public var fastRetransmits: UInt64 = 0
    /// Recovery episodes entered (fast recovery).
    public var recoveries: UInt64 = 0
    /// Segments retransmitted because SACK showed a hole.
    public var sackRetransmits: UInt64 = 0
    public var duplicateACKsReceived: UInt64 = 0
    /// Segments that arrived beyond rcv.nxt and were kept.
    public var outOfOrderSegments: UInt64 = 0
    /// Segments (or parts) already received.
    public var duplicateSegments: UInt64 = 0
    /// Dropped: out-of-order memory full, outside the window, failed RFC 5961 checks.
    public var droppedSegments: UInt64 = 0
    /// Challenge ACKs sent (RFC 5961).
    public var challengeACKs: UInt64 = 0
    public var resetsSent: UInt64 = 0
    public var resetsReceived: UInt64 = 0
    public var zeroWindowProbes: UInt64 = 0
    public var keepaliveProbes: UInt64 = 0
    public var delayedACKs: UInt64 = 0
    /// Window updates: ACKs sent because the application's reads opened the window.
    public var windowUpdates: UInt64 = 0
    public init() {}
}

/// A snapshot of a connection's control state (like Linux's TCP_INFO).
public struct TCPInfo: Sendable, Hashable {
    public var state: TCPState
    public var smoothedRTT: Duration?
    public var rttVariance: Duration?
    public var rto: Duration
    /// Congestion window and slow-start threshold, bytes.
    public var congestionWindow: Int
    public var slowStartThreshold: Int
    /// Effective send MSS.
    public var maximumSegmentSize: Int
    /// The peer's window, bytes (scaled).
    public var peerWindow: Int
    public var bytesInFlight: Int
    public var sendWindowScale: Int
    public var receiveWindowScale: Int
    public var sackEnabled: Bool
    public var timestampsEnabled: Bool
    public var congestionControl: CongestionControlAlgorithm
    public var statistics: TCPStatistics
    public init(state: TCPState, smoothedRTT: Duration?, rttVariance: Duration?, rto: Duration, congestionWindow: Int,
                slowStartThreshold: Int, maximumSegmentSize: Int, peerWindow: Int, bytesInFlight: Int, sendWindowScale: Int,
                receiveWindowScale: Int, sackEnabled: Bool, timestampsEnabled: Bool,
                congestionControl: CongestionControlAlgorithm, statistics: TCPStatistics) {
        self.state = state; self.smoothedRTT = smoothedRTT; self.rttVariance = rttVariance; self.rto = rto
        self.congestionWindow = congestionWindow; self.slowStartThreshold = slowStartThreshold
        self.maximumSegmentSize = maximumSegmentSize; self.peerWindow = peerWindow; self.bytesInFlight = bytesInFlight
        self.sendWindowScale = sendWindowScale; self.receiveWindowScale = receiveWindowScale; self.sackEnabled = sackEnabled
        self.timestampsEnabled = timestampsEnabled; self.congestionControl = congestionControl; self.statistics = statistics
    }
}
