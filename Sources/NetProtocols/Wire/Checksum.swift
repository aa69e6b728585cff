// Checksum.swift: the Internet checksum (RFC 1071) with 64-bit accumulation, the
// incremental update of RFC 1624, and the TCP/UDP pseudo-header.

/// A running one's-complement sum of 16-bit big-endian words (RFC 1071).
///
/// Blocks may have any length: a block that starts at an odd position of the whole
/// message is byte-swapped before it is added (RFC 1071 §2(B)), so
/// `add(a); add(b)` equals `add(a + b)` for any split.
public struct InternetChecksum: Sendable, Equatable {
    /// Sum of big-endian words, unfolded. Each `add` adds at most 0x1_FFFE, so 2^47 adds fit.
    private var sum: UInt64 = 0
    /// Whether the bytes added so far have odd length.
    private var odd = false

    public init() {}

    /// Adds a block of bytes that continues the message.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        var partial = UInt64(Self.nativeSum(bytes).bigEndian)
        if odd { partial = UInt64(UInt16(partial).byteSwapped) }
        sum &+= partial
        if bytes.count & 1 == 1 { odd.toggle() }
    }

    /// Adds one 16-bit word (e.g. a protocol number or length) in host order.
    public mutating func add(_ word: UInt16) {
        sum &+= UInt64(odd ? word.byteSwapped : word)
    }

    /// Adds one 32-bit value (e.g. an IPv4 address) in host order, as two words.
    public mutating func add(_ word: UInt32) {
        add(UInt16(word >> 16))
        add(UInt16(truncatingIfNeeded: word))
    }

    /// The folded one's-complement sum (0xFFFF for a message whose checksum verifies).
    public var folded: UInt16 { Self.fold(sum) }

    /// The value to write in a checksum field: the complement of the folded sum.
    public var checksum: UInt16 { ~folded }

    /// The checksum of one buffer, as written in a header (the field itself zeroed).
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var c = InternetChecksum()
        c.add(bytes)
        return c.checksum
    }

    /// Whether a buffer that includes its checksum field sums to all ones.
    public static func verifies(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var c = InternetChecksum()
        c.add(bytes)
        return c.folded == 0xFFFF
    }

    /// The TCP/UDP pseudo-header (RFC 768, RFC 793 §3.1) as a starting sum.
    /// - Parameters:
    ///   - source: the IPv4 source address.
    ///   - destination: the IPv4 destination address.
    ///   - proto: the transport protocol (TCP or UDP).
    ///   - length: the transport header plus payload length, in bytes.
    public static func pseudoHeader(
        source: IPv4Address, destination: IPv4Address, protocol proto: IPProtocol, length: Int
    ) -> InternetChecksum {
        var c = InternetChecksum()
        c.add(source.rawValue)
        c.add(destination.rawValue)
        c.add(UInt16(proto.rawValue))
        c.add(UInt16(truncatingIfNeeded: length))
        return c
    }

    /// A checksum field updated for one 16-bit word changing from `old` to `new`, without
    /// summing the message again (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')).
    public static func update(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        ~fold(UInt64(~checksum) + UInt64(~old) + UInt64(new))
    }

    @inline(__always)
    static func fold(_ value: UInt64) -> UInt16 {
        var s = value
        s = (s & 0xFFFF_FFFF) + (s >> 32)
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        return UInt16(truncatingIfNeeded: s)
    }

    /// One's-complement sum of the buffer read as native-order 16-bit words, folded.
    /// Eight bytes are loaded at a time and their two 32-bit halves added into a 64-bit
    /// accumulator, so no carry is lost for buffers under 2^32 bytes.
    @inline(__always)
    static func nativeSum(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        let n = bytes.count
        var a: UInt64 = 0, b: UInt64 = 0
        var i = 0
        while i + 16 <= n {
            let x = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let y = bytes.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)
            a &+= (x & 0xFFFF_FFFF) &+ (x >> 32)
            b &+= (y & 0xFFFF_FFFF) &+ (y >> 32)
            i += 16
        }
        if i + 8 <= n {
            let x = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            a &+= (x & 0xFFFF_FFFF) &+ (x >> 32)
            i += 8
        }
        if i + 4 <= n {
            a &+= UInt64(bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            i += 4
        }
        if i + 2 <= n {
            a &+= UInt64(bytes.loadUnaligned(fromByteOffset: i, as: UInt16.self))
            i += 2
        }
        if i < n {
            // The last byte of an odd-length block is the high byte of a big-endian word
            // padded with zero; in native order that is this same value loaded as a word.
            a &+= UInt64(UInt16(bigEndian: UInt16(bytes[i]) << 8))
        }
        // a + b may carry past 64 bits only for absurd lengths; fold each first.
        return fold(UInt64(fold(a)) + UInt64(fold(b)))
    }
}
