// SYNCookies.swift: stateless SYN-ACKs for a listener whose SYN backlog is full, in Linux's
// layout: ISN = H1(4-tuple) + peer ISN + (count << 24) + (H2(4-tuple, count) + MSS index
// mod 2^24), with count a 64-second clock; window scale and SACK-permitted ride in the low
// six bits of our timestamp, which the completing ACK echoes.

extension SYNCookies {
    /// Linux's IPv4 table (msstab): the MSS is rounded down to one of these.
    static let mssTable = [536, 1300, 1440, 1460]
    /// One count per 64 s (Linux: 2^6 s); a cookie is good for this count and the one before.
    static let periodNanoseconds: Int64 = 64_000_000_000
    static let maximumAge: UInt32 = 2
    /// Timestamp bits: the peer's window scale (0xF: none) and SACK-permitted.
    static let timestampOptionBits: UInt32 = 6
    static let noWindowScale: UInt32 = 0xF
    static let sackBit: UInt32 = 1 << 4
}

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

    let key0: UInt64, key1: UInt64

    public init() {
        var rng = SystemRandomNumberGenerator()
        self.init(key0: rng.next(), key1: rng.next())
    }

    public init(key0: UInt64, key1: UInt64) {
        self.key0 = key0
        self.key1 = key1
    }

    /// The SYN-ACK answering `syn` with a cookie as its ISN (nothing is stored).
    public func synAck(answering syn: TCPSegment, local: SocketAddress, remote: SocketAddress, mss: Int,
                       configuration: TCPConfiguration, now: Int64) -> TCPOutgoingSegment {
        let peerMSS = Int(syn.options.maximumSegmentSize ?? 536)
        let effective = min(peerMSS, mss)
        var index = 0
        for (i, m) in Self.mssTable.enumerated() where effective >= m { index = i }
        let count = Self.counter(now)
        let remoteISN = syn.sequenceNumber
        let cookie = hash(local, remote, count: 0, domain: 1) &+ remoteISN.rawValue &+ (count << 24)
            &+ ((hash(local, remote, count: count, domain: 2) &+ UInt32(index)) & 0xFF_FFFF)

        var options = TCPOptions()
        options.maximumSegmentSize = UInt16(clamping: mss)
        let timestamps = configuration.timestamps && syn.options.timestamp != nil
        let windowScale = configuration.windowScaling && syn.options.windowScale != nil
        let sack = configuration.selectiveAcknowledgments && syn.options.sackPermitted
        if windowScale { options.windowScale = TCPConnection.windowScale(forBuffer: configuration.receiveBufferSize) }
        // Without timestamps there is nowhere to keep window scale and SACK: both are off,
        // as on Linux.
        if timestamps, let peerTS = syn.options.timestamp {
            var bits = windowScale ? UInt32(min(syn.options.windowScale!, 14)) : Self.noWindowScale
            if sack { bits |= Self.sackBit }
            let clock = TCPConnection.timestampClock(now)
            let mask: UInt32 = (1 << Self.timestampOptionBits) - 1
            var value = (clock & ~mask) | bits
            if value > clock { value &-= 1 << Self.timestampOptionBits }
            options.timestamp = TCPTimestamp(value: value, echoReply: peerTS.value)
            options.sackPermitted = sack
        } else {
            options.windowScale = nil
        }
        return TCPOutgoingSegment(sequenceNumber: SequenceNumber(cookie), acknowledgmentNumber: remoteISN + 1,
                                  flags: .synACK, window: UInt16(clamping: configuration.receiveBufferSize),
                                  options: options)
    }

    /// The handshake state, if `ack` (ACK set, no SYN/RST) carries a valid cookie from the
    /// last two minutes.
    public func validate(_ ack: TCPSegment, local: SocketAddress, remote: SocketAddress, now: Int64) -> Decoded? {
        guard ack.flags.contains(.ack), ack.flags.isDisjoint(with: .synRST) else { return nil }
        let cookie = (ack.acknowledgmentNumber - 1).rawValue
        let remoteISN = ack.sequenceNumber - 1
        let count = Self.counter(now)
        let rest = cookie &- hash(local, remote, count: 0, domain: 1) &- remoteISN.rawValue
        let age = (count &- (rest >> 24)) & 0xFF
        guard age < Self.maximumAge else { return nil }
        let issued = count &- age
        let index = Int((rest &- hash(local, remote, count: issued, domain: 2)) & 0xFF_FFFF)
        guard index < Self.mssTable.count else { return nil }
        var decoded = Decoded(localISN: SequenceNumber(cookie), remoteISN: remoteISN, mss: Self.mssTable[index],
                              windowScale: nil, sackPermitted: false, timestamps: false)
        if let ts = ack.options.timestamp {
            let bits = ts.echoReply & ((1 << Self.timestampOptionBits) - 1)
            let shift = bits & 0xF
            decoded.timestamps = true
            decoded.windowScale = shift == Self.noWindowScale ? nil : UInt8(min(shift, 14))
            decoded.sackPermitted = bits & Self.sackBit != 0
        }
        return decoded
    }

    static func counter(_ now: Int64) -> UInt32 { UInt32(truncatingIfNeeded: max(now, 0) / periodNanoseconds) }

    private func hash(_ local: SocketAddress, _ remote: SocketAddress, count: UInt32, domain: UInt8) -> UInt32 {
        var h = SipHash24(key0: key0, key1: key1)
        h.add(local.address.rawValue)
        h.add(remote.address.rawValue)
        h.add(UInt32(local.port) << 16 | UInt32(remote.port))
        h.add(count)
        // H1 and H2 are different functions (Linux keys them apart): a domain byte.
        h.add(UInt64(domain), bytes: 1)
        return UInt32(truncatingIfNeeded: h.finalize())
    }
}
