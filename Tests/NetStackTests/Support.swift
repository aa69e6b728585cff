// Support.swift: the receive pipeline the tests drive (Ethernet → ARP | IPv4 → fragments →
// ICMP | UDP), rebuilding a frame from parsed values, and a seeded random generator.
@testable import NetProtocols
@testable import NetStack

/// What the pipeline made of one frame.
enum Dissected: Equatable {
    case arp(EthernetHeader, ARPPacket)
    case icmp(EthernetHeader, IPv4Header, ICMPMessage, dataLength: Int)
    case udp(EthernetHeader, IPv4Header, UDPHeader)
    /// A fragment kept for reassembly.
    case fragmentHeld
    /// A fragment the reassembler dropped.
    case fragmentDropped(ReassemblyDrop)
    /// Parsed, but a protocol the pipeline does not carry further (IPv6, TCP, ...).
    case ignored
    /// Refused by a parser, counted in `WireCounters`.
    case refused(WireLayer, WireError)
}

/// Receive-side state the pipeline needs: refusal counters and the reassembler.
struct Receiver {
    var counters = WireCounters()
    var reassembler = IPv4Reassembler()
    var now: Int64 = 0

    mutating func receive(_ frame: [UInt8]) -> Dissected {
        frame.withUnsafeBytes { receive($0) }
    }

    mutating func receive(_ bytes: UnsafeRawBufferPointer) -> Dissected {
        let frame: EthernetFrame
        do { frame = try EthernetFrame(validating: bytes) } catch { return refuse(.ethernet, error) }
        let ethernet = EthernetHeader(frame)
        switch frame.etherType {
        case .arp:
            do { return .arp(ethernet, try ARPPacket.parse(frame.payload)) } catch { return refuse(.arp, error) }
        case .ipv4:
            let packet: IPv4Packet
            do { packet = try IPv4Packet(validating: frame.payload) } catch { return refuse(.ipv4, error) }
            if packet.isFragment {
                switch reassembler.receive(packet, now: now) {
                case .incomplete: return .fragmentHeld
                case .dropped(let reason): return .fragmentDropped(reason)
                case .complete(let datagram):
                    return datagram.payload.withUnsafeBytes { transport(ethernet, datagram.header, $0) }
                }
            }
            return transport(ethernet, IPv4Header(packet), packet.payload)
        default:
            return .ignored
        }
    }

    mutating func transport(_ ethernet: EthernetHeader, _ ip: IPv4Header, _ payload: UnsafeRawBufferPointer) -> Dissected {
        switch ip.protocol {
        case .icmp:
            do {
                let packet = try ICMPPacket(validating: payload)
                return .icmp(ethernet, ip, try ICMPMessage(packet), dataLength: packet.payload.count)
            } catch { return refuse(.icmp, error) }
        case .udp:
            do {
                return .udp(ethernet, ip, try UDPHeader.parse(payload, source: ip.source, destination: ip.destination))
            } catch { return refuse(.udp, error) }
        default:
            return .ignored
        }
    }

    mutating func refuse(_ layer: WireLayer, _ error: WireError) -> Dissected {
        counters.record(error, in: layer)
        return .refused(layer, error)
    }
}

/// Rebuilds an unfragmented frame from its parsed values, copying only the opaque data
/// (echo data, UDP payload, an ICMP error's quote) from the original.
func reemit(_ original: [UInt8]) throws -> [UInt8] {
    try original.withUnsafeBytes { (bytes) throws -> [UInt8] in
        var out = [UInt8](repeating: 0xEE, count: bytes.count)
        let written = try out.withUnsafeMutableBytes { (buffer) throws -> Int in
            let frame = try EthernetFrame(validating: bytes)
            var at = try EthernetHeader(frame).emit(into: buffer)
            let rest = UnsafeMutableRawBufferPointer(rebasing: buffer[at...])
            switch frame.etherType {
            case .arp:
                at += try ARPPacket.parse(frame.payload).emit(into: rest)
            case .ipv4:
                let packet = try IPv4Packet(validating: frame.payload)
                var header = IPv4Header(packet)
                let l4 = UnsafeMutableRawBufferPointer(rebasing: rest[IPv4Header.length...])
                var written = packet.payload.count
                if packet.isFragment {
                    l4.copyMemory(from: packet.payload)
                } else if header.protocol == .icmp {
                    let icmp = try ICMPPacket(validating: packet.payload)
                    let message = try ICMPMessage(icmp)
                    switch message {
                    case .echoRequest, .echoReply:
                        UnsafeMutableRawBufferPointer(rebasing: l4[8...]).copyMemory(from: icmp.payload)
                        written = try message.emit(into: l4, payloadLength: icmp.payload.count)
                    case .destinationUnreachable, .timeExceeded:
                        written = try message.emitError(quoting: icmp.payload, into: l4)   // may cut the quote
                    }
                } else if header.protocol == .udp {
                    let udp = try UDPDatagram(validating: packet.payload, source: header.source, destination: header.destination)
                    UnsafeMutableRawBufferPointer(rebasing: l4[8...]).copyMemory(from: udp.payload)
                    let n = try UDPHeader(udp).emit(into: l4, source: header.source, destination: header.destination,
                                                   computeChecksum: udp.hasChecksum)
                    // Bytes after the UDP length but inside the IPv4 total length stay as sent.
                    UnsafeMutableRawBufferPointer(rebasing: l4[n..<written]).copyMemory(from: packet.payload.from(n))
                } else {
                    l4.copyMemory(from: packet.payload)
                }
                header.payloadLength = written
                at += try header.emit(into: rest) + written
            default:
                break
            }
            return at
        }
        return Array(out[..<written])
    }
}

/// SplitMix64: a small seeded generator, so every fuzz run sees the same inputs.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Array where Element == UInt8 {
    /// Big-endian 16-bit word at `offset`.
    func u16(_ offset: Int) -> UInt16 { UInt16(self[offset]) << 8 | UInt16(self[offset + 1]) }
    mutating func put16(_ value: UInt16, at offset: Int) {
        self[offset] = UInt8(value >> 8)
        self[offset + 1] = UInt8(truncatingIfNeeded: value)
    }
}
