// ICMP.swift: ICMPv4 (RFC 792): echo request and reply, destination unreachable and
// time exceeded with the quoted original header and at least 8 bytes of its payload.

/// Codes of ICMP destination unreachable (RFC 792, RFC 1122, RFC 1812).
public struct ICMPUnreachableCode: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public static var network: Self { Self(rawValue: 0) }
    @inlinable public static var host: ICMPUnreachableCode { ICMPUnreachableCode(rawValue: 1) }
    @inlinable public static var `protocol`: ICMPUnreachableCode { ICMPUnreachableCode(rawValue: 2) }
    @inlinable public static var port: Self { Self(rawValue: 3) }
    /// "Fragmentation needed and DF set": carries the next-hop MTU (RFC 1191).
    @inlinable public static var fragmentationNeeded: Self { Self(rawValue: 4) }
    @inlinable public static var sourceRouteFailed: ICMPUnreachableCode { ICMPUnreachableCode(rawValue: 5) }
    @inlinable public static var communicationProhibited: Self { Self(rawValue: 13) }
    /// Highest code defined (precedence cutoff in effect, RFC 1812).
    @inlinable public static var maximum: UInt8 { 15 }
}

/// Codes of ICMP time exceeded.
public struct ICMPTimeExceededCode: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public static var timeToLive: Self { Self(rawValue: 0) }
    @inlinable public static var fragmentReassembly: ICMPTimeExceededCode { ICMPTimeExceededCode(rawValue: 1) }
}

/// A zero-copy view of an ICMPv4 message, checked once: at least the 8-byte header, and
/// the checksum over the whole message.
public struct ICMPPacket {
    enum Offset {
        static let type = 0, code = 1, checksum = 2, identifier = 4, sequence = 6, nextHopMTU = 6, header = 8
    }
    enum MessageType {
        static let echoReply: UInt8 = 0, unreachable: UInt8 = 3, echoRequest: UInt8 = 8, timeExceeded: UInt8 = 11
    }

    /// The whole message.
    public let bytes: UnsafeRawBufferPointer

    public init(validating bytes: UnsafeRawBufferPointer, verifyChecksum: Bool = true) throws(WireError) {
        guard bytes.count >= Offset.header else { throw .truncated }
        if verifyChecksum {
            guard InternetChecksum.verifies(bytes) else { throw .badChecksum }
        }
        self.bytes = bytes
    }

    public var type: UInt8 { bytes.u8(Offset.type) }
    public var code: UInt8 { bytes.u8(Offset.code) }
    public var checksum: UInt16 { bytes.u16(Offset.checksum) }
    /// Bytes 4–7 ("rest of header"), whatever the type.
    public var restOfHeader: UInt32 { bytes.u32(Offset.identifier) }
    /// Echo identifier (bytes 4–5).
    public var identifier: UInt16 { bytes.u16(Offset.identifier) }
    /// Echo sequence number (bytes 6–7).
    public var sequence: UInt16 { bytes.u16(Offset.sequence) }
    /// Next-hop MTU of "fragmentation needed" (bytes 6–7).
    public var nextHopMTU: UInt16 { bytes.u16(Offset.nextHopMTU) }
    /// Echo data, or the quoted datagram of an error.
    public var payload: UnsafeRawBufferPointer { bytes.slice(Offset.header, bytes.count) }
}

/// A parsed ICMPv4 message of a kind this stack handles.
///
/// The data (echo data, or the quoted datagram of an error) is not part of the value: it
/// is `ICMPPacket.payload` when parsing, and the caller places it after the 8-byte header
/// before `emit` (or lets `emitError(quoting:into:)` copy the quote).
public enum ICMPMessage: Hashable, Sendable {
    case echoRequest(identifier: UInt16, sequence: UInt16)
    case echoReply(identifier: UInt16, sequence: UInt16)
    /// `nextHopMTU` is meaningful for `.fragmentationNeeded` only (zero otherwise).
    case destinationUnreachable(ICMPUnreachableCode, nextHopMTU: UInt16)
    case timeExceeded(ICMPTimeExceededCode)

    @inlinable public static var headerLength: Int { 8 }
    /// Most bytes an ICMP error may take, IP header included (RFC 1812 §4.3.2.3).
    @inlinable public static var maximumErrorLength: Int { 576 }

    /// Reads a message from a validated packet; errors must quote a valid IPv4 header and
    /// 8 bytes (`badQuotedPacket`). Echo messages must have code 0 (`badCode`).
    public init(_ packet: ICMPPacket) throws(WireError) {
        typealias T = ICMPPacket.MessageType
        switch packet.type {
        case T.echoRequest, T.echoReply:
            guard packet.code == 0 else { throw .badCode }
            self = packet.type == T.echoRequest
                ? .echoRequest(identifier: packet.identifier, sequence: packet.sequence)
                : .echoReply(identifier: packet.identifier, sequence: packet.sequence)
        case T.unreachable:
            guard packet.code <= ICMPUnreachableCode.maximum else { throw .badCode }
            try Self.checkQuote(packet)
            let code = ICMPUnreachableCode(rawValue: packet.code)
            self = .destinationUnreachable(code, nextHopMTU: code == .fragmentationNeeded ? packet.nextHopMTU : 0)
        case T.timeExceeded:
            guard packet.code <= 1 else { throw .badCode }
            try Self.checkQuote(packet)
            self = .timeExceeded(ICMPTimeExceededCode(rawValue: packet.code))
        default:
            throw .unsupportedMessageType
        }
    }

    private static func checkQuote(_ packet: ICMPPacket) throws(WireError) {
        do { _ = try IPv4Packet(validatingQuoted: packet.payload) } catch { throw .badQuotedPacket }
    }

    /// Validates and reads a message.
    public static func parse(_ bytes: UnsafeRawBufferPointer, verifyChecksum: Bool = true) throws(WireError) -> ICMPMessage {
        try ICMPMessage(try ICMPPacket(validating: bytes, verifyChecksum: verifyChecksum))
    }

    var typeAndCode: (UInt8, UInt8) {
        typealias T = ICMPPacket.MessageType
        switch self {
        case .echoRequest: return (T.echoRequest, 0)
        case .echoReply: return (T.echoReply, 0)
        case .destinationUnreachable(let code, _): return (T.unreachable, code.rawValue)
        case .timeExceeded(let code): return (T.timeExceeded, code.rawValue)
        }
    }

    var restOfHeader: UInt32 {
        switch self {
        case .echoRequest(let id, let seq), .echoReply(let id, let seq): UInt32(id) << 16 | UInt32(seq)
        case .destinationUnreachable(_, let mtu): UInt32(mtu)
        case .timeExceeded: 0
        }
    }

    /// Writes the 8-byte header and the checksum over it and the `payloadLength` bytes
    /// the caller has already placed after it.
    /// - Returns: bytes of the message (8 + `payloadLength`).
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer, payloadLength: Int) throws(WireError) -> Int {
        typealias O = ICMPPacket.Offset
        let length = Self.headerLength + payloadLength
        guard payloadLength >= 0, buffer.count >= length else { throw .bufferTooSmall }
        let (type, code) = typeAndCode
        buffer.put(type, at: O.type)
        buffer.put(code, at: O.code)
        buffer.put(UInt16(0), at: O.checksum)
        buffer.put(restOfHeader, at: O.identifier)
        buffer.put(InternetChecksum.checksum(buffer.slice(0, length)), at: O.checksum)
        return length
    }

    /// Writes an error message quoting `original` (the offending IPv4 packet): its header
    /// and as much payload as fits in 576 bytes with a 20-byte IP header, as Linux does.
    /// - Returns: bytes of the message.
    @discardableResult
    public func emitError(quoting original: UnsafeRawBufferPointer, into buffer: UnsafeMutableRawBufferPointer) throws(WireError) -> Int {
        if case .echoRequest = self { throw .unencodable }
        if case .echoReply = self { throw .unencodable }
        let quote = min(original.count, Self.maximumErrorLength - IPv4Header.length - Self.headerLength)
        guard buffer.count >= Self.headerLength + quote else { throw .bufferTooSmall }
        guard quote > 0 else { throw .unencodable }
        let destination = UnsafeMutableRawBufferPointer(rebasing: buffer[Self.headerLength..<Self.headerLength + quote])
        destination.copyMemory(from: original.slice(0, quote))
        return try emit(into: buffer, payloadLength: quote)
    }
}
