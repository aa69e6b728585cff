// Addresses.swift: MAC and IPv4 addresses as value types, with parsing and printing.

/// A 48-bit IEEE 802 MAC address.
public struct MACAddress: Hashable, Sendable, Comparable, LosslessStringConvertible {
    /// The six octets as the low 48 bits, first octet most significant.
    public let rawValue: UInt64

    @inlinable public static var length: Int { 6 }
    @inlinable public static var broadcast: MACAddress { MACAddress(rawValue: 0xFFFF_FFFF_FFFF) }
    @inlinable public static var zero: MACAddress { MACAddress(rawValue: 0) }

    @inlinable
    public init(rawValue: UInt64) { self.rawValue = rawValue & 0xFFFF_FFFF_FFFF }

    @inlinable
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, _ e: UInt8, _ f: UInt8) {
        rawValue = UInt64(a) << 40 | UInt64(b) << 32 | UInt64(c) << 24 | UInt64(d) << 16 | UInt64(e) << 8 | UInt64(f)
    }

    /// Parses six hex octets separated by `:` or `-` ("02:00:00:00:00:0a").
    public init?(_ text: String) {
        var value: UInt64 = 0, octet: UInt64 = 0, octets = 0, digits = 0, separator: UInt8 = 0
        for c in text.utf8 {
            if let d = hexValue(c) {
                guard digits < 2 else { return nil }
                octet = octet << 4 | UInt64(d)
                digits += 1
            } else if c == UInt8(ascii: ":") || c == UInt8(ascii: "-") {
                guard digits > 0, octets < 5, separator == 0 || separator == c else { return nil }
                separator = c
                value = value << 8 | octet
                octet = 0
                octets += 1
                digits = 0
            } else {
                return nil
            }
        }
        guard digits > 0, octets == 5 else { return nil }
        rawValue = value << 8 | octet
    }

    /// Reads six bytes at `offset` (bounds already checked by the caller).
    init(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        rawValue = UInt64(bytes.u16(offset)) << 32 | UInt64(bytes.u32(offset + 2))
    }

    func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        buffer.put(UInt16(truncatingIfNeeded: rawValue >> 32), at: offset)
        buffer.put(UInt32(truncatingIfNeeded: rawValue), at: offset + 2)
    }

    /// Octet `i`, 0 to 5.
    @inlinable
    public subscript(i: Int) -> UInt8 { UInt8(truncatingIfNeeded: rawValue >> (40 - 8 * UInt64(i))) }

    @inlinable
    public var isBroadcast: Bool { self == .broadcast }
    /// Group bit (I/G) set: multicast or broadcast.
    @inlinable
    public var isMulticast: Bool { self[0] & 1 == 1 }
    @inlinable
    public var isUnicast: Bool { !isMulticast }
    /// U/L bit set: a locally administered address.
    @inlinable
    public var isLocallyAdministered: Bool { self[0] & 2 == 2 }

    public var description: String {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(17)
        for i in 0..<6 {
            if i > 0 { out.append(UInt8(ascii: ":")) }
            out.append(hex[Int(self[i] >> 4)])
            out.append(hex[Int(self[i] & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    @inlinable
    public static func < (a: MACAddress, b: MACAddress) -> Bool { a.rawValue < b.rawValue }
    @inlinable
    public static func == (a: MACAddress, b: MACAddress) -> Bool { a.rawValue == b.rawValue }
    @inlinable
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }
}

/// An IPv4 address.
public struct IPv4Address: Hashable, Sendable, Comparable, LosslessStringConvertible {
    /// The address as a host-order integer (192.0.2.1 is 0xC000_0201).
    public let rawValue: UInt32

    @inlinable public static var length: Int { 4 }
    @inlinable public static var any: IPv4Address { IPv4Address(rawValue: 0) }
    @inlinable public static var broadcast: IPv4Address { IPv4Address(rawValue: 0xFFFF_FFFF) }
    @inlinable public static var loopback: IPv4Address { IPv4Address(127, 0, 0, 1) }

    @inlinable
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    @inlinable
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses a dotted quad the way `inet_pton(AF_INET)` does: exactly four decimal
    /// octets, each 0–255, no leading zeros (which some parsers read as octal).
    public init?(_ text: String) {
        var value: UInt32 = 0, octet: UInt32 = 0, digits = 0, dots = 0
        for c in text.utf8 {
            if c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                if digits > 0 && octet == 0 { return nil }
                octet = octet * 10 + UInt32(c - UInt8(ascii: "0"))
                digits += 1
                guard octet <= 255 else { return nil }
            } else if c == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                value = value << 8 | octet
                octet = 0
                digits = 0
                dots += 1
            } else {
                return nil
            }
        }
        guard digits > 0, dots == 3 else { return nil }
        rawValue = value << 8 | octet
    }

    init(_ bytes: UnsafeRawBufferPointer, at offset: Int) { rawValue = bytes.u32(offset) }

    func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int) { buffer.put(rawValue, at: offset) }

    /// Octet `i`, 0 to 3.
    @inlinable
    public subscript(i: Int) -> UInt8 { UInt8(truncatingIfNeeded: rawValue >> (24 - 8 * UInt32(i))) }

    @inlinable
    public var isUnspecified: Bool { rawValue == 0 }
    @inlinable
    public var isBroadcast: Bool { rawValue == 0xFFFF_FFFF }
    /// 224.0.0.0/4.
    @inlinable
    public var isMulticast: Bool { rawValue >> 28 == 0xE }
    /// 127.0.0.0/8.
    @inlinable
    public var isLoopback: Bool { rawValue >> 24 == 127 }
    /// 169.254.0.0/16.
    @inlinable
    public var isLinkLocal: Bool { rawValue >> 16 == 0xA9FE }

    public var description: String { "\(self[0]).\(self[1]).\(self[2]).\(self[3])" }

    @inlinable
    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.rawValue < b.rawValue }
    @inlinable
    public static func == (a: IPv4Address, b: IPv4Address) -> Bool { a.rawValue == b.rawValue }
    @inlinable
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }
}

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
}
