// ValueRoundTripTests.swift: any value emitted parses back to itself, and VLAN tags
// (inserted into captured frames) are read.
import NetStack
import PropertyBased
import Testing

/// A captured frame with `tags` (TPID, TCI) inserted after the MAC addresses.
func tagged(_ frame: [UInt8], _ tags: [(UInt16, UInt16)]) -> [UInt8] {
    var out = Array(frame[..<12])
    for (tpid, tci) in tags { out += [UInt8(tpid >> 8), UInt8(tpid & 0xFF), UInt8(tci >> 8), UInt8(tci & 0xFF)] }
    return out + frame[12...]
}

@Suite("Wire: values round-trip")
struct ValueRoundTripTests {
    @Test("802.1Q: one tag is read, the payload parses, and the header re-emits")
    func oneTag() throws {
        let frame = tagged(Captured.echoRequest, [(0x8100, 0xA064)])   // priority 5, VLAN 100
        var rx = Receiver()
        guard case .icmp(let ethernet, _, .echoRequest, _) = rx.receive(frame) else { Issue.record("not parsed"); return }
        #expect(ethernet.vlan == VLANTag(priority: 5, identifier: 100) && ethernet.serviceVLAN == nil)
        #expect(ethernet.etherType == .ipv4 && ethernet.headerLength == 18)
        #expect(try reemit(frame) == frame)
    }

    @Test("802.1ad: a service tag outside a customer tag")
    func twoTags() throws {
        let frame = tagged(Captured.arpRequest, [(0x88A8, 0x1007), (0x8100, 0x0064)])
        try frame.withUnsafeBytes { b in
            let f = try EthernetFrame(validating: b)
            #expect(f.tagCount == 2 && f.headerLength == 22 && f.etherType == .arp)
            #expect(f.tag(0) == VLANTag(tagProtocol: .qinq, dropEligible: true, identifier: 7))
            #expect(f.tag(1).identifier == 100)
        }
        #expect(try reemit(frame) == frame)
    }

    @Test("a third tag is left as the EtherType, which nothing above accepts")
    func threeTags() {
        let frame = tagged(Captured.arpRequest, [(0x88A8, 1), (0x8100, 2), (0x8100, 3)])
        var rx = Receiver()
        #expect(rx.receive(frame) == .ignored)
    }

    @Test("Ethernet header values")
    func ethernet() async {
        await propertyCheck(count: 200, input: Gen.uint64(), Gen.uint64(), Gen.uint16(in: 0x0600...0xFFFF), Gen.int(in: 0...2), Gen.uint16()) { d, s, type, tags, tci in
            guard type != 0x8100, type != 0x88A8 else { return }
            let outer = VLANTag(tagProtocol: .qinq, priority: UInt8(tci >> 13), dropEligible: tci & 0x1000 != 0, identifier: tci & 0xFFF)
            let inner = VLANTag(priority: 3, identifier: tci >> 4)
            let value = EthernetHeader(destination: MACAddress(rawValue: d), source: MACAddress(rawValue: s),
                                       etherType: EtherType(rawValue: type), vlan: tags > 0 ? inner : nil, serviceVLAN: tags > 1 ? outer : nil)
            var buffer = [UInt8](repeating: 0, count: 22)
            let n = buffer.withUnsafeMutableBytes { try! value.emit(into: $0) }
            #expect(n == 14 + 4 * tags)
            buffer.withUnsafeBytes { b in
                #expect((try? EthernetHeader.parse(UnsafeRawBufferPointer(rebasing: b[..<n]))) == value)
            }
        }
    }

    @Test("IPv4 header values")
    func ipv4() async {
        await propertyCheck(count: 200, input: Gen.uint32(), Gen.uint32(), Gen.uint8(), Gen.uint16(), Gen.int(in: 0...1500), Gen.int(in: 0...8000), Gen.uint8()) {
            src, dst, proto, id, payload, offsetUnits, bits in
            let value = IPv4Header(source: IPv4Address(rawValue: src), destination: IPv4Address(rawValue: dst), protocol: IPProtocol(rawValue: proto),
                                   payloadLength: payload, timeToLive: bits &* 7, identification: id, dontFragment: bits & 1 == 1,
                                   moreFragments: bits & 2 == 2, fragmentOffset: offsetUnits * 8, dscp: bits >> 2, ecn: bits & 3)
            var buffer = [UInt8](repeating: 0xA5, count: 20 + payload)
            buffer.withUnsafeMutableBytes { _ = try! value.emit(into: $0) }
            buffer.withUnsafeBytes { b in #expect((try? IPv4Header.parse(b)) == value) }
        }
    }

    @Test("ARP values")
    func arp() async {
        await propertyCheck(count: 200, input: Gen.uint64(), Gen.uint32(), Gen.uint64(), Gen.uint32(), Gen.bool()) { sh, sp, th, tp, reply in
            let value = ARPPacket(operation: reply ? .reply : .request, senderHardwareAddress: MACAddress(rawValue: sh),
                                  senderProtocolAddress: IPv4Address(rawValue: sp), targetHardwareAddress: MACAddress(rawValue: th),
                                  targetProtocolAddress: IPv4Address(rawValue: tp))
            var buffer = [UInt8](repeating: 0, count: 28)
            buffer.withUnsafeMutableBytes { _ = try! value.emit(into: $0) }
            buffer.withUnsafeBytes { b in #expect((try? ARPPacket.parse(b)) == value) }
        }
    }

    @Test("UDP headers with any payload, with and without a checksum")
    func udp() async {
        await propertyCheck(count: 200, input: Gen.uint16(), Gen.uint16(), Gen.uint8().array(of: 0...100), Gen.bool()) { sp, dp, payload, sum in
            let value = UDPHeader(sourcePort: sp, destinationPort: dp, payloadLength: payload.count)
            var buffer = [UInt8](repeating: 0, count: 8) + payload
            buffer.withUnsafeMutableBytes { _ = try! value.emit(into: $0, source: ipA, destination: ipB, computeChecksum: sum) }
            buffer.withUnsafeBytes { b in
                let d = try? UDPDatagram(validating: b, source: ipA, destination: ipB)
                #expect(d.map(UDPHeader.init) == value && d?.hasChecksum == sum)
                #expect(d.map { Array($0.payload) } == payload)
            }
        }
    }

    @Test("ICMP echo with any data, and errors quoting any datagram up to 576 bytes")
    func icmp() async throws {
        await propertyCheck(count: 200, input: Gen.uint16(), Gen.uint16(), Gen.uint8().array(of: 0...100), Gen.bool()) { id, seq, data, reply in
            let value: ICMPMessage = reply ? .echoReply(identifier: id, sequence: seq) : .echoRequest(identifier: id, sequence: seq)
            var buffer = [UInt8](repeating: 0, count: 8) + data
            buffer.withUnsafeMutableBytes { _ = try! value.emit(into: $0, payloadLength: data.count) }
            buffer.withUnsafeBytes { b in #expect((try? ICMPMessage.parse(b)) == value) }
        }
        // An error quotes the offending packet, cut so the whole error fits in 576 bytes.
        let big = Array(Captured.fragmentedEchoRequest1[14...])
        var buffer = [UInt8](repeating: 0, count: 1500)
        let n = try buffer.withUnsafeMutableBytes { b in
            try big.withUnsafeBytes { original in
                try ICMPMessage.destinationUnreachable(.fragmentationNeeded, nextHopMTU: 1400).emitError(quoting: original, into: b)
            }
        }
        #expect(n == 576 - 20)
        try buffer.withUnsafeBytes { b in
            let packet = try ICMPPacket(validating: UnsafeRawBufferPointer(rebasing: b[..<n]))
            #expect(try ICMPMessage(packet) == .destinationUnreachable(.fragmentationNeeded, nextHopMTU: 1400))
            #expect(Array(packet.payload) == Array(big[..<(n - 8)]))
        }
    }
}

@Test("IPv4 options are exposed by the view, skipped by the value, and dropped on emit")
func ipv4Options() throws {
    // The captured UDP packet with a 4-byte option (NOP, NOP, NOP, end of list) added.
    var packet = Array(Captured.udp[14..<34]) + [1, 1, 1, 0] + Array(Captured.udp[34...])
    packet[0] = 0x46
    packet.put16(UInt16(packet.count), at: 2)
    packet.put16(0, at: 10)
    packet.put16(packet[..<24].withUnsafeBytes { InternetChecksum.checksum($0) }, at: 10)
    try packet.withUnsafeBytes { b in
        let ip = try IPv4Packet(validating: b)
        #expect(ip.headerLength == 24 && Array(ip.options) == [1, 1, 1, 0] && ip.payload.count == 20)
        let header = IPv4Header(ip)
        #expect(header.payloadLength == 20 && header.totalLength == 40)
        let udp = try UDPDatagram(validating: ip.payload, source: ip.source, destination: ip.destination)
        #expect(udp.destinationPort == 5353)
        // Emitted again without options, it is the packet Linux sent.
        var out = [UInt8](repeating: 0, count: 20)
        try out.withUnsafeMutableBytes { _ = try header.emit(into: $0) }
        #expect(out == Array(Captured.udp[14..<34]))
    }
}
