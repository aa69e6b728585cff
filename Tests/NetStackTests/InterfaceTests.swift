// InterfaceTests.swift: the interface's IPv4, ICMP and UDP input over a loopback pair
// whose far end the test plays with frames built from the Wire values: echo replies,
// port and protocol unreachable, address checks, reassembly, counters.
import NICQueues
@testable import NetProtocols
@testable import NetStack
import Testing

@Suite struct InterfaceTests {

    @Test func echoRequestsGetReplies() throws {
        let h = try InterfaceHarness()
        let (interface, clock, farMAC, ourMAC) = (h.interface, h.clock, h.farMAC, h.ourMAC)
        let data = Array(0..<UInt8(100))
        try inject(h.far, [ipv4Frame(from: farMAC, to: ourMAC, source: peerIP, destination: ourIP, protocol: .icmp,
                                   transport: icmpEchoBytes(identifier: 77, sequence: 3, data: data))])
        interface.poll(now: clock.now)
        let out = try drain(h.far).map(dissect)
        guard case .icmp(let ip, let m, let d)? = out.first, out.count == 1 else { Issue.record("\(out)"); return }
        #expect(ip.source == ourIP && ip.destination == peerIP && ip.timeToLive == 64)
        #expect(m == .echoReply(identifier: 77, sequence: 3) && d == data)
        let s = interface.statistics
        #expect(s.icmp.echoRequestsReceived == 1 && s.icmp.echoRepliesSent == 1 && s.ipv4.delivered == 1)
    }

    @Test func closedPortsAndUnknownProtocolsAreUnreachable() throws {
        let h = try InterfaceHarness()
        let (interface, clock, farMAC, ourMAC) = (h.interface, h.clock, h.farMAC, h.ourMAC)
        let udp = udpBytes(source: peerIP, destination: ourIP, sourcePort: 999, destinationPort: 4321, payload: [1, 2, 3])
        let datagram = ipv4Frame(from: farMAC, to: ourMAC, source: peerIP, destination: ourIP, protocol: .udp, transport: udp)
        try inject(h.far, [datagram,
                         ipv4Frame(from: farMAC, to: ourMAC, source: peerIP, destination: ourIP, protocol: IPProtocol(rawValue: 132), transport: [0, 0, 0, 0]),
                         // to the subnet broadcast: counted, never answered
                         ipv4Frame(from: farMAC, to: .broadcast, source: peerIP, destination: IPv4Address(10, 9, 0, 255), protocol: .udp,
                                   transport: udpBytes(source: peerIP, destination: IPv4Address(10, 9, 0, 255), sourcePort: 1, destinationPort: 2, payload: []))])
        interface.poll(now: clock.now)
        let out = try drain(h.far).map(dissect)
        #expect(out.count == 2)
        guard case .icmp(let ip, let m, let quote)? = out.first else { Issue.record("\(out)"); return }
        #expect(ip.destination == peerIP && m == .destinationUnreachable(.port, nextHopMTU: 0))
        #expect(quote == Array(datagram[14...]))   // the whole offending packet (it is short)
        if case .icmp(_, let m2, _)? = out.last { #expect(m2 == .destinationUnreachable(.protocol, nextHopMTU: 0)) }
        let s = interface.statistics
        #expect(s.udp.noPorts == 2 && s.icmp.unreachableSent == 2 && s.ipv4.unknownProtocols == 1)
    }

    @Test func packetsForOtherAddressesAndStationsAreCountedAndDropped() throws {
        let h = try InterfaceHarness()
        let (interface, clock, farMAC, ourMAC) = (h.interface, h.clock, h.farMAC, h.ourMAC)
        let other = IPv4Address(10, 9, 0, 50)
        try inject(h.far, [
            ipv4Frame(from: farMAC, to: ourMAC, source: peerIP, destination: other, protocol: .icmp,
                      transport: icmpEchoBytes(identifier: 1, sequence: 1, data: [])),
            ipv4Frame(from: farMAC, to: MAC(2, 9, 9, 9, 9, 9), source: peerIP, destination: ourIP, protocol: .icmp,
                      transport: icmpEchoBytes(identifier: 1, sequence: 1, data: [])),
            Array(ipv4Frame(from: farMAC, to: ourMAC, source: peerIP, destination: ourIP, protocol: .udp, transport: [])[..<24]),   // cut short
        ])
        interface.poll(now: clock.now)
        #expect(try drain(h.far).isEmpty)
        let s = interface.statistics
        #expect(s.ipv4.addressErrors == 1 && s.ethernet.notForUs == 1 && s.wire[.ipv4, .truncated] == 1)
    }

    @Test func fragmentedDatagramsAreReassembledAndDelivered() throws {
        let h = try InterfaceHarness()
        let (interface, clock, farMAC, ourMAC) = (h.interface, h.clock, h.farMAC, h.ourMAC)
        let socket = try UDPSocket(interface: interface, port: 7000)
        socket.isNonBlocking = true
        let payload = (0..<1200).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let udp = udpBytes(source: peerIP, destination: ourIP, sourcePort: 5, destinationPort: 7000, payload: payload)
        try inject(h.far, [
            ipv4Frame(from: farMAC, to: ourMAC, source: peerIP, destination: ourIP, protocol: .udp,
                      transport: Array(udp[600...]), fragment: (600, false), identification: 42),
            ipv4Frame(from: farMAC, to: ourMAC, source: peerIP, destination: ourIP, protocol: .udp,
                      transport: Array(udp[..<600]), fragment: (0, true), identification: 42),
        ])
        interface.poll(now: clock.now)
        var buffer = [UInt8](repeating: 0, count: 2000)
        let (n, from) = try socket.receiveFrom(into: &buffer)
        #expect(n == 1200 && Array(buffer[..<n]) == payload && from == SocketAddress(peerIP, 5))
        #expect(interface.statistics.reassembly.reassembled == 1)
    }

    /// A full receive queue drops (counted on the socket and as RcvbufErrors).
    @Test func receiveQueueIsBounded() throws {
        let pair = try LoopbackDevice.pair()
        let far = pair.b
        let farMAC = MAC(far.info.mac)
        let (interface, clock) = try manualInterface(pair.a) { $0.udpReceiveQueueLength = 4 }
        let ourMAC = interface.configuration.mac
        let socket = try UDPSocket(interface: interface, port: 7001)
        socket.isNonBlocking = true
        let frames = (0..<10).map { i in
            ipv4Frame(from: farMAC, to: ourMAC, source: peerIP, destination: ourIP, protocol: .udp,
                      transport: udpBytes(source: peerIP, destination: ourIP, sourcePort: 5, destinationPort: 7001, payload: [UInt8(i)]))
        }
        try inject(far, frames)
        interface.poll(now: clock.now)
        var got: [UInt8] = []
        var b = [UInt8](repeating: 0, count: 10)
        while let n = try? socket.receive(into: &b), n == 1 { got.append(b[0]) }
        #expect(got == [0, 1, 2, 3])
        #expect(throws: SocketError.wouldBlock) { _ = try socket.receive(into: &b) }
        #expect(socket.statistics.droppedQueueFull == 6 && interface.statistics.udp.receiveQueueFull == 6)
        #expect(interface.statistics.udp.received == 4)
    }

    @Test func configurationIsChecked() throws {
        let mac = MAC(2, 0, 0, 0, 0, 1)
        #expect(throws: NetStackError.invalidConfiguration("'10.0.0.1' is not A.B.C.D/NN")) { _ = try IPv4CIDR(parsing: "10.0.0.1") }
        #expect(throws: NetStackError.invalidConfiguration("'33' in '10.0.0.1/33' is not a prefix length from 0 to 32")) { _ = try IPv4CIDR(parsing: "10.0.0.1/33") }
        #expect(throws: NetStackError.invalidConfiguration("'10.0.0.256' in '10.0.0.256/8' is not an IPv4 address")) { _ = try IPv4CIDR(parsing: "10.0.0.256/8") }
        let pair = try LoopbackDevice.pair()
        let a = pair.a, b = pair.b
        let linkA = SharedDevice(a), linkB = SharedDevice(b)
        var c = InterfaceConfiguration(mac: mac, address: try IPv4CIDR(parsing: "10.0.0.1/24"), gateway: IPv4Address(10, 1, 0, 1))
        #expect(throws: NetStackError.invalidConfiguration("gateway 10.1.0.1 is not another address on 10.0.0.0/24")) {
            _ = try NetworkInterface(link: linkA, configuration: c)
        }
        c.gateway = nil
        c.address = try IPv4CIDR(parsing: "10.0.0.255/24")
        #expect(throws: NetStackError.invalidConfiguration("10.0.0.255 is the broadcast address of 10.0.0.255/24")) {
            _ = try NetworkInterface(link: linkB, configuration: c)
        }
    }

    /// Off-link destinations go to the gateway's MAC (resolved by ARP), on-link ones to
    /// their own; without a gateway they are unreachable.
    @Test func offLinkTrafficGoesThroughTheGateway() throws {
        let pair = try LoopbackDevice.pair()
        let far = pair.b
        let farMAC = MAC(far.info.mac)
        let gateway = IPv4Address(10, 9, 0, 1)
        let (interface, clock) = try manualInterface(pair.a) { $0.gateway = gateway }
        let socket = try UDPSocket(interface: interface, port: 4000)
        let remote = SocketAddress(IPv4Address(192, 0, 2, 44), 53)
        try socket.send([1, 2], to: remote)
        guard case .arp(let request, _)? = try drain(far).map(dissect).first else { Issue.record("no ARP request"); return }
        #expect(request.targetProtocolAddress == gateway)
        try inject(far, [arpFrame(.reply, from: farMAC, ip: gateway, to: interface.configuration.mac, targetIP: ourIP)])
        interface.poll(now: clock.now)
        guard case .udp(let ip, let udp, let payload, let d)? = try drain(far).map(dissect).first else { Issue.record("no datagram"); return }
        #expect(d == farMAC && ip.destination == remote.address && udp.destinationPort == 53 && payload == [1, 2])
        // The subnet's broadcast address goes to the broadcast MAC, with no ARP.
        try socket.send([3], to: SocketAddress(IPv4Address(10, 9, 0, 255), 9))
        guard case .udp(let bip, _, _, let bd)? = try drain(far).map(dissect).first else { Issue.record("no broadcast"); return }
        #expect(bd == .broadcast && bip.destination == IPv4Address(10, 9, 0, 255))
        #expect(interface.statistics.ipv4.noRoute == 0)
    }
}
