// UDP.swift: UDP (RFC 768): length checks, the checksum over the pseudo-header, zero
// meaning "no checksum", and a computed zero sent as 0xFFFF.

/// A zero-copy view of a UDP datagram, checked once.
///
/// Validation: at least 8 bytes, length field ≥ 8 (`badLength`) and ≤ the buffer
/// (`truncated`; bytes past the length are ignored, as Linux trims them), and, unless the
/// field is zero ("no checksum", accepted as Linux accepts it on IPv4), the checksum over
/// the pseudo-header and the datagram.
public struct UDPDatagram {
    enum Offset {
        static let sourcePort = 0, destinationPort = 2, length = 4, checksum = 6, header = 8
    }

    /// The datagram, `length` bytes.
    public let bytes: UnsafeRawBufferPointer

    /// - Parameters:
    ///   - buffer: the datagram's bytes (they must outlive the view).
    ///   - source: the IPv4 source address, for the pseudo-header.
    ///   - destination: the IPv4 destination address, for the pseudo-header.
    ///   - verifyChecksum: false when the device has already verified it (offload).
    public init(validating buffer: UnsafeRawBufferPointer, source: IPv4Address, destination: IPv4Address,
                verifyChecksum: Bool = true) throws(WireError) {
        guard buffer.count >= Offset.header else { throw .truncated }
        let length = Int(buffer.u16(Offset.length))
        guard length >= Offset.header else { throw .badLength }
        guard length <= buffer.count else { throw .truncated }
        bytes = buffer.slice(0, length)
        if verifyChecksum && buffer.u16(Offset.checksum) != 0 {
            var sum = InternetChecksum.pseudoHeader(source: source, destination: destination, protocol: .udp, length: length)
            sum.add(bytes)
            guard sum.folded == 0xFFFF else { throw .badChecksum }
        }
    }

    public var sourcePort: UInt16 { bytes.u16(Offset.sourcePort) }
    public var destinationPort: UInt16 { bytes.u16(Offset.destinationPort) }
    /// Header plus payload, as the length field says.
    public var length: Int { bytes.count }
    public var checksum: UInt16 { bytes.u16(Offset.checksum) }
    /// Whether the sender computed a checksum (the field is not zero).
    public var hasChecksum: Bool { checksum != 0 }
    public var payload: UnsafeRawBufferPointer { bytes.slice(Offset.header, bytes.count) }
}

/// The fields of a UDP header, as a value.
public struct UDPHeader: Hashable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var payloadLength: Int

    @inlinable public static var length: Int { 8 }
    /// Largest payload the 16-bit length field can describe.
    @inlinable public static var maximumPayloadLength: Int { 65535 - length }

    public init(sourcePort: UInt16, destinationPort: UInt16, payloadLength: Int) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.payloadLength = payloadLength
    }

    public init(_ datagram: UDPDatagram) {
        sourcePort = datagram.sourcePort
        destinationPort = datagram.destinationPort
        payloadLength = datagram.length - Self.length
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer, source: IPv4Address, destination: IPv4Address,
                             verifyChecksum: Bool = true) throws(WireError) -> UDPHeader {
        UDPHeader(try UDPDatagram(validating: bytes, source: source, destination: destination, verifyChecksum: verifyChecksum))
    }

    /// Writes the header and the checksum over the pseudo-header, the header and the
    /// `payloadLength` bytes the caller has already placed after it.
    /// - Parameters:
    ///   - buffer: where the header goes, the payload already after it.
    ///   - source: the IPv4 source address, for the pseudo-header.
    ///   - destination: the IPv4 destination address, for the pseudo-header.
    ///   - computeChecksum: false to send zero ("no checksum"); a computed zero is sent as 0xFFFF.
    /// - Returns: bytes of the datagram (8 + `payloadLength`).
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer, source: IPv4Address, destination: IPv4Address,
                     computeChecksum: Bool = true) throws(WireError) -> Int {
        typealias O = UDPDatagram.Offset
        guard payloadLength >= 0, payloadLength <= Self.maximumPayloadLength else { throw .unencodable }
        let length = Self.length + payloadLength
        guard buffer.count >= length else { throw .bufferTooSmall }
        buffer.put(sourcePort, at: O.sourcePort)
        buffer.put(destinationPort, at: O.destinationPort)
        buffer.put(UInt16(length), at: O.length)
        buffer.put(UInt16(0), at: O.checksum)
        if computeChecksum {
            var sum = InternetChecksum.pseudoHeader(source: source, destination: destination, protocol: .udp, length: length)
            sum.add(buffer.slice(0, length))
            let value = sum.checksum
            buffer.put(value == 0 ? 0xFFFF : value, at: O.checksum)
        }
        return length
    }
}
