// RejectionTests.swift: every reason a parser can give, triggered by a crafted packet,
// and counted against its layer.
@testable import NetProtocols
@testable import NetStack
import Testing

/// A frame carrying `l4` in an IPv4 packet from A to B, every checksum right.
func ipv4Frame(protocol proto: IPProtocol, _ l4: [UInt8], fragmentOffset: Int = 0, moreFragments: Bool = false) -> [UInt8] {
    var frame = [UInt8](repeating: 0, count: 34 + l4.count)
    frame.withUnsafeMutableBytes { b in
        _ = try! EthernetHeader(destination: macB, source: macA, etherType: .ipv4).emit(into: b)
        _ = try! IPv4Header(source: ipA, destination: ipB, protocol: proto, payloadLength: l4.count, identification: 7,
                            dontFragment: false, moreFragments: moreFragments, fragmentOffset: fragmentOffset)
            .emit(into: UnsafeMutableRawBufferPointer(rebasing: b[14...]))
    }
    frame.replaceSubrange(34..., with: l4)
    return frame
}

/// An ICMP message with the checksum right.
func icmp(type: UInt8, code: UInt8, rest: UInt32 = 0, _ data: [UInt8] = []) -> [UInt8] {
    var m: [UInt8] = [type, code, 0, 0, UInt8(rest >> 24), UInt8(truncatingIfNeeded: rest >> 16),
                      UInt8(truncatingIfNeeded: rest >> 8), UInt8(truncatingIfNeeded: rest)] + data
    m.put16(m.withUnsafeBytes { InternetChecksum.checksum($0) }, at: 2)
    return m
}

/// Fixes the IPv4 header checksum of a frame after a field was changed.
func fixIPv4Checksum(_ frame: inout [UInt8]) {
    let ihl = Int(frame[14] & 15) * 4
    frame.put16(0, at: 24)
    frame.put16(frame[14..<14 + ihl].withUnsafeBytes { InternetChecksum.checksum($0) }, at: 24)
}

func mutated(_ frame: [UInt8], _ change: (inout [UInt8]) -> Void) -> [UInt8] {
    var f = frame
    change(&f)
    return f
}

/// The quote of the captured UDP datagram to a closed port: its IPv4 header and payload.
let quote = Array(Captured.udpToClosedPort[14...])

struct Rejection: CustomTestStringConvertible, Sendable {
    let name: String
    let layer: WireLayer
    let reason: WireError
    let frame: [UInt8]
    var testDescription: String { "\(layer) \(reason): \(name)" }
}

let rejections: [Rejection] = [
    Rejection(name: "13 bytes", layer: .ethernet, reason: .truncated, frame: Array(Captured.arpRequest[..<13])),
    Rejection(name: "VLAN tag cut", layer: .ethernet, reason: .truncated,
              frame: Array(Captured.arpRequest[..<12]) + [0x81, 0x00, 0x00]),
    Rejection(name: "802.3 length field", layer: .ethernet, reason: .notEthernetII,
              frame: mutated(Captured.arpRequest) { $0.put16(46, at: 12) }),
    Rejection(name: "7 bytes of ARP", layer: .arp, reason: .truncated, frame: Array(Captured.arpRequest[..<21])),
    Rejection(name: "27 bytes of ARP", layer: .arp, reason: .truncated, frame: Array(Captured.arpRequest[..<41])),
    Rejection(name: "hardware type 6 (IEEE 802)", layer: .arp, reason: .unsupportedHardwareType,
              frame: mutated(Captured.arpRequest) { $0.put16(6, at: 14) }),
    Rejection(name: "protocol type IPv6", layer: .arp, reason: .unsupportedProtocolType,
              frame: mutated(Captured.arpRequest) { $0.put16(0x86DD, at: 16) }),
    Rejection(name: "hardware length 8", layer: .arp, reason: .badAddressLength,
              frame: mutated(Captured.arpRequest) { $0[18] = 8 }),
    Rejection(name: "protocol length 16", layer: .arp, reason: .badAddressLength,
              frame: mutated(Captured.arpRequest) { $0[19] = 16 }),
    Rejection(name: "operation 3 (RARP)", layer: .arp, reason: .unsupportedOperation,
              frame: mutated(Captured.arpRequest) { $0.put16(3, at: 20) }),
    Rejection(name: "19 bytes of IPv4", layer: .ipv4, reason: .truncated, frame: Array(Captured.udp[..<33])),
    Rejection(name: "total length past the buffer", layer: .ipv4, reason: .truncated, frame: Array(Captured.udp.dropLast())),
    Rejection(name: "IHL 15 in a 40-byte packet", layer: .ipv4, reason: .truncated,
              frame: mutated(Captured.udp) { $0[14] = 0x4F }),
    Rejection(name: "version 6", layer: .ipv4, reason: .badVersion, frame: mutated(Captured.udp) { $0[14] = 0x65 }),
    Rejection(name: "IHL 4", layer: .ipv4, reason: .badHeaderLength, frame: mutated(Captured.udp) { $0[14] = 0x44 }),
    Rejection(name: "total length 19", layer: .ipv4, reason: .totalLengthInconsistent,
              frame: mutated(Captured.udp) { $0.put16(19, at: 16); fixIPv4Checksum(&$0) }),
    Rejection(name: "total length 20 with IHL 6", layer: .ipv4, reason: .totalLengthInconsistent,
              frame: mutated(Captured.udp) { $0[14] = 0x46; $0.put16(20, at: 16); fixIPv4Checksum(&$0) }),
    Rejection(name: "TTL changed, checksum not", layer: .ipv4, reason: .badChecksum,
              frame: mutated(Captured.udp) { $0[22] -= 1 }),
    Rejection(name: "ping of death: offset 65528 + 40 bytes", layer: .ipv4, reason: .badFragmentOffset,
              frame: mutated(Captured.udp) { $0.put16(0x1FFF, at: 20); fixIPv4Checksum(&$0) }),
    Rejection(name: "7 bytes of ICMP", layer: .icmp, reason: .truncated,
              frame: ipv4Frame(protocol: .icmp, Array(icmp(type: 8, code: 0)[..<7]))),
    Rejection(name: "echo data changed", layer: .icmp, reason: .badChecksum,
              frame: mutated(Captured.echoRequest) { $0[60] ^= 1 }),
    Rejection(name: "timestamp request (13)", layer: .icmp, reason: .unsupportedMessageType,
              frame: ipv4Frame(protocol: .icmp, icmp(type: 13, code: 0, Array(repeating: 0, count: 12)))),
    Rejection(name: "echo with code 1", layer: .icmp, reason: .badCode,
              frame: ipv4Frame(protocol: .icmp, icmp(type: 8, code: 1, rest: 0x0001_0001))),
    Rejection(name: "unreachable code 16", layer: .icmp, reason: .badCode,
              frame: ipv4Frame(protocol: .icmp, icmp(type: 3, code: 16, quote))),
    Rejection(name: "time exceeded code 2", layer: .icmp, reason: .badCode,
              frame: ipv4Frame(protocol: .icmp, icmp(type: 11, code: 2, quote))),
    Rejection(name: "unreachable quoting 27 bytes", layer: .icmp, reason: .badQuotedPacket,
              frame: ipv4Frame(protocol: .icmp, icmp(type: 3, code: 3, Array(quote[..<27])))),
    Rejection(name: "time exceeded quoting IPv6", layer: .icmp, reason: .badQuotedPacket,
              frame: ipv4Frame(protocol: .icmp, icmp(type: 11, code: 0, [0x60] + quote.dropFirst()))),
    Rejection(name: "7 bytes of UDP", layer: .udp, reason: .truncated,
              frame: ipv4Frame(protocol: .udp, [0, 1, 0, 2, 0, 7, 0])),
    Rejection(name: "UDP length past the IPv4 payload", layer: .udp, reason: .truncated,
              frame: ipv4Frame(protocol: .udp, [0, 1, 0, 2, 0, 9, 0, 0])),
    Rejection(name: "UDP length 7", layer: .udp, reason: .badLength,
              frame: ipv4Frame(protocol: .udp, [0, 1, 0, 2, 0, 7, 0, 0])),
    Rejection(name: "UDP payload changed", layer: .udp, reason: .badChecksum,
              frame: mutated(Captured.udp) { $0[45] ^= 0x20 }),
]

@Suite("Wire: every rejection reason")
struct RejectionTests {
    @Test("a crafted packet is refused with its reason, counted once", arguments: rejections)
    func refused(_ r: Rejection) {
        var rx = Receiver()
        #expect(rx.receive(r.frame) == .refused(r.layer, r.reason))
        #expect(rx.counters[r.layer, r.reason] == 1 && rx.counters.total == 1)
    }

    @Test("every parse-time reason has a crafted packet above")
    func everyReasonCovered() {
        let emitOnly: Set<WireError> = [.bufferTooSmall, .unencodable]
        #expect(Set(rejections.map(\.reason)) == Set(WireError.allCases).subtracting(emitOnly))
    }

    @Test("counters add up per layer and print like netstat -s")
    func counters() {
        var rx = Receiver()
        for r in rejections { _ = rx.receive(r.frame) }
        _ = rx.receive(Captured.udp)   // accepted: not counted
        #expect(rx.counters.total == UInt64(rejections.count))
        for layer in WireLayer.allCases {
            #expect(rx.counters.total(layer) == UInt64(rejections.filter { $0.layer == layer }.count))
        }
        #expect(rx.counters[.ipv4, .truncated] == 3)
        #expect(rx.counters.description.contains("IPv4: 1 bad checksum"))
        #expect(rx.counters.description.contains("ICMP: 3 bad code"))
        var again = WireCounters()
        #expect(again != rx.counters)
        let value = again.counting(.udp) { () throws(WireError) -> Int in throw .badLength }
        #expect(value == nil && again[.udp, .badLength] == 1)
        #expect(again.counting(.udp) { () throws(WireError) -> Int in 5 } == 5)
    }

    @Test("verifyChecksum: false accepts what only the checksum would refuse (offload)")
    func offload() throws {
        let frame = mutated(Captured.udp) { $0[22] -= 1; $0[45] ^= 0x20 }
        try frame.withUnsafeBytes { b in
            let ip = try IPv4Packet(validating: UnsafeRawBufferPointer(rebasing: b[14...]), verifyChecksum: false)
            _ = try UDPDatagram(validating: ip.payload, source: ip.source, destination: ip.destination, verifyChecksum: false)
            #expect(throws: WireError.badChecksum) { try IPv4Packet(validating: UnsafeRawBufferPointer(rebasing: b[14...])) }
        }
    }

    @Test("emit refuses short buffers and values it cannot encode")
    func emitErrors() {
        var small = [UInt8](repeating: 0, count: 19)
        small.withUnsafeMutableBytes { b in
            #expect(throws: WireError.bufferTooSmall) { try IPv4Header(source: ipA, destination: ipB, protocol: .udp, payloadLength: 0).emit(into: b) }
            #expect(throws: WireError.bufferTooSmall) { try ARPPacket(operation: .request, senderHardwareAddress: macA, senderProtocolAddress: ipA,
                                                                      targetHardwareAddress: .zero, targetProtocolAddress: ipB).emit(into: b) }
            #expect(throws: WireError.bufferTooSmall) { try EthernetHeader(destination: macA, source: macB, etherType: .ipv4,
                                                                           vlan: VLANTag(identifier: 1),
                                                                           serviceVLAN: VLANTag(tagProtocol: .qinq, identifier: 2)).emit(into: b) }
            #expect(throws: WireError.bufferTooSmall) { try UDPHeader(sourcePort: 1, destinationPort: 2, payloadLength: 12)
                .emit(into: b, source: ipA, destination: ipB) }
            #expect(throws: WireError.bufferTooSmall) { try ICMPMessage.echoRequest(identifier: 1, sequence: 1).emit(into: b, payloadLength: 12) }
        }
        var big = [UInt8](repeating: 0, count: 64)
        big.withUnsafeMutableBytes { b in
            #expect(throws: WireError.unencodable) { try IPv4Header(source: ipA, destination: ipB, protocol: .udp, payloadLength: 8,
                                                                    fragmentOffset: 12).emit(into: b) }
            #expect(throws: WireError.unencodable) { try IPv4Header(source: ipA, destination: ipB, protocol: .udp, payloadLength: 65516).emit(into: b) }
            #expect(throws: WireError.unencodable) { try IPv4Header(source: ipA, destination: ipB, protocol: .udp, payloadLength: 8, dscp: 64).emit(into: b) }
            #expect(throws: WireError.unencodable) { try EthernetHeader(destination: macA, source: macB, etherType: EtherType(rawValue: 46)).emit(into: b) }
            #expect(throws: WireError.unencodable) { try UDPHeader(sourcePort: 1, destinationPort: 2, payloadLength: 65528)
                .emit(into: b, source: ipA, destination: ipB) }
            #expect(throws: WireError.unencodable) { try ICMPMessage.echoReply(identifier: 1, sequence: 1)
                .emitError(quoting: UnsafeRawBufferPointer(b), into: b) }
        }
    }
}
