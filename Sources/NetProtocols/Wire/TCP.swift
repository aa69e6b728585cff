// TCP.swift: the TCP header (RFC 9293 §3.1) and its options: MSS (kind 2), window scale
// (3, RFC 7323), SACK-permitted (4) and SACK (5, RFC 2018), timestamps (8, RFC 7323);
// sequence-number arithmetic modulo 2^32; the checksum over the pseudo-header.

/// A TCP sequence number: arithmetic and comparison modulo 2^32 (RFC 9293 §3.4).
public struct SequenceNumber: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    @inline(__always) public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    @inline(__always) public static func + (a: SequenceNumber, n: Int) -> SequenceNumber { SequenceNumber(a.rawValue &+ UInt32(truncatingIfNeeded: n)) }
    @inline(__always) public static func - (a: SequenceNumber, n: Int) -> SequenceNumber { SequenceNumber(a.rawValue &- UInt32(truncatingIfNeeded: n)) }
    /// The signed distance from `b` to `a` (a - b), valid while |a - b| < 2^31.
    @inline(__always) public static func - (a: SequenceNumber, b: SequenceNumber) -> Int { Int(Int32(bitPattern: a.rawValue &- b.rawValue)) }
    @inline(__always) public static func += (a: inout SequenceNumber, n: Int) { a = a + n }
    @inline(__always) public static func < (a: SequenceNumber, b: SequenceNumber) -> Bool { Int32(bitPattern: a.rawValue &- b.rawValue) < 0 }
    @inline(__always) public static func <= (a: SequenceNumber, b: SequenceNumber) -> Bool { Int32(bitPattern: a.rawValue &- b.rawValue) <= 0 }
    @inline(__always) public static func > (a: SequenceNumber, b: SequenceNumber) -> Bool { b < a }
    @inline(__always) public static func >= (a: SequenceNumber, b: SequenceNumber) -> Bool { b <= a }
    public static func max(_ a: SequenceNumber, _ b: SequenceNumber) -> SequenceNumber { a < b ? b : a }
    public static func min(_ a: SequenceNumber, _ b: SequenceNumber) -> SequenceNumber { a < b ? a : b }
    public var description: String { String(rawValue) }
}

/// The control bits.
public struct TCPFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public static var fin: TCPFlags { TCPFlags(rawValue: 0x01) }
    @inlinable public static var syn: TCPFlags { TCPFlags(rawValue: 0x02) }
    @inlinable public static var rst: TCPFlags { TCPFlags(rawValue: 0x04) }
    @inlinable public static var psh: TCPFlags { TCPFlags(rawValue: 0x08) }
    @inlinable public static var ack: TCPFlags { TCPFlags(rawValue: 0x10) }
    @inlinable public static var urg: TCPFlags { TCPFlags(rawValue: 0x20) }
    @inlinable public static var ece: TCPFlags { TCPFlags(rawValue: 0x40) }
    @inlinable public static var cwr: TCPFlags { TCPFlags(rawValue: 0x80) }
    public var description: String {
        let names: [(TCPFlags, String)] = [(.syn, "S"), (.fin, "F"), (.rst, "R"), (.psh, "P"), (.ack, "."), (.urg, "U"), (.ece, "E"), (.cwr, "W")]
        let s = names.filter { contains($0.0) }.map(\.1).joined()
        return s.isEmpty ? "none" : s
    }
}

/// One SACK block: the bytes [start, end) the receiver holds (RFC 2018).
public struct SACKBlock: Hashable, Sendable {
    public var start: SequenceNumber
    public var end: SequenceNumber
    public init(start: SequenceNumber, end: SequenceNumber) { self.start = start; self.end = end }
}

/// Up to four SACK blocks, stored inline (no allocation on the per-segment path).
public struct SACKBlocks: RandomAccessCollection, Hashable, Sendable {
    @inlinable public static var capacity: Int { 4 }
    private var storage: (SACKBlock, SACKBlock, SACKBlock, SACKBlock)
    public private(set) var count: Int = 0
    public init() {
        let z = SACKBlock(start: SequenceNumber(0), end: SequenceNumber(0))
        storage = (z, z, z, z)
    }
    public var startIndex: Int { 0 }
    public var endIndex: Int { count }
    public subscript(i: Int) -> SACKBlock {
        get {
            precondition(i >= 0 && i < count)
            switch i { case 0: return storage.0; case 1: return storage.1; case 2: return storage.2; default: return storage.3 }
        }
        set {
            precondition(i >= 0 && i < count)
            switch i { case 0: storage.0 = newValue; case 1: storage.1 = newValue; case 2: storage.2 = newValue; default: storage.3 = newValue }
        }
    }
    /// Appends `block`; false when four are already there.
    @discardableResult
    public mutating func append(_ block: SACKBlock) -> Bool {
        guard count < Self.capacity else { return false }
        count += 1
        self[count - 1] = block
        return true
    }
    public mutating func removeAll() { count = 0 }
    public static func == (a: SACKBlocks, b: SACKBlocks) -> Bool { a.elementsEqual(b) }
    public func hash(into h: inout Hasher) { for b in self { h.combine(b) } }
}

/// The timestamps option's two values (RFC 7323 §3).
public struct TCPTimestamp: Hashable, Sendable {
    public var value: UInt32
    public var echoReply: UInt32
    public init(value: UInt32, echoReply: UInt32) { self.value = value; self.echoReply = echoReply }
}

/// The options a segment carries, parsed (unknown kinds are skipped, as RFC 9293 §3.1 asks).
public struct TCPOptions: Hashable, Sendable {
    public var maximumSegmentSize: UInt16?
    /// The shift count as sent (a receiver clamps values above 14 to 14, RFC 7323 §2.3).
    public var windowScale: UInt8?
    public var sackPermitted = false
    public var timestamp: TCPTimestamp?
    public var sackBlocks = SACKBlocks()
    public init() {}

    /// Bytes these options take on the wire, padded to a multiple of 4. The layout is
    /// Linux's: each option padded with NOPs to a 4-byte boundary, SACK-permitted sharing
    /// the timestamps' word when both are present.
    public var encodedLength: Int {
        var n = 0
        if maximumSegmentSize != nil { n += 4 }
        if timestamp != nil { n += 12 } else if sackPermitted { n += 4 }
        if windowScale != nil { n += 4 }
        if !sackBlocks.isEmpty { n += 4 + 8 * sackBlocks.count }
        return n
    }

    /// Most option bytes a header holds (data offset 15 words).
    @inlinable public static var maximumLength: Int { 40 }

    enum Kind {
        static let end: UInt8 = 0, nop: UInt8 = 1, mss: UInt8 = 2, windowScale: UInt8 = 3
        static let sackPermitted: UInt8 = 4, sack: UInt8 = 5, timestamp: UInt8 = 8
    }

    /// Parses the option bytes of a header. Unknown kinds are skipped; a known kind with
    /// the wrong length is ignored, as Linux ignores it.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> TCPOptions {
        var o = TCPOptions()
        var i = 0
        let end = bytes.count
        while i < end {
            let kind = bytes.u8(i)
            if kind == Kind.end { break }
            if kind == Kind.nop { i += 1; continue }
            guard i + 1 < end else { throw .badLength }
            let length = Int(bytes.u8(i + 1))
            guard length >= 2, i + length <= end else { throw .badLength }
            switch (kind, length) {
            case (Kind.mss, 4): o.maximumSegmentSize = bytes.u16(i + 2)
            case (Kind.windowScale, 3): o.windowScale = bytes.u8(i + 2)
            case (Kind.sackPermitted, 2): o.sackPermitted = true
            case (Kind.timestamp, 10): o.timestamp = TCPTimestamp(value: bytes.u32(i + 2), echoReply: bytes.u32(i + 6))
            case (Kind.sack, _) where (length - 2) % 8 == 0 && length > 2:
                o.sackBlocks.removeAll()
                var at = i + 2
                while at < i + length {
                    o.sackBlocks.append(SACKBlock(start: SequenceNumber(bytes.u32(at)), end: SequenceNumber(bytes.u32(at + 4))))
                    at += 8
                }
            default: break
            }
            i += length
        }
        return o
    }

    /// Writes the options (``encodedLength`` bytes) at the start of `buffer`.
    func emit(into buffer: UnsafeMutableRawBufferPointer) {
        var i = 0
        func nops(_ n: Int) { for _ in 0..<n { buffer.put(Kind.nop, at: i); i += 1 } }
        if let mss = maximumSegmentSize {
            buffer.put(Kind.mss, at: i); buffer.put(UInt8(4), at: i + 1); buffer.put(mss, at: i + 2); i += 4
        }
        if let ts = timestamp {
            if sackPermitted {
                buffer.put(Kind.sackPermitted, at: i); buffer.put(UInt8(2), at: i + 1); i += 2
            } else {
                nops(2)
            }
            buffer.put(Kind.timestamp, at: i); buffer.put(UInt8(10), at: i + 1)
            buffer.put(ts.value, at: i + 2); buffer.put(ts.echoReply, at: i + 6); i += 10
        } else if sackPermitted {
            nops(2)
            buffer.put(Kind.sackPermitted, at: i); buffer.put(UInt8(2), at: i + 1); i += 2
        }
        if let shift = windowScale {
            nops(1)
            buffer.put(Kind.windowScale, at: i); buffer.put(UInt8(3), at: i + 1); buffer.put(shift, at: i + 2); i += 3
        }
        if !sackBlocks.isEmpty {
            nops(2)
            buffer.put(Kind.sack, at: i); buffer.put(UInt8(2 + 8 * sackBlocks.count), at: i + 1); i += 2
            for k in 0..<sackBlocks.count {
                let b = sackBlocks[k]
                buffer.put(b.start.rawValue, at: i); buffer.put(b.end.rawValue, at: i + 4); i += 8
            }
        }
    }
}

/// A zero-copy view of a TCP segment, checked once: at least 20 bytes, a data offset of at
/// least 5 words that fits the buffer, well-formed options (a length byte that runs past the
/// header or is below 2 is `badLength`), and the checksum over the pseudo-header.
public struct TCPSegmentView {
    /// The whole segment (header and payload).
    public let bytes: UnsafeRawBufferPointer
    /// The options, parsed at validation.
    public let options: TCPOptions

    public init(validating buffer: UnsafeRawBufferPointer, source: IPv4Address, destination: IPv4Address,
                verifyChecksum: Bool = true) throws(WireError) {
        guard buffer.count >= TCPHeader.minimumLength else { throw .truncated }
        let headerLength = Int(buffer.u8(12) >> 4) * 4
        guard headerLength >= TCPHeader.minimumLength else { throw .badHeaderLength }
        guard headerLength <= buffer.count else { throw .truncated }
        if verifyChecksum {
            var sum = InternetChecksum.pseudoHeader(source: source, destination: destination, protocol: .tcp, length: buffer.count)
            sum.add(buffer)
            guard sum.folded == 0xFFFF else { throw .badChecksum }
        }
        options = try TCPOptions.parse(buffer.slice(TCPHeader.minimumLength, headerLength))
        bytes = buffer
    }

    public var sourcePort: UInt16 { bytes.u16(0) }
    public var destinationPort: UInt16 { bytes.u16(2) }
    public var sequenceNumber: SequenceNumber { SequenceNumber(bytes.u32(4)) }
    public var acknowledgmentNumber: SequenceNumber { SequenceNumber(bytes.u32(8)) }
    /// Header length in bytes (data offset × 4).
    public var headerLength: Int { Int(bytes.u8(12) >> 4) * 4 }
    public var flags: TCPFlags { TCPFlags(rawValue: bytes.u8(13)) }
    public var window: UInt16 { bytes.u16(14) }
    public var checksum: UInt16 { bytes.u16(16) }
    public var urgentPointer: UInt16 { bytes.u16(18) }
    public var payload: UnsafeRawBufferPointer { bytes.slice(headerLength, bytes.count) }
}

/// The fields of a TCP header, as a value.
public struct TCPHeader: Hashable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequenceNumber: SequenceNumber
    public var acknowledgmentNumber: SequenceNumber
    public var flags: TCPFlags
    public var window: UInt16
    public var urgentPointer: UInt16 = 0
    public var options = TCPOptions()

    @inlinable public static var minimumLength: Int { 20 }

    public init(sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: SequenceNumber,
                acknowledgmentNumber: SequenceNumber, flags: TCPFlags, window: UInt16, options: TCPOptions = TCPOptions()) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.options = options
    }

    /// Header length with these options.
    public var length: Int { Self.minimumLength + options.encodedLength }

    /// Writes the header and the checksum over the pseudo-header, the header and the
    /// `payloadLength` bytes the caller has already placed after it.
    /// - Returns: the header length.
    /// - Parameter partialChecksum: write only the pseudo-header sum (folded, not
    ///   complemented) for a device that completes the checksum (checksum offload, as
    ///   Linux's CHECKSUM_PARTIAL); `computeChecksum` must be true for it to apply.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer, source: IPv4Address, destination: IPv4Address,
                     payloadLength: Int, computeChecksum: Bool = true, partialChecksum: Bool = false) throws(WireError) -> Int {
        let optionLength = options.encodedLength
        guard optionLength <= TCPOptions.maximumLength else { throw .unencodable }
        let length = Self.minimumLength + optionLength
        guard payloadLength >= 0, buffer.count >= length + payloadLength else { throw .bufferTooSmall }
        buffer.put(sourcePort, at: 0)
        buffer.put(destinationPort, at: 2)
        buffer.put(sequenceNumber.rawValue, at: 4)
        buffer.put(acknowledgmentNumber.rawValue, at: 8)
        buffer.put(UInt8(length / 4) << 4, at: 12)
        buffer.put(flags.rawValue, at: 13)
        buffer.put(window, at: 14)
        buffer.put(UInt16(0), at: 16)
        buffer.put(urgentPointer, at: 18)
        options.emit(into: UnsafeMutableRawBufferPointer(rebasing: buffer[Self.minimumLength..<length]))
        if computeChecksum && partialChecksum {
            let sum = InternetChecksum.pseudoHeader(source: source, destination: destination, protocol: .tcp,
                                                    length: length + payloadLength)
            buffer.put(sum.folded, at: 16)
        } else if computeChecksum {
            var sum = InternetChecksum.pseudoHeader(source: source, destination: destination, protocol: .tcp,
                                                    length: length + payloadLength)
            sum.add(buffer.slice(0, length + payloadLength))
            buffer.put(sum.checksum, at: 16)
        }
        return length
    }

    /// The header of a validated segment.
    public init(_ view: TCPSegmentView) {
        self.init(sourcePort: view.sourcePort, destinationPort: view.destinationPort, sequenceNumber: view.sequenceNumber,
                  acknowledgmentNumber: view.acknowledgmentNumber, flags: view.flags, window: view.window, options: view.options)
        urgentPointer = view.urgentPointer
    }
}
