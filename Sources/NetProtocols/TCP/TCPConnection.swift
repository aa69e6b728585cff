// TCPConnection.swift: one connection's control block and its public surface. It takes
// parsed segments and application calls, and says what to send; it never touches a
// device, a lock or a clock of its own (time comes in as `now`, nanoseconds). Segment
// arrival is in Input.swift, what to send in Output.swift, timers in Timers.swift.

/// One TCP connection (RFC 9293), as a state machine.
///
/// The network side: ``input(_:now:)`` for each arriving segment, then
/// ``nextSegment(now:)`` until it returns nil, copying each segment's payload with
/// ``copyPayload(of:into:)``; ``handleTimers(now:)`` at ``nextDeadline`` (then
/// ``nextSegment(now:)`` again). The application side: ``send(_:)``, ``receive(into:)``,
/// ``shutdownWrite()``, ``close()``, ``abort()``, after each of which the caller drains
/// ``nextSegment(now:)``. A connection whose ``isFinished`` is true can be dropped.
///
/// A connection that ends with a RST (``abort()``, ``close()`` with unread data, data after
/// ``close()``, keepalive giving up) is CLOSED at once but still hands out that RST from
/// ``nextSegment(now:)``; ``isFinished`` turns true only after it. Segments reaching a
/// CLOSED connection are ignored: once it is dropped, the owner answers them with
/// ``reset(answering:)``. A SYN in TIME-WAIT gets a challenge ACK here (RFC 5961); reusing
/// the 4-tuple for a new connection is the owner's decision.
public struct TCPConnection: ~Copyable {
    public let local: SocketAddress
    public let remote: SocketAddress

    var configuration: TCPConfiguration
    @usableFromInline var current: TCPState
    @usableFromInline var error: TCPError?
    /// Whether we sent the first SYN (an RST in SYN-RECEIVED then means "refused").
    let activeOpen: Bool

    // MARK: send sequence space (RFC 9293 §3.3.1)
    let iss: SequenceNumber
    var sndUna: SequenceNumber
    /// Next sequence number to send; moved back to SND.UNA by a timeout (go-back-N).
    var sndNxt: SequenceNumber
    /// Highest sequence number sent (SND.NXT before any timeout moved it back).
    var sndMax: SequenceNumber
    /// The peer's window, scaled, and the segment that last set it.
    var sndWnd = 0
    var sndWl1 = SequenceNumber(0), sndWl2 = SequenceNumber(0)
    /// Largest window the peer has offered (sender SWS avoidance, RFC 5961 ACK check).
    var maxSndWnd = 0
    /// Sequence number of the send buffer's first byte.
    var sendBufferSeq: SequenceNumber

    // MARK: receive sequence space
    var irs = SequenceNumber(0)
    package var rcvNxt = SequenceNumber(0)
    /// Right edge of the window last advertised (never moved left, RFC 9293 §3.8.6.2.2).
    var rcvAdv = SequenceNumber(0)
    /// RCV.NXT as last acknowledged (RFC 7323's Last.ACK.sent).
    var lastAckSent = SequenceNumber(0)

    // MARK: negotiated options
    /// The MSS we advertise and the ceiling of what we send.
    let localMSS: Int
    /// The peer's MSS (536 when it sent none, RFC 9293 §3.7.1).
    var peerMSS = 536
    /// Largest payload of one new data segment when the device cuts segments at the MTU
    /// (TSO, ``dataSegment(now:)``); 0 or less than a segment: one segment's worth. Used
    /// only while the peer's MSS is at least ours, since the device cuts at our MTU.
    public var segmentationOffload = 0
    var sendWindowShift = 0
    /// Both SYNs carried the window-scale option (RFC 7323 §2.2).
    var windowScalingNegotiated = false
    var receiveWindowShift = 0
    var sackEnabled = false
    var timestampsEnabled = false
    /// RFC 7323 §4.3 TS.Recent.
    var tsRecent: UInt32 = 0
    /// Largest in-order payload seen (the receiver's idea of a full-sized segment).
    var receiveMSS: Int

    // MARK: buffers (each owns its memory and frees it when the connection goes)
    var sendBuffer: SendBuffer
    var receiveBuffer: ReceiveBuffer
    var scoreboard = SACKScoreboard()

    // MARK: closing
    /// shutdownWrite or close was called: a FIN follows the queued data.
    var finQueued = false
    /// close() was called: data that arrives now is answered with RST.
    var userClosed = false
    var finReceived = false
    /// The sequence number of a FIN that arrived ahead of a hole.
    var pendingFIN: SequenceNumber?
    /// A RST to send next (sequence number, and whether it acknowledges RCV.NXT).
    @usableFromInline var resetToSend: (seq: SequenceNumber, ack: Bool)?

    // MARK: acknowledgments
    var ackNow = false
    var delayedACKDeadline: Int64?
    /// Request/response (Linux's ping-pong mode): our last data segment carried an ACK
    /// the peer was waiting for, or went within the delayed-ACK timeout of the last data
    /// we received (Linux's tcp_event_data_sent); an application read then leaves the
    /// delayed ACK to ride on the answer. Cleared when the delayed-ACK timer fires.
    var interactive = false
    /// When data last arrived in order (far in the past before any).
    var lastDataReceiveTime = Int64.min / 2
    /// `configuration.delayedACKTimeout` in nanoseconds (converting a Duration costs
    /// 128-bit arithmetic; this is read for every data segment).
    let delayedACKNanoseconds: Int64
    /// The end of the last short (sub-MSS) segment sent: Nagle holds a short segment only
    /// while an earlier short one is unacknowledged (Minshall's rule, as Linux).
    var lastShortEnd = SequenceNumber(0)
    /// A D-SACK block for the next ACK (RFC 2883).
    var duplicateReport: SACKBlock?
    /// In-order payload received since our last ACK.
    var unacknowledgedBytes = 0
    /// RFC 5961 §7 rate limit: challenge ACKs sent in the current one-second slot.
    var challengeACKsInSlot = 0
    var challengeSlotStart: Int64?

    // MARK: retransmission and congestion
    var rtt: RTTEstimator
    var retransmitDeadline: Int64?
    /// Consecutive timeouts of the oldest outstanding segment.
    var retransmitCount = 0
    /// A simultaneous open turned our SYN into a SYN-ACK still to send.
    var simultaneousOpen = false
    /// The SYN or SYN-ACK had to be sent again.
    var handshakeRetransmitted = false
    /// When the retransmission timer last fired.
    var lastTimeout: Int64 = .min
    /// The timestamp clock when the retransmission timer last fired, until an ACK echoes a
    /// later one: an older echo gives no RTT sample (see `newlyAcknowledged`).
    var timeoutTimestamp: UInt32?
    /// The end of data a timeout sent past the peer's window (into a zero or too small
    /// window, RFC 9293 §3.8.6.1): the peer dropped what did not fit, so once the window
    /// opens it is sent again at once rather than after another (backed-off) timeout.
    var sentPastWindow: SequenceNumber?
    /// Karn's algorithm without timestamps: the sequence number whose ACK ends the timed
    /// segment, and when it was sent (nil: nothing timed).
    var timedSequence: SequenceNumber?
    var timedAt: Int64 = 0
    var congestion: CongestionController
    var duplicateACKs = 0
    var inRecovery = false
    /// RFC 6582 `recover` / RFC 6675 RecoveryPoint.
    var recover: SequenceNumber
    /// RFC 6675 HighRxt: the highest sequence number retransmitted in this recovery.
    var highRxt: SequenceNumber
    /// Retransmit the first unacknowledged segment next (fast retransmit, partial ACK).
    var retransmitFirstPending = false
    var lastSendTime: Int64
    var lastReceiveTime: Int64

    // MARK: persist and keepalive
    var persistDeadline: Int64?
    var persistBackoff = 0
    /// A zero-window probe or keepalive probe to send next.
    var probePending = false
    /// The persist timer fired with a small window: send even below the SWS threshold.
    var forceSend = false
    var keepaliveProbesSent = 0
    var lastKeepaliveProbe: Int64 = 0

    /// TIME-WAIT's end, or FIN-WAIT-2's after close().
    var lifetimeDeadline: Int64?

    var statistics = TCPStatistics()

    /// The connection with nothing negotiated yet; the public initializers finish it.
    init(local: SocketAddress, remote: SocketAddress, isn: SequenceNumber, mss: Int, configuration: TCPConfiguration,
         state: TCPState, activeOpen: Bool, now: Int64) {
        self.local = local
        self.remote = remote
        self.configuration = configuration
        current = state
        self.activeOpen = activeOpen
        iss = isn
        sndUna = isn
        sndNxt = isn
        sndMax = isn
        sendBufferSeq = isn + 1
        recover = isn
        highRxt = isn
        localMSS = max(mss, 64)
        receiveMSS = min(localMSS, 536)
        sendBuffer = SendBuffer(capacity: configuration.sendBufferSize)
        // One scaling unit of slack (see ReceiveBuffer.slack); the shift is a function of
        // the buffer size, so it is known before the handshake says whether scaling is on.
        receiveBuffer = ReceiveBuffer(capacity: configuration.receiveBufferSize,
                                      slack: configuration.windowScaling ? 1 << Int(Self.windowScale(forBuffer: configuration.receiveBufferSize)) : 0)
        rtt = RTTEstimator(initial: configuration.initialRTO.nanoseconds, minimum: configuration.minimumRTO.nanoseconds,
                           maximum: configuration.maximumRTO.nanoseconds)
        congestion = CongestionController(configuration.congestionControl,
                                          initialWindow: configuration.initialWindowSegments * min(localMSS, 536))
        lastSendTime = now
        lastReceiveTime = now
        delayedACKNanoseconds = configuration.delayedACKTimeout.nanoseconds
    }

    /// Active open: the first ``nextSegment(now:)`` is the SYN (state SYN-SENT).
    /// - Parameters:
    ///   - isn: from ``ISNGenerator``.
    ///   - local: this end's address and port.
    ///   - remote: the peer's address and port.
    ///   - mss: largest payload the route carries (device MTU − 40); the MSS we advertise
    ///     and the ceiling of what we send.
    ///   - configuration: buffers, window scaling, congestion control and timers.
    ///   - now: the current time in nanoseconds (the connection's clock).
    public init(connectingFrom local: SocketAddress, to remote: SocketAddress, isn: SequenceNumber, mss: Int,
                configuration: TCPConfiguration, now: Int64) {
        self.init(local: local, remote: remote, isn: isn, mss: mss, configuration: configuration, state: .synSent,
                  activeOpen: true, now: now)
        if configuration.windowScaling { receiveWindowShift = Int(Self.windowScale(forBuffer: configuration.receiveBufferSize)) }
    }

    /// Passive open from a SYN that reached a listener: state SYN-RECEIVED, the first
    /// ``nextSegment(now:)`` is the SYN-ACK. Nil when `syn` is not an acceptable SYN
    /// (no SYN bit, ACK or RST set). Data on the SYN is not kept (no TCP Fast Open).
    public init?(acceptingSYN syn: TCPSegment, local: SocketAddress, remote: SocketAddress, isn: SequenceNumber,
                 mss: Int, configuration: TCPConfiguration, now: Int64) {
        guard syn.flags.contains(.syn), syn.flags.isDisjoint(with: .ackRSTFIN) else { return nil }
        self.init(local: local, remote: remote, isn: isn, mss: mss, configuration: configuration, state: .synReceived,
                  activeOpen: false, now: now)
        acceptPeerSYN(syn, now: now)
    }

    /// A connection rebuilt from the ACK that completes a SYN-cookie handshake
    /// (state ESTABLISHED; window scaling and SACK as the cookie recorded them). Data and
    /// FIN on the ACK are processed as by ``input(_:now:)``.
    public init(cookieACK ack: TCPSegment, cookie: SYNCookies.Decoded, local: SocketAddress, remote: SocketAddress,
                mss: Int, configuration: TCPConfiguration, now: Int64) {
        self.init(local: local, remote: remote, isn: cookie.localISN, mss: mss, configuration: configuration,
                  state: .established, activeOpen: false, now: now)
        irs = cookie.remoteISN
        rcvNxt = irs + 1
        lastAckSent = rcvNxt
        sndUna = iss + 1
        sndNxt = sndUna
        sndMax = sndUna
        recover = sndUna
        highRxt = sndUna
        peerMSS = cookie.mss
        if let shift = cookie.windowScale, configuration.windowScaling {
            windowScalingNegotiated = true
            sendWindowShift = Int(shift)
            receiveWindowShift = Int(Self.windowScale(forBuffer: configuration.receiveBufferSize))
        }
        sackEnabled = cookie.sackPermitted && configuration.selectiveAcknowledgments
        timestampsEnabled = cookie.timestamps && configuration.timestamps
        if timestampsEnabled, let ts = ack.options.timestamp { tsRecent = ts.value }
        // The SYN-ACK offered the unscaled window (at most 64 KiB).
        rcvAdv = rcvNxt + min(configuration.receiveBufferSize, 65535)
        negotiated()
        sndWnd = Int(ack.window) << sendWindowShift
        maxSndWnd = sndWnd
        sndWl1 = ack.sequenceNumber
        sndWl2 = ack.acknowledgmentNumber
        if ack.sequenceLength > 0 { input(ack, now: now) }
    }

    /// The smallest shift that lets `size` bytes be advertised in 16 bits (RFC 7323 §2.3, at most 14).
    static func windowScale(forBuffer size: Int) -> UInt8 {
        var shift: UInt8 = 0
        while shift < 14 && (65535 << Int(shift)) < size { shift += 1 }
        return shift
    }

    /// Our timestamp clock (RFC 7323 §5.4): milliseconds of `now`.
    static func timestampClock(_ now: Int64) -> UInt32 { UInt32(truncatingIfNeeded: now / 1_000_000) }

    /// Largest payload per segment: the smaller MSS, less the timestamp option (RFC 9293 §3.7.1, RFC 7323).
    var sendMSS: Int { max(min(peerMSS, localMSS) - (timestampsEnabled ? 12 : 0), 1) }

    /// Whether a SYN has been exchanged both ways.
    var isSynchronized: Bool {
        switch current {
        case .closed, .listen, .synSent, .synReceived: false
        default: true
        }
    }

    /// Sequence number after the last byte of queued data (where the FIN goes).
    var dataEnd: SequenceNumber { sendBufferSeq + sendBuffer.count }

    /// Whether our FIN has been sent (it is at `dataEnd`).
    var finSent: Bool { finQueued && sndMax > dataEnd }

    // MARK: observation

    @inlinable
    public var state: TCPState { current }

    /// The error that ended the connection (or the last soft error), until it is taken.
    @inlinable
    public var pendingError: TCPError? { error }

    /// Returns and clears the pending error (SO_ERROR).
    public mutating func takeError() -> TCPError? {
        defer { error = nil }
        return error
    }

    public var readiness: TCPReadiness {
        var r: TCPReadiness = []
        if receiveBuffer.count > 0 || finReceived || error != nil || current == .closed { r.insert(.readable) }
        if error != nil { r.insert(.error) }
        if finReceived { r.insert(.readHangUp) }
        if current == .closed || (finReceived && finQueued) { r.insert(.hangUp) }
        switch current {
        case .established, .closeWait:
            if !finQueued && sendBuffer.free > 0 { r.insert(.writable) }
        case .closed:
            // A writer must wake to learn the connection is gone (Linux sets EPOLLOUT too).
            r.insert(.writable)
        default: break
        }
        return r
    }

    /// Bytes ready for ``receive(into:)``.
    public var readableBytes: Int { receiveBuffer.count }

    /// Send-buffer space free now.
    public var writableSpace: Int {
        switch current {
        case .synSent, .synReceived, .established, .closeWait: finQueued ? 0 : sendBuffer.free
        default: 0
        }
    }

    /// Nothing more to do: closed, or TIME_WAIT over. The owner may free it.
    @inlinable
    public var isFinished: Bool { current == .closed && resetToSend == nil }

    /// The earliest time ``handleTimers(now:)`` has work (retransmission, delayed ACK,
    /// persist, keepalive, TIME_WAIT, FIN_WAIT_2), or nil.
    public var nextDeadline: Int64? {
        Self.earliest(Self.earliest(Self.earliest(retransmitDeadline, delayedACKDeadline),
                                    Self.earliest(persistDeadline, keepaliveDeadline)), lifetimeDeadline)
    }

    @inline(__always)
    private static func earliest(_ a: Int64?, _ b: Int64?) -> Int64? {
        guard let a else { return b }
        guard let b else { return a }
        return min(a, b)
    }

    public var info: TCPInfo {
        TCPInfo(state: current, smoothedRTT: rtt.smoothed.map { .nanoseconds($0) },
                rttVariance: rtt.smoothed == nil ? nil : .nanoseconds(rtt.variance), rto: .nanoseconds(rtt.rto),
                congestionWindow: congestion.congestionWindow, slowStartThreshold: congestion.slowStartThreshold,
                maximumSegmentSize: sendMSS, peerWindow: sndWnd, bytesInFlight: sndMax - sndUna,
                sendWindowScale: sendWindowShift, receiveWindowScale: receiveWindowShift, sackEnabled: sackEnabled,
                timestampsEnabled: timestampsEnabled, congestionControl: congestion.algorithm, statistics: statistics)
    }

    // Options that may change after creation.
    public var noDelay: Bool {
        get { configuration.noDelay }
        set { configuration.noDelay = newValue }
    }
    public var cork: Bool {
        get { configuration.cork }
        set { configuration.cork = newValue }
    }
    public var keepalive: TCPKeepalive {
        get { configuration.keepalive }
        set {
            configuration.keepalive = newValue
            keepaliveProbesSent = 0
        }
    }

    // MARK: application side

    /// Copies as much of `bytes` into the send buffer as fits. Returns the bytes taken (0
    /// when the buffer is full).
    /// - Throws: ``TCPError/writeClosed`` after shutdown or close, the pending error on a
    ///   dead connection, ``TCPError/notConnected`` before the handshake started.
    public mutating func send(_ bytes: UnsafeRawBufferPointer) throws(TCPError) -> Int {
        switch current {
        case .listen: throw .notConnected
        case .closed:
            // Linux: the pending error once (and it is consumed), then EPIPE.
            if let e = takeError() { throw e }
            throw .writeClosed
        case .synSent, .synReceived, .established, .closeWait:
            if finQueued { throw .writeClosed }
            return sendBuffer.append(bytes)
        case .finWait1, .finWait2, .closing, .lastAck, .timeWait:
            throw .writeClosed
        }
    }

    /// Copies received in-order bytes out. Returns the count; 0 means end of stream (the
    /// peer's FIN was read) when `buffer` is not empty; nil means nothing yet.
    /// - Throws: the pending error (``TCPError/reset``...) once the data before it is read.
    public mutating func receive(into buffer: UnsafeMutableRawBufferPointer) throws(TCPError) -> Int? {
        if buffer.isEmpty { return 0 }
        if receiveBuffer.count > 0 {
            let n = receiveBuffer.read(into: buffer)
            windowOpened()
            return n
        }
        if finReceived { return 0 }
        if let e = takeError() { throw e }
        switch current {
        case .closed: return 0
        case .listen: throw .notConnected
        default: return nil
        }
    }

    /// Like ``receive(into:)`` but leaves the bytes (MSG_PEEK).
    public func peek(into buffer: UnsafeMutableRawBufferPointer) -> Int { receiveBuffer.peek(into: buffer) }

    /// shutdown(SHUT_WR): a FIN after the queued data.
    public mutating func shutdownWrite() {
        guard !finQueued else { return }
        switch current {
        case .synSent, .listen:
            // Nothing was sent that a FIN could follow; the connection simply ends.
            current = .closed
        case .synReceived:
            // RFC 9293 §3.10.4: the FIN waits for ESTABLISHED (see `enterEstablished`).
            finQueued = true
        case .established:
            finQueued = true
            current = .finWait1
        case .closeWait:
            finQueued = true
            current = .lastAck
        default: break
        }
    }

    /// close(): shutdownWrite, and data arriving afterwards (or unread now) is answered
    /// with RST, as Linux does. Closing a LISTEN/SYN-SENT connection ends it at once.
    public mutating func close() {
        guard !userClosed else { return }
        userClosed = true
        switch current {
        case .closed, .timeWait: return
        case .listen, .synSent:
            enterClosed()
            return
        default: break
        }
        // Linux (tcp_close): unread data, or SO_LINGER with a zero timeout, aborts.
        if receiveBuffer.count > 0 || configuration.linger == .zero {
            receiveBuffer.removeAll()
            queueReset()
            enterClosed()
            return
        }
        shutdownWrite()
    }

    /// abort(): RST (when synchronized) and CLOSED at once; pending error ``TCPError/aborted``.
    public mutating func abort() {
        switch current {
        case .closed, .listen: break
        case .synSent, .timeWait: enterClosed()
        default:
            queueReset()
            enterClosed()
        }
        receiveBuffer.removeAll()
        if error == nil { error = .aborted }
    }

    /// An ICMP destination unreachable about a segment of ours, without its code: taken
    /// as host unreachable.
    public mutating func icmpUnreachable(now: Int64) {
        icmpUnreachable(.host, now: now)
    }

    /// An ICMP destination unreachable about a segment of ours (RFC 1122 §4.2.3.9): during
    /// the handshake it ends the attempt (a hard error, as Linux's tcp_v4_err treats it);
    /// afterwards it is a soft error, reported by SO_ERROR while the connection goes on.
    /// The error is Linux's icmp_err_convert: port or protocol unreachable is a refusal
    /// (ECONNREFUSED), network unreachable ENETUNREACH, the rest EHOSTUNREACH.
    /// Fragmentation needed is path MTU discovery's business, not an error.
    public mutating func icmpUnreachable(_ code: ICMPUnreachableCode, now: Int64) {
        guard code != .fragmentationNeeded else { return }
        let e: TCPError = switch code {
        case .port, .protocol: .refused
        case .network: .networkUnreachable
        default: .unreachable
        }
        switch current {
        case .synSent, .synReceived:
            error = e
            enterClosed()
        case .closed: break
        default:
            if error == nil { error = e }
        }
    }

    /// Copies `segment`'s payload from the send buffer into `buffer` (at least
    /// `segment.payloadLength` bytes).
    public func copyPayload(of segment: TCPOutgoingSegment, into buffer: UnsafeMutableRawBufferPointer) {
        guard segment.payloadLength > 0 else { return }
        let offset = segment.sequenceNumber - sendBufferSeq
        sendBuffer.copy(offset: offset, length: segment.payloadLength, into: buffer)
    }

    /// The RST to answer a segment that matches no connection (RFC 9293 §3.10.7.1), or nil
    /// (a RST is never answered).
    public static func reset(answering segment: TCPSegment) -> TCPOutgoingSegment? {
        guard !segment.flags.contains(.rst) else { return nil }
        if segment.flags.contains(.ack) {
            return TCPOutgoingSegment(sequenceNumber: segment.acknowledgmentNumber, acknowledgmentNumber: SequenceNumber(0),
                                      flags: .rst, window: 0)
        }
        return TCPOutgoingSegment(sequenceNumber: SequenceNumber(0),
                                  acknowledgmentNumber: segment.sequenceNumber + segment.sequenceLength,
                                  flags: .rstACK, window: 0)
    }

    // MARK: shared transitions

    /// Ends the connection: CLOSED, buffers and timers dropped (a queued RST still goes).
    mutating func enterClosed() {
        current = .closed
        retransmitDeadline = nil
        delayedACKDeadline = nil
        persistDeadline = nil
        lifetimeDeadline = nil
        ackNow = false
        probePending = false
        retransmitFirstPending = false
        sendBuffer.removeAll()
        scoreboard.removeAll()
    }

    /// A RST at SND.NXT (RFC 9293 §3.10.4 ABORT, §3.10.7.4 for data after close).
    mutating func queueReset() {
        resetToSend = (SequenceNumber.max(sndNxt, sndMax), false)
    }
}

extension TCPFlags {
    // Combinations as constants: an array literal of an OptionSet builds an Array first,
    // which unoptimized builds allocate on every segment.
    static let synACK = TCPFlags(rawValue: TCPFlags.syn.rawValue | TCPFlags.ack.rawValue)
    static let rstACK = TCPFlags(rawValue: TCPFlags.rst.rawValue | TCPFlags.ack.rawValue)
    static let synFIN = TCPFlags(rawValue: TCPFlags.syn.rawValue | TCPFlags.fin.rawValue)
    static let synRST = TCPFlags(rawValue: TCPFlags.syn.rawValue | TCPFlags.rst.rawValue)
    static let ackRSTFIN = TCPFlags(rawValue: TCPFlags.ack.rawValue | TCPFlags.rst.rawValue | TCPFlags.fin.rawValue)
}

extension Duration {
    /// The duration in nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (s, a) = components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (s < 0 ? .min : .max) : ns &+ a / 1_000_000_000
    }
}
