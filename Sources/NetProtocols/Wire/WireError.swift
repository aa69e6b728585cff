// WireError.swift: why a parser refused a packet, and per-layer counts of refusals.

/// The reason a packet (or an emit request) was refused by the Wire layer.
///
/// Every parser in `Wire/` throws exactly one of these; `WireCounters` counts them per
/// layer the way `netstat -s` reports `InHdrErrors`, `InCsumErrors` and friends.
public enum WireError: UInt8, Error, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    /// The buffer is shorter than the fixed header, or than the packet's own length fields say.
    case truncated
    /// The EtherType/length field is below 0x0600: an IEEE 802.3 length, not Ethernet II.
    case notEthernetII
    /// ARP hardware type other than Ethernet (1).
    case unsupportedHardwareType
    /// ARP protocol type other than IPv4 (0x0800).
    case unsupportedProtocolType
    /// ARP hardware/protocol address lengths other than 6 and 4.
    case badAddressLength
    /// ARP operation other than request (1) or reply (2).
    case unsupportedOperation
    /// IPv4 version field is not 4.
    case badVersion
    /// IPv4 header length (IHL) below 5 words.
    case badHeaderLength
    /// IPv4 total length smaller than the header it announces.
    case totalLengthInconsistent
    /// A fragment that would end past 65535 bytes (the "ping of death").
    case badFragmentOffset
    /// Header (IPv4) or message (ICMP, UDP with its pseudo-header) checksum does not verify.
    case badChecksum
    /// UDP length field smaller than the 8-byte header.
    case badLength
    /// ICMP type this stack does not parse.
    case unsupportedMessageType
    /// ICMP code not defined for its type.
    case badCode
    /// An ICMP error that does not quote an IPv4 header and 8 bytes of its payload.
    case badQuotedPacket
    /// Emit: the caller's buffer is shorter than the bytes to write, or a field is out of range.
    case bufferTooSmall
    /// Emit: a value that cannot be encoded (e.g. an IPv4 fragment offset not a multiple of 8).
    case unencodable

    public var description: String {
        switch self {
        case .truncated: "truncated"
        case .notEthernetII: "not Ethernet II (802.3 length field)"
        case .unsupportedHardwareType: "unsupported hardware type"
        case .unsupportedProtocolType: "unsupported protocol type"
        case .badAddressLength: "bad address length"
        case .unsupportedOperation: "unsupported operation"
        case .badVersion: "bad version"
        case .badHeaderLength: "bad header length"
        case .totalLengthInconsistent: "total length inconsistent"
        case .badFragmentOffset: "bad fragment offset"
        case .badChecksum: "bad checksum"
        case .badLength: "bad length"
        case .unsupportedMessageType: "unsupported message type"
        case .badCode: "bad code"
        case .badQuotedPacket: "bad quoted packet"
        case .bufferTooSmall: "buffer too small"
        case .unencodable: "unencodable value"
        }
    }
}

/// The protocol layer a refusal is counted against.
public enum WireLayer: Int, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    case ethernet, arp, ipv4, icmp, udp, tcp

    public var description: String {
        switch self {
        case .ethernet: "Ethernet"
        case .arp: "ARP"
        case .ipv4: "IPv4"
        case .icmp: "ICMP"
        case .udp: "UDP"
        case .tcp: "TCP"
        }
    }
}

/// Counts of refused packets per layer and reason, fixed-size and allocation-free.
///
/// ```swift
/// var counters = WireCounters()
/// guard let frame = counters.counting(.ethernet, { () throws(WireError) in
///     try EthernetFrame(validating: bytes) }) else { return }
/// ```
public struct WireCounters: Sendable, Equatable, CustomStringConvertible {
    @usableFromInline static let reasons = 17
    @usableFromInline static let slots = 6 * 17
    @usableFromInline var counts = InlineArray<102, UInt64>(repeating: 0)

    public init() {
        precondition(WireError.allCases.count == Self.reasons && WireLayer.allCases.count * Self.reasons == Self.slots,
                     "resize WireCounters.counts")
    }

    /// Counts one refusal.
    @inlinable
    public mutating func record(_ error: WireError, in layer: WireLayer) {
        counts[layer.rawValue * Self.reasons + Int(error.rawValue)] &+= 1
    }

    /// Refusals counted for one layer and reason.
    public subscript(layer: WireLayer, reason: WireError) -> UInt64 {
        counts[layer.rawValue * Self.reasons + Int(reason.rawValue)]
    }

    /// All refusals counted for one layer.
    public func total(_ layer: WireLayer) -> UInt64 {
        WireError.allCases.reduce(0) { $0 &+ self[layer, $1] }
    }

    /// All refusals counted.
    public var total: UInt64 { WireLayer.allCases.reduce(0) { $0 &+ total($1) } }

    /// Runs a parser, counting its refusal (if any) against `layer`.
    /// - Returns: the parser's value, or nil when it threw.
    @inlinable
    public mutating func counting<T>(_ layer: WireLayer, _ parse: () throws(WireError) -> T) -> T? {
        do { return try parse() } catch {
            record(error, in: layer)
            return nil
        }
    }

    public static func == (a: WireCounters, b: WireCounters) -> Bool {
        for i in 0..<slots where a.counts[i] != b.counts[i] { return false }
        return true
    }

    /// Non-zero counts, one per line, as `netstat -s` prints them ("IPv4: 3 bad checksum").
    public var description: String {
        var lines: [String] = []
        for layer in WireLayer.allCases {
            for reason in WireError.allCases where self[layer, reason] != 0 {
                lines.append("\(layer): \(self[layer, reason]) \(reason)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
