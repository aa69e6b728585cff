// CapturedPacketTests.swift: frames captured from Linux parse to the fields Linux sent,
// and emitting those fields gives back the same bytes.
import NetStack
import Testing

let macA = MACAddress(2, 0, 0, 0, 0, 0x0a), macB = MACAddress(2, 0, 0, 0, 0, 0x0b)
let ipA = IPv4Address(192, 0, 2, 1), ipB = IPv4Address(192, 0, 2, 2)

@Suite("Wire: packets captured from Linux")
struct CapturedPacketTests {
    static let unfragmented = Captured.all.filter { !$0.name.hasPrefix("fragmented") }

    @Test("parse, emit the parsed values, get the captured bytes back", arguments: unfragmented.map(\.name))
    func roundTrip(name: String) throws {
        let frame = Captured.all.first { $0.name == name }!.bytes
        #expect(try reemit(frame) == frame)
    }

    @Test("fragment headers round-trip too", arguments: Captured.all.filter { $0.name.hasPrefix("fragmented") }.map(\.name))
    func fragmentRoundTrip(name: String) throws {
        let frame = Captured.all.first { $0.name == name }!.bytes
        #expect(try reemit(frame) == frame)
    }

    @Test("ARP request and reply")
    func arp() throws {
        var rx = Receiver()
        #expect(rx.receive(Captured.arpRequest) == .arp(
            EthernetHeader(destination: .broadcast, source: macA, etherType: .arp),
            ARPPacket(operation: .request, senderHardwareAddress: macA, senderProtocolAddress: ipA,
                      targetHardwareAddress: .zero, targetProtocolAddress: ipB)))
        #expect(rx.receive(Captured.arpReply) == .arp(
            EthernetHeader(destination: macA, source: macB, etherType: .arp),
            ARPPacket(operation: .reply, senderHardwareAddress: macB, senderProtocolAddress: ipB,
                      targetHardwareAddress: macA, targetProtocolAddress: ipA)))
        #expect(rx.counters.total == 0)
    }

    @Test("ping: echo request and reply")
    func echo() throws {
        var rx = Receiver()
        let request = IPv4Header(source: ipA, destination: ipB, protocol: .icmp, payloadLength: 64,
                                 timeToLive: 64, identification: 0x0EE8, dontFragment: true)
        #expect(rx.receive(Captured.echoRequest) == .icmp(
            EthernetHeader(destination: macB, source: macA, etherType: .ipv4), request,
            .echoRequest(identifier: 0x43AF, sequence: 1), dataLength: 56))
        let reply = IPv4Header(source: ipB, destination: ipA, protocol: .icmp, payloadLength: 64,
                               timeToLive: 64, identification: 0xB3D2, dontFragment: false)
        #expect(rx.receive(Captured.echoReply) == .icmp(
            EthernetHeader(destination: macA, source: macB, etherType: .ipv4), reply,
            .echoReply(identifier: 0x43AF, sequence: 1), dataLength: 56))
        // The view's accessors agree with the value, and the data is ping's pattern.
        try Captured.echoRequest.withUnsafeBytes { bytes in
            let ip = try IPv4Packet(validating: try EthernetFrame(validating: bytes).payload)
            #expect(ip.headerChecksum == 0xA7BD && ip.options.isEmpty && ip.timeToLive == 64 && ip.version == 4)
            let icmp = try ICMPPacket(validating: ip.payload)
            #expect(icmp.type == 8 && icmp.code == 0 && icmp.checksum == 0xD700)
            #expect(Array(icmp.payload.suffix(10)) == Array("Junction".utf8.suffix(2)) + Array("Junction".utf8))
        }
    }

    @Test("UDP with a checksum, without one (SO_NO_CHECK), and its port unreachable")
    func udp() throws {
        var rx = Receiver()
        guard case .udp(_, let ip, let udp) = rx.receive(Captured.udp) else { Issue.record("not UDP"); return }
        #expect(ip.source == ipA && ip.destination == ipB && ip.identification == 0xF6C5)
        #expect(udp == UDPHeader(sourcePort: 40000, destinationPort: 5353, payloadLength: 12))
        try Captured.udp.withUnsafeBytes { bytes in
            let udp = try UDPDatagram(validating: bytes.from(34), source: ipA, destination: ipB)
            #expect(udp.checksum == 0x97A6 && udp.hasChecksum)
            #expect(String(decoding: udp.payload, as: UTF8.self) == "hello, wire\n")
        }
        try Captured.udpNoChecksum.withUnsafeBytes { bytes in
            let udp = try UDPDatagram(validating: bytes.from(34), source: ipA, destination: ipB)
            #expect(!udp.hasChecksum && String(decoding: udp.payload, as: UTF8.self) == "no checksum")
        }
        guard case .icmp(_, let eip, let message, let quoted) = rx.receive(Captured.portUnreachable) else {
            Issue.record("not ICMP"); return
        }
        #expect(message == .destinationUnreachable(.port, nextHopMTU: 0))
        #expect(eip.dscp == 48 && eip.source == ipB && quoted == 35)
        // The quote is the datagram A sent, byte for byte (Linux quotes all of it).
        #expect(Array(Captured.portUnreachable[42...]) == Array(Captured.udpToClosedPort[14...]))
        try Captured.portUnreachable.withUnsafeBytes { bytes in
            let icmp = try ICMPPacket(validating: bytes.from(34))
            let original = try IPv4Packet(validatingQuoted: icmp.payload)
            #expect(original.protocol == .udp && original.source == ipA && original.destination == ipB)
            #expect(original.payload.word(at: 2) == 9)   // the closed port
        }
        #expect(rx.counters.total == 0)
    }

    @Test("time exceeded quotes the TTL-1 echo request")
    func timeExceeded() throws {
        var rx = Receiver()
        guard case .icmp(_, _, let message, let quoted) = rx.receive(Captured.timeExceeded) else {
            Issue.record("not ICMP"); return
        }
        #expect(message == .timeExceeded(.timeToLive))
        #expect(quoted == Captured.echoRequestTTL1.count - 14)
        #expect(Array(Captured.timeExceeded[42...]) == Array(Captured.echoRequestTTL1[14...]))
    }

    @Test("the fragmented pings reassemble into one valid echo of 3000 bytes of data")
    func fragmentedEcho() throws {
        for (pieces, type) in [([Captured.fragmentedEchoRequest1, Captured.fragmentedEchoRequest2, Captured.fragmentedEchoRequest3], 8),
                               ([Captured.fragmentedEchoReply1, Captured.fragmentedEchoReply2, Captured.fragmentedEchoReply3], 0)] {
            var rx = Receiver()
            #expect(rx.receive(pieces[0]) == .fragmentHeld)
            #expect(rx.receive(pieces[1]) == .fragmentHeld)
            guard case .icmp(_, let ip, let message, let dataLength) = rx.receive(pieces[2]) else {
                Issue.record("not reassembled"); continue
            }
            #expect(dataLength == 3000 && ip.payloadLength == 3008 && !ip.moreFragments && ip.fragmentOffset == 0)
            #expect(message == (type == 8 ? .echoRequest(identifier: 0x43B0, sequence: 1) : .echoReply(identifier: 0x43B0, sequence: 1)))
            #expect(rx.reassembler.counters.reassembled == 1 && rx.reassembler.pending == 0 && rx.reassembler.bytesBuffered == 0)
        }
    }
}

extension UnsafeRawBufferPointer {
    func from(_ offset: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: self[offset...]) }
    func word(at offset: Int) -> UInt16 { UInt16(self[offset]) << 8 | UInt16(self[offset + 1]) }
}

/// The README's example, kept compiling and true.
func readmeExample(_ frame: [UInt8], _ counters: inout WireCounters) -> String? {
    frame.withUnsafeBytes { bytes -> String? in
        guard let eth = counters.counting(.ethernet, { () throws(WireError) in try EthernetFrame(validating: bytes) }),
              eth.etherType == .ipv4,
              let ip = counters.counting(.ipv4, { () throws(WireError) in try IPv4Packet(validating: eth.payload) }),
              ip.protocol == .udp,
              let udp = counters.counting(.udp, { () throws(WireError) in
                  try UDPDatagram(validating: ip.payload, source: ip.source, destination: ip.destination) })
        else { return nil }
        return "\(ip.source):\(udp.sourcePort) -> \(ip.destination):\(udp.destinationPort), \(udp.payload.count) bytes"
    }
}

@Test("the README example reads the captured UDP datagram and counts a bad one")
func readme() {
    var counters = WireCounters()
    #expect(readmeExample(Captured.udp, &counters) == "192.0.2.1:40000 -> 192.0.2.2:5353, 12 bytes")
    var bad = Captured.udp
    bad[22] -= 1
    #expect(readmeExample(bad, &counters) == nil)
    #expect(counters.description == "IPv4: 1 bad checksum")
}
