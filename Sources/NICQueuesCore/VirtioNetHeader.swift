// VirtioNetHeader.swift: struct virtio_net_hdr (the 10 bytes IFF_VNET_HDR puts before
// every TAP frame): parsed and checked once against the frame it describes, and emitted
// for the frames we send (checksum offload, TCP segmentation by the kernel).

/// Why a received virtio_net_hdr was refused (the frame is dropped and counted in
/// ``DeviceStatistics/rxMalformed``).
public enum VirtioNetHeaderError: Error, Equatable, Sendable {
    /// Fewer bytes than a header (and an Ethernet header after it).
    case truncated(length: Int)
    /// Flag bits this version of virtio-net does not define.
    case unknownFlags(UInt8)
    /// A GSO type other than none, TCPv4, UDP, TCPv6 (with or without the ECN bit).
    case unknownSegmentationType(UInt8)
    /// NEEDS_CSUM with a checksum position outside the frame.
    case checksumOutsideFrame(start: Int, offset: Int, frameLength: Int)
    /// A GSO frame with a segment size of zero.
    case zeroSegmentSize
}

/// A virtio-net header (virtio spec 1.1 §5.1.6, Linux `struct virtio_net_hdr`), native
/// (little-endian) byte order as TUNSETVNETLE's default is on x86-64.
public struct VirtioNetHeader: Equatable, Sendable {
    /// Bytes of the header on the wire.
    public static let length = 10
    /// The checksum is partial: sum from `checksumStart` and store at +`checksumOffset`.
    public static let needsChecksum: UInt8 = 1
    /// The checksum was verified (or need not be).
    public static let dataValid: UInt8 = 2
    /// VIRTIO_NET_HDR_F_RSC_INFO (not negotiated by TAP; accepted and ignored).
    public static let rscInfo: UInt8 = 4
    public static let gsoNone: UInt8 = 0
    public static let gsoTCPv4: UInt8 = 1
    public static let gsoUDP: UInt8 = 3
    public static let gsoTCPv6: UInt8 = 4
    public static let gsoECN: UInt8 = 0x80

    public var flags: UInt8 = 0
    public var segmentationType: UInt8 = 0
    /// Bytes of headers (Ethernet, IP, TCP) before the payload of a GSO frame.
    public var headerLength: UInt16 = 0
    /// Payload bytes per segment of a GSO frame.
    public var segmentSize: UInt16 = 0
    public var checksumStart: UInt16 = 0
    public var checksumOffset: UInt16 = 0

    public init(flags: UInt8 = 0, segmentationType: UInt8 = 0, headerLength: UInt16 = 0, segmentSize: UInt16 = 0,
                checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0) {
        self.flags = flags; self.segmentationType = segmentationType; self.headerLength = headerLength
        self.segmentSize = segmentSize; self.checksumStart = checksumStart; self.checksumOffset = checksumOffset
    }

    /// Parses the header at the start of `bytes` (the header followed by its frame) and
    /// checks it against that frame; after it, nothing about the header can trap.
    @inlinable
    public init(parsing bytes: UnsafeRawBufferPointer) throws(VirtioNetHeaderError) {
        guard bytes.count >= Self.length + ethernetHeaderLength else { throw .truncated(length: bytes.count) }
        flags = bytes.load(fromByteOffset: 0, as: UInt8.self)
        segmentationType = bytes.load(fromByteOffset: 1, as: UInt8.self)
        headerLength = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        segmentSize = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        checksumStart = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        checksumOffset = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
        if flags & ~(Self.needsChecksum | Self.dataValid | Self.rscInfo) != 0 { throw .unknownFlags(flags) }
        switch segmentationType & ~Self.gsoECN {
        case Self.gsoNone: break
        case Self.gsoTCPv4, Self.gsoUDP, Self.gsoTCPv6: if segmentSize == 0 { throw .zeroSegmentSize }
        default: throw .unknownSegmentationType(segmentationType)
        }
        let frameLength = bytes.count - Self.length
        if flags & Self.needsChecksum != 0, Int(checksumStart) + Int(checksumOffset) + 2 > frameLength {
            throw .checksumOutsideFrame(start: Int(checksumStart), offset: Int(checksumOffset), frameLength: frameLength)
        }
    }

    /// Writes the ten bytes at `p`.
    @inlinable @inline(__always)
    public func store(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: flags, toByteOffset: 0, as: UInt8.self)
        p.storeBytes(of: segmentationType, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: headerLength.littleEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: segmentSize.littleEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: checksumStart.littleEndian, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: checksumOffset.littleEndian, toByteOffset: 8, as: UInt16.self)
    }

    /// The header for an outgoing frame (Ethernet first): an IPv4 TCP frame gets
    /// NEEDS_CSUM when `checksumOffload` (its checksum field then holds the pseudo-header
    /// sum), and TCPv4 GSO with segments cut at `mtu` when it is longer than one; any
    /// other frame goes as it is (flags 0). Reads only the headers, bounds-checked.
    @inlinable
    public static func forTransmit(_ frame: UnsafeRawBufferPointer, mtu: Int, checksumOffload: Bool) -> VirtioNetHeader {
        let n = frame.count
        guard checksumOffload, n >= ethernetHeaderLength + 20,
              frame[12] == 0x08, frame[13] == 0x00 else { return VirtioNetHeader() }
        let ip = ethernetHeaderLength
        let versionIHL = frame[ip]
        let ihl = Int(versionIHL & 0x0F) * 4
        // TCP (6), not a fragment (the offset and MF bits of bytes 6-7 clear).
        guard versionIHL >> 4 == 4, ihl >= 20, frame[ip + 9] == 6, frame[ip + 6] & 0x3F == 0, frame[ip + 7] == 0,
              n >= ip + ihl + 20 else { return VirtioNetHeader() }
        let tcp = ip + ihl
        let tcpHeader = Int(frame[tcp + 12] >> 4) * 4
        guard tcpHeader >= 20, n >= tcp + tcpHeader else { return VirtioNetHeader() }
        var h = VirtioNetHeader(flags: needsChecksum, checksumStart: UInt16(tcp), checksumOffset: 16)
        if n - ethernetHeaderLength > mtu {
            let segment = mtu - ihl - tcpHeader
            if segment > 0 {
                h.segmentationType = gsoTCPv4
                h.headerLength = UInt16(tcp + tcpHeader)
                h.segmentSize = UInt16(segment)
            }
        }
        return h
    }
}
