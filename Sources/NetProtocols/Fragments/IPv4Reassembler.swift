// IPv4Reassembler.swift: IPv4 fragment reassembly with bounded memory, a timeout on a
// caller-supplied clock, and Linux's rules for overlaps; the one stateful piece of Wire.

/// Limits of an `IPv4Reassembler`. The defaults are Linux's where Linux has one.
public struct ReassemblyLimits: Hashable, Sendable {
    /// Datagrams being reassembled at once; a fragment of a new one past this is dropped
    /// (Linux drops new fragments when over `ipfrag_high_thresh` instead of evicting).
    public var maximumDatagrams: Int = 64
    /// Bytes of payload buffered across all datagrams (Linux's `ipfrag_high_thresh`, 4 MiB).
    public var maximumTotalBytes: Int = 4 << 20
    /// Fragments kept per datagram: bounds the work an attacker's 8-byte fragments cause.
    /// Linux has no such count (its rb-tree is O(log n)); a 65535-byte datagram over a
    /// 576-byte path takes 118 fragments of 552 bytes, so 128. A datagram that would
    /// exceed it is dropped whole.
    public var maximumFragmentsPerDatagram: Int = 128
    /// Time from a datagram's first fragment to its drop (Linux's `ipfrag_time`, 30 s).
    public var timeout: Duration = .seconds(30)

    public init() {}
}

/// Identifies the datagram a fragment belongs to (RFC 791: source, destination, protocol,
/// identification).
public struct FragmentKey: Hashable, Sendable {
    public var source: IPv4Address
    public var destination: IPv4Address
    public var `protocol`: IPProtocol
    public var identification: UInt16

    public init(_ packet: IPv4Packet) {
        source = packet.source
        destination = packet.destination
        self.protocol = packet.protocol
        identification = packet.identification
    }
}

/// Why the reassembler dropped a fragment (and sometimes its whole datagram).
public enum ReassemblyDrop: UInt8, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    /// Not a fragment: the caller should not have passed it.
    case notAFragment
    /// A non-final fragment whose length is not a multiple of 8, or an empty one.
    case badOffset
    /// The datagram would exceed 65535 bytes with its first fragment's header. The whole
    /// datagram is dropped.
    case oversize
    /// Fragments disagree on the datagram's end (two last fragments, or data past the last).
    /// The whole datagram is dropped.
    case inconsistentLength
    /// A fragment overlapping another without being contained in it (RFC 5722, which
    /// Linux applies to IPv4 too). The whole datagram is dropped.
    case overlap
    /// A fragment contained in one already received: dropped, the datagram kept.
    case duplicate
    /// No room: too many datagrams, bytes, or fragments of this datagram.
    case overflow
    /// The datagram was not complete within the timeout (counted per datagram).
    case timeout

    public var description: String {
        switch self {
        case .notAFragment: "not a fragment"
        case .badOffset: "bad offset"
        case .oversize: "oversize"
        case .inconsistentLength: "inconsistent length"
        case .overlap: "overlap"
        case .duplicate: "duplicate"
        case .overflow: "overflow"
        case .timeout: "timeout"
        }
    }
}

/// Counters in the manner of Linux's `Ip:` line of /proc/net/snmp.
public struct ReassemblyCounters: Sendable {
    /// Fragments received (`ReasmReqds`).
    public internal(set) var fragments: UInt64 = 0
    /// Datagrams reassembled (`ReasmOKs`).
    public internal(set) var reassembled: UInt64 = 0
    private var drops = InlineArray<8, UInt64>(repeating: 0)

    public init() {}

    /// Drops for one reason; `timeout` counts datagrams, the others fragments.
    public subscript(reason: ReassemblyDrop) -> UInt64 { drops[Int(reason.rawValue)] }

    /// All drops (`ReasmFails` plus duplicates and non-fragments).
    public var dropped: UInt64 { ReassemblyDrop.allCases.reduce(0) { $0 &+ self[$1] } }

    mutating func record(_ reason: ReassemblyDrop) { drops[Int(reason.rawValue)] &+= 1 }
}

/// A datagram put back together.
public struct ReassembledDatagram: Sendable {
    /// The first fragment's header, with the fragment fields cleared and
    /// `payloadLength` set to the whole payload. Its options are not kept.
    public var header: IPv4Header
    /// The whole payload (transport header and data).
    public var payload: [UInt8]
}

/// What became of one fragment.
public enum ReassemblyResult: Sendable {
    /// Kept; the datagram is still missing pieces.
    case incomplete
    /// This fragment completed its datagram.
    case complete(ReassembledDatagram)
    /// Dropped, for the reason given.
    case dropped(ReassemblyDrop)
}

/// Reassembles IPv4 fragments (RFC 791 §3.2, RFC 815).
///
/// Memory: each datagram in progress owns one payload buffer that grows to the highest
/// fragment end seen, and a sorted list of the fragments' ranges; both are allocated per
/// datagram, never for unfragmented packets, and bounded by `ReassemblyLimits`.
///
/// Overlaps follow Linux (`inet_frag_queue_insert`, since 4.19): a fragment lying wholly
/// inside one already received is a duplicate and is dropped alone; any other overlap
/// drops the whole datagram, so overlapping data can never be used to rewrite what a
/// filter has seen. Fragments of a datagram may arrive in any order.
///
/// Time is the caller's: pass the same monotonic clock's reading (nanoseconds, any epoch) as `now`,
/// so tests drive it by hand. A datagram expires `timeout` after its first fragment.
public struct IPv4Reassembler: Sendable {
    struct Datagram: Sendable {
        var firstSeen: Int64
        /// Header of the fragment at offset 0, once it has arrived.
        var header: IPv4Header?
        /// That fragment's header length, options included: the reassembled datagram's.
        var headerLength: Int?
        /// Payload length from the last fragment (MF clear), once it has arrived.
        var length: Int?
        var payload: [UInt8] = []
        /// Ranges of the fragments received, sorted, never overlapping.
        var ranges: [Range<Int>] = []
        var received = 0
    }

    public let limits: ReassemblyLimits
    private static let zeros = [UInt8](repeating: 0, count: IPv4Packet.maximumLength)
    public private(set) var counters = ReassemblyCounters()
    private var datagrams: [FragmentKey: Datagram] = [:]
    private var bufferedBytes = 0
    /// Earliest expiry among `datagrams` (a lower bound; exact after `expire`).
    private var nextExpiry: Int64?

    public init(limits: ReassemblyLimits = ReassemblyLimits()) {
        self.limits = limits
    }

    /// Datagrams in progress.
    public var pending: Int { datagrams.count }
    /// Payload bytes buffered for datagrams in progress.
    public var bytesBuffered: Int { bufferedBytes }

    /// Takes one fragment (a validated packet with MF set or a non-zero offset).
    public mutating func receive(_ packet: IPv4Packet, now: Int64) -> ReassemblyResult {
        expire(now: now)
        guard packet.isFragment else { return drop(.notAFragment) }
        counters.fragments &+= 1
        let key = FragmentKey(packet)
        let start = packet.fragmentOffset
        let data = packet.payload
        let end = start + data.count
        let last = !packet.moreFragments
        // RFC 791: every fragment but the last carries a multiple of 8 bytes. (Linux trims
        // the excess; refusing it is simpler and no conforming sender is affected.)
        guard end > start, last || data.count % 8 == 0 else { return drop(.badOffset) }

        if datagrams[key] == nil {
            guard datagrams.count < limits.maximumDatagrams else { return drop(.overflow) }
            datagrams[key] = Datagram(firstSeen: now)
            let expiry = expiryTime(firstSeen: now)
            if nextExpiry.map({ expiry < $0 }) ?? true { nextExpiry = expiry }
        }
        let outcome = insert(into: key, start: start, end: end, last: last, packet: packet)
        switch outcome {
        case .dropped(let reason) where reason != .duplicate:
            discard(key)
        case .complete:
            datagrams[key] = nil
        default:
            break
        }
        return outcome
    }

    /// When a datagram first seen at `firstSeen` expires (saturating).
    private func expiryTime(firstSeen: Int64) -> Int64 {
        let (e, overflow) = firstSeen.addingReportingOverflow(limits.timeout.nanoseconds)
        return overflow ? .max : e
    }

    /// Drops the datagrams whose time is up.
    /// - Parameters:
    ///   - now: the current time in nanoseconds (the reassembler's clock).
    ///   - expired: called with each one's key and, when its first fragment had
    ///     arrived, its header (to answer with ICMP time exceeded, code 1, as RFC 792 asks).
    public mutating func expire(now: Int64, _ expired: (FragmentKey, IPv4Header?) -> Void = { _, _ in }) {
        guard let due = nextExpiry, now >= due else { return }
        var earliest: Int64?
        for (key, d) in datagrams {
            let expiry = expiryTime(firstSeen: d.firstSeen)
            if now >= expiry {
                expired(key, d.header)
                discard(key)
                counters.record(.timeout)
            } else if earliest.map({ expiry < $0 }) ?? true {
                earliest = expiry
            }
        }
        nextExpiry = earliest
    }

    private mutating func insert(into key: FragmentKey, start: Int, end: Int, last: Bool, packet: IPv4Packet) -> ReassemblyResult {
        var d = datagrams[key]!
        datagrams[key] = nil   // keep `d` uniquely referenced while it is changed
        defer { datagrams[key] = d }

        // The end of the datagram: fixed by the last fragment; nothing may lie past it.
        if last {
            if let length = d.length, length != end { return drop(.inconsistentLength) }
            if let highest = d.ranges.last?.upperBound, highest > end { return drop(.inconsistentLength) }
            d.length = end
        } else if let length = d.length, end > length {
            return drop(.inconsistentLength)
        }

        // The reassembled datagram takes the first fragment's header (Linux's
        // `ip_frag_reasm` refuses one past 65535 bytes with it; refuse it as early).
        let headerLength = start == 0 ? packet.headerLength : (d.headerLength ?? IPv4Header.length)
        guard max(end, d.ranges.last?.upperBound ?? 0) + headerLength <= IPv4Packet.maximumLength else {
            return drop(.oversize)
        }

        // Where it goes among the sorted ranges, and whether it overlaps (Linux's rules).
        var index = d.ranges.count
        for i in d.ranges.indices.reversed() {
            let r = d.ranges[i]
            if start >= r.upperBound { break }
            if end <= r.lowerBound { index = i; continue }
            if start >= r.lowerBound && end <= r.upperBound { return drop(.duplicate) }
            return drop(.overlap)
        }
        guard d.ranges.count < limits.maximumFragmentsPerDatagram else { return drop(.overflow) }
        let growth = max(0, end - d.payload.count)
        guard bufferedBytes + growth <= limits.maximumTotalBytes else { return drop(.overflow) }

        if growth > 0 {
            // Gaps read as zeros until filled; a contiguous source makes this one memcpy.
            d.payload.append(contentsOf: Self.zeros[..<growth])
            bufferedBytes += growth
        }
        d.payload.withUnsafeMutableBytes { buffer in
            UnsafeMutableRawBufferPointer(rebasing: buffer[start..<end]).copyMemory(from: packet.payload)
        }
        d.ranges.insert(start..<end, at: index)
        d.received += end - start
        if start == 0 {
            d.header = IPv4Header(packet)
            d.headerLength = packet.headerLength
        }

        guard let length = d.length, d.received == length, var header = d.header else { return .incomplete }
        header.moreFragments = false
        header.fragmentOffset = 0
        header.payloadLength = length
        bufferedBytes -= d.payload.count
        counters.reassembled &+= 1
        let result = ReassembledDatagram(header: header, payload: d.payload)
        d = Datagram(firstSeen: d.firstSeen)
        return .complete(result)
    }

    private mutating func drop(_ reason: ReassemblyDrop) -> ReassemblyResult {
        counters.record(reason)
        return .dropped(reason)
    }

    private mutating func discard(_ key: FragmentKey) {
        if let d = datagrams.removeValue(forKey: key) { bufferedBytes -= d.payload.count }
    }
}
