// Ethernet.swift: Ethernet II frames, with up to two 802.1Q/802.1ad VLAN tags read.

/// The EtherType field: the protocol carried by an Ethernet II frame.
public struct EtherType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }

    @inlinable public static var ipv4: EtherType { EtherType(rawValue: 0x0800) }
    @inlinable public static var arp: EtherType { EtherType(rawValue: 0x0806) }
    @inlinable public static var vlan: EtherType { EtherType(rawValue: 0x8100) }   // 802.1Q customer tag
    @inlinable public static var qinq: EtherType { EtherType(rawValue: 0x88A8) }   // 802.1ad service tag
    @inlinable public static var ipv6: EtherType { EtherType(rawValue: 0x86DD) }

    /// Values below this are IEEE 802.3 lengths, not EtherTypes.
    @inlinable public static var minimum: UInt16 { 0x0600 }

    public var description: String { "0x" + String(rawValue, radix: 16) }
}

/// An 802.1Q tag: priority (PCP), drop eligibility (DEI) and VLAN identifier.
public struct VLANTag: Hashable, Sendable {
    /// The tag protocol identifier the tag was read with (0x8100 or 0x88A8).
    public var tagProtocol: EtherType
    /// Priority code point, 0–7.
    public var priority: UInt8
    public var dropEligible: Bool
    /// VLAN identifier, 0–4095.
    public var identifier: UInt16

    public init(tagProtocol: EtherType = .vlan, priority: UInt8 = 0, dropEligible: Bool = false, identifier: UInt16) {
        self.tagProtocol = tagProtocol
        self.priority = priority
        self.dropEligible = dropEligible
        self.identifier = identifier
    }

    init(tpid: UInt16, tci: UInt16) {
        tagProtocol = EtherType(rawValue: tpid)
        priority = UInt8(tci >> 13)
        dropEligible = tci & 0x1000 != 0
        identifier = tci & 0x0FFF
    }

    var tci: UInt16 { UInt16(priority & 7) << 13 | (dropEligible ? 0x1000 : 0) | identifier & 0x0FFF }
}

/// A zero-copy view of an Ethernet II frame, checked once.
///
/// Valid only while the memory it views is. Reads at most two VLAN tags (an 802.1ad
/// service tag then an 802.1Q tag, or one of either); a third tag shows up as the
/// `etherType` 0x8100, which no upper layer accepts. Frames are not required to be
/// padded to 60 bytes (TAP and veth deliver them unpadded).
public struct EthernetFrame {
    enum Offset {
        static let destination = 0, source = 6, etherType = 12, header = 14, tag = 4
    }

    /// The whole frame.
    public let bytes: UnsafeRawBufferPointer
    /// 14, 18 or 22 bytes, depending on the number of VLAN tags.
    public let headerLength: Int

    /// Checks the frame is long enough for its header and tags, and is Ethernet II.
    public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= Offset.header else { throw .truncated }
        var typeOffset = Offset.etherType
        for _ in 0..<2 {
            let type = bytes.u16(typeOffset)
            guard type == EtherType.vlan.rawValue || type == EtherType.qinq.rawValue else { break }
            guard bytes.count >= typeOffset + Offset.tag + 2 else { throw .truncated }
            typeOffset += Offset.tag
        }
        guard bytes.u16(typeOffset) >= EtherType.minimum else { throw .notEthernetII }
        self.bytes = bytes
        headerLength = typeOffset + 2
    }

    public var destination: MACAddress { MACAddress(bytes, at: Offset.destination) }
    public var source: MACAddress { MACAddress(bytes, at: Offset.source) }
    /// The EtherType after any VLAN tags.
    public var etherType: EtherType { EtherType(rawValue: bytes.u16(headerLength - 2)) }
    /// Number of VLAN tags read, 0 to 2.
    public var tagCount: Int { (headerLength - Offset.header) / Offset.tag }

    /// Tag `i` (0 is outermost), for `i < tagCount`.
    public func tag(_ i: Int) -> VLANTag {
        precondition(i >= 0 && i < tagCount, "no such VLAN tag")
        let at = Offset.etherType + Offset.tag * i
        return VLANTag(tpid: bytes.u16(at), tci: bytes.u16(at + 2))
    }

    /// The bytes after the header (and tags), including any Ethernet padding.
    public var payload: UnsafeRawBufferPointer { bytes.slice(headerLength, bytes.count) }
}

/// The fields of an Ethernet II header, as a value.
public struct EthernetHeader: Hashable, Sendable {
    public var destination: MACAddress
    public var source: MACAddress
    public var etherType: EtherType
    /// The 802.1Q tag (the inner one when there are two).
    public var vlan: VLANTag?
    /// The 802.1ad service tag, outside `vlan`, when the frame has two tags.
    public var serviceVLAN: VLANTag?

    public init(destination: MACAddress, source: MACAddress, etherType: EtherType,
                vlan: VLANTag? = nil, serviceVLAN: VLANTag? = nil) {
        self.destination = destination
        self.source = source
        self.etherType = etherType
        self.vlan = vlan
        self.serviceVLAN = serviceVLAN
    }

    public init(_ frame: EthernetFrame) {
        destination = frame.destination
        source = frame.source
        etherType = frame.etherType
        switch frame.tagCount {
        case 2: serviceVLAN = frame.tag(0); vlan = frame.tag(1)
        case 1: serviceVLAN = nil; vlan = frame.tag(0)
        default: serviceVLAN = nil; vlan = nil
        }
    }

    /// Validates `bytes` and reads the header.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> EthernetHeader {
        EthernetHeader(try EthernetFrame(validating: bytes))
    }

    /// Bytes `emit` writes: 14, plus 4 per tag.
    public var headerLength: Int { 14 + (vlan == nil ? 0 : 4) + (serviceVLAN == nil ? 0 : 4) }

    /// Writes the header at the start of `buffer`.
    /// - Returns: the number of bytes written (`headerLength`).
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) throws(WireError) -> Int {
        guard buffer.count >= headerLength else { throw .bufferTooSmall }
        guard etherType.rawValue >= EtherType.minimum else { throw .unencodable }
        destination.write(to: buffer, at: 0)
        source.write(to: buffer, at: 6)
        var at = 12
        if let serviceVLAN { at = Self.put(serviceVLAN, into: buffer, at: at) }
        if let vlan { at = Self.put(vlan, into: buffer, at: at) }
        buffer.put(etherType.rawValue, at: at)
        return at + 2
    }

    private static func put(_ tag: VLANTag, into buffer: UnsafeMutableRawBufferPointer, at: Int) -> Int {
        buffer.put(tag.tagProtocol.rawValue, at: at)
        buffer.put(tag.tci, at: at + 2)
        return at + 4
    }
}
