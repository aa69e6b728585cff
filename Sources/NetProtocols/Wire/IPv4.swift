// IPv4.swift: IPv4 headers (RFC 791): validation, the header checksum, options skipped,
// fragment fields read (reassembly is Fragments/IPv4Reassembler.swift).

/// The IPv4 protocol field.
public struct IPProtocol: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public static var icmp: IPProtocol { IPProtocol(rawValue: 1) }
    @inlinable public static var tcp: IPProtocol { IPProtocol(rawValue: 6) }
    @inlinable public static var udp: IPProtocol { IPProtocol(rawValue: 17) }
    public var description: String {
        switch self {
        case .icmp: "ICMP"
        case .tcp: "TCP"
        case .udp: "UDP"
        default: "protocol \(rawValue)"
        }
    }
}

/// A zero-copy view of an IPv4 packet, checked once.
///
/// Validation follows Linux's `ip_rcv_core`: at least 20 bytes, version 4, IHL ≥ 5, the
/// header within the buffer, total length ≥ the header (`totalLengthInconsistent`) and
/// ≤ the buffer (`truncated`), the header checksum, and (beyond Linux, which checks it
/// at reassembly) a fragment that would end past 65535 bytes. `bytes` is trimmed to the
/// total length, so Ethernet padding is gone. Options are kept in `options`, not parsed.
public struct IPv4Packet {
    enum Offset {
        static let versionIHL = 0, tos = 1, totalLength = 2, identification = 4, flagsFragment = 6
        static let ttl = 8, proto = 9, checksum = 10, source = 12, destination = 16, header = 20
    }
    static let dontFragmentBit: UInt16 = 0x4000
    static let moreFragmentsBit: UInt16 = 0x2000
    static let offsetMask: UInt16 = 0x1FFF
    /// Largest IPv4 datagram, header included.
    @inlinable public static var maximumLength: Int { 65535 }
    /// Bytes of the offending datagram's payload an ICMP error must quote (RFC 792).
    @inlinable public static var quotedPayloadLength: Int { 8 }

    /// The packet: header, options and payload, `totalLength` bytes (for a quoted packet,
    /// whatever the ICMP error carried).
    public let bytes: UnsafeRawBufferPointer

    /// Checks an IPv4 packet received from the link.
    /// - Parameters:
    ///   - buffer: the packet's bytes (they must outlive the view).
    ///   - verifyChecksum: false when the device has already verified it (offload).
    public init(validating buffer: UnsafeRawBufferPointer, verifyChecksum: Bool = true) throws(WireError) {
        let headerLength = try Self.checkHeader(buffer)
        let total = Int(buffer.u16(Offset.totalLength))
        guard total >= headerLength else { throw .totalLengthInconsistent }
        guard total <= buffer.count else { throw .truncated }
        let fragmentEnd = Int(buffer.u16(Offset.flagsFragment) & Self.offsetMask) * 8 + total
        guard fragmentEnd <= Self.maximumLength else { throw .badFragmentOffset }
        bytes = buffer.slice(0, total)
        if verifyChecksum {
            guard InternetChecksum.verifies(bytes.slice(0, headerLength)) else { throw .badChecksum }
        }
    }

    /// Checks the header quoted in an ICMP error: version, IHL, the header and 8 bytes of
    /// payload present. Its total length and checksum are not checked (the quote is a
    /// prefix of the original, and routers may have changed fields since).
    public init(validatingQuoted buffer: UnsafeRawBufferPointer) throws(WireError) {
        let headerLength = try Self.checkHeader(buffer)
        guard buffer.count >= headerLength + Self.quotedPayloadLength else { throw .truncated }
        bytes = buffer
    }

    private static func checkHeader(_ buffer: UnsafeRawBufferPointer) throws(WireError) -> Int {
        guard buffer.count >= Offset.header else { throw .truncated }
        let first = buffer.u8(Offset.versionIHL)
        guard first >> 4 == 4 else { throw .badVersion }
        let headerLength = Int(first & 0x0F) * 4
        guard headerLength >= Offset.header else { throw .badHeaderLength }
        guard headerLength <= buffer.count else { throw .truncated }
        return headerLength
    }

    public var version: UInt8 { bytes.u8(Offset.versionIHL) >> 4 }
    /// Header length in bytes, options included (20 to 60).
    public var headerLength: Int { Int(bytes.u8(Offset.versionIHL) & 0x0F) * 4 }
    public var dscp: UInt8 { bytes.u8(Offset.tos) >> 2 }
    public var ecn: UInt8 { bytes.u8(Offset.tos) & 3 }
    public var totalLength: Int { Int(bytes.u16(Offset.totalLength)) }
    public var identification: UInt16 { bytes.u16(Offset.identification) }
    public var dontFragment: Bool { bytes.u16(Offset.flagsFragment) & Self.dontFragmentBit != 0 }
    public var moreFragments: Bool { bytes.u16(Offset.flagsFragment) & Self.moreFragmentsBit != 0 }
    /// Fragment offset in bytes (the field times 8).
    public var fragmentOffset: Int { Int(bytes.u16(Offset.flagsFragment) & Self.offsetMask) * 8 }
    /// Whether this is one fragment of a larger datagram.
    public var isFragment: Bool { moreFragments || fragmentOffset != 0 }
    public var timeToLive: UInt8 { bytes.u8(Offset.ttl) }
    public var `protocol`: IPProtocol { IPProtocol(rawValue: bytes.u8(Offset.proto)) }
    public var headerChecksum: UInt16 { bytes.u16(Offset.checksum) }
    public var source: IPv4Address { IPv4Address(bytes, at: Offset.source) }
    public var destination: IPv4Address { IPv4Address(bytes, at: Offset.destination) }
    /// Options bytes, unparsed (empty when IHL is 5).
    public var options: UnsafeRawBufferPointer { bytes.slice(Offset.header, headerLength) }
    /// The payload: up to the total length, or to the end of a quote.
    public var payload: UnsafeRawBufferPointer { bytes.slice(headerLength, bytes.count) }
    /// The header bytes, options included.
    public var header: UnsafeRawBufferPointer { bytes.slice(0, headerLength) }
}

/// The fields of an IPv4 header, as a value. Emitted without options (20 bytes).
public struct IPv4Header: Hashable, Sendable {
    public var dscp: UInt8
    public var ecn: UInt8
    public var identification: UInt16
    public var dontFragment: Bool
    public var moreFragments: Bool
    /// Fragment offset in bytes; a multiple of 8.
    public var fragmentOffset: Int
    public var timeToLive: UInt8
    public var `protocol`: IPProtocol
    public var source: IPv4Address
    public var destination: IPv4Address
    /// Bytes after the header: total length minus header length.
    public var payloadLength: Int

    /// Bytes `emit` writes.
    @inlinable public static var length: Int { 20 }

    public init(source: IPv4Address, destination: IPv4Address, protocol proto: IPProtocol, payloadLength: Int,
                timeToLive: UInt8 = 64, identification: UInt16 = 0, dontFragment: Bool = true,
                moreFragments: Bool = false, fragmentOffset: Int = 0, dscp: UInt8 = 0, ecn: UInt8 = 0) {
        self.source = source
        self.destination = destination
        self.protocol = proto
        self.payloadLength = payloadLength
        self.timeToLive = timeToLive
        self.identification = identification
        self.dontFragment = dontFragment
        self.moreFragments = moreFragments
        self.fragmentOffset = fragmentOffset
        self.dscp = dscp
        self.ecn = ecn
    }

    /// The fields of a validated packet (options are dropped; `payloadLength` is what
    /// the total length says, also for a quoted packet).
    public init(_ packet: IPv4Packet) {
        dscp = packet.dscp
        ecn = packet.ecn
        identification = packet.identification
        dontFragment = packet.dontFragment
        moreFragments = packet.moreFragments
        fragmentOffset = packet.fragmentOffset
        timeToLive = packet.timeToLive
        self.protocol = packet.protocol
        source = packet.source
        destination = packet.destination
        payloadLength = max(0, packet.totalLength - packet.headerLength)
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer, verifyChecksum: Bool = true) throws(WireError) -> IPv4Header {
        IPv4Header(try IPv4Packet(validating: bytes, verifyChecksum: verifyChecksum))
    }

    /// Total length the header announces: 20 + payload.
    public var totalLength: Int { Self.length + payloadLength }

    /// Writes the 20-byte header, checksum included, at the start of `buffer`.
    /// The payload, if any, is the caller's to place after it.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) throws(WireError) -> Int {
        typealias O = IPv4Packet.Offset
        guard buffer.count >= Self.length else { throw .bufferTooSmall }
        guard payloadLength >= 0, totalLength <= IPv4Packet.maximumLength,
              fragmentOffset >= 0, fragmentOffset % 8 == 0, fragmentOffset + totalLength <= IPv4Packet.maximumLength,
              dscp < 64, ecn < 4
        else { throw .unencodable }
        buffer.put(UInt8(0x45), at: O.versionIHL)
        buffer.put(dscp << 2 | ecn, at: O.tos)
        buffer.put(UInt16(totalLength), at: O.totalLength)
        buffer.put(identification, at: O.identification)
        let flags = (dontFragment ? IPv4Packet.dontFragmentBit : 0) | (moreFragments ? IPv4Packet.moreFragmentsBit : 0)
        buffer.put(flags | UInt16(fragmentOffset / 8), at: O.flagsFragment)
        buffer.put(timeToLive, at: O.ttl)
        buffer.put(self.protocol.rawValue, at: O.proto)
        buffer.put(UInt16(0), at: O.checksum)
        source.write(to: buffer, at: O.source)
        destination.write(to: buffer, at: O.destination)
        buffer.put(InternetChecksum.checksum(buffer.slice(0, Self.length)), at: O.checksum)
        return Self.length
    }
}
