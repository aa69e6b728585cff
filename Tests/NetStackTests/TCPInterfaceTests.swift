// TCPInterfaceTests.swift: the interface's TCP side frame by frame, on a manual clock with
// the far end of a loopback pair in the test's hands: a SYN to a closed port gets a RST,
// an ICMP unreachable quoting our SYN ends the connection attempt. (The loopback device
// skips checksums; the TAP tests show Linux and we accept each other's.)
import Glibc
import NICQueues
@testable import NetProtocols
@testable import NetStack
import Testing
import UThreads

/// The IPv4 packets (headers and payload) in `frames` carrying TCP.
func tcpPackets(_ frames: [[UInt8]]) -> [[UInt8]] {
    frames.filter { $0.count > 34 && $0[12] == 0x08 && $0[13] == 0x00 && $0[23] == 6 }.map { Array($0[14...]) }
}

/// A TCP segment's bytes with a correct checksum.
func tcpBytes(source: IPv4Address, destination: IPv4Address, sourcePort: UInt16, destinationPort: UInt16,
              sequence: UInt32, acknowledgment: UInt32 = 0, flags: TCPFlags, payload: [UInt8] = []) -> [UInt8] {
    let header = TCPHeader(sourcePort: sourcePort, destinationPort: destinationPort, sequenceNumber: SequenceNumber(sequence),
                           acknowledgmentNumber: SequenceNumber(acknowledgment), flags: flags, window: 65535)
    var out = [UInt8](repeating: 0, count: header.length) + payload
    out.withUnsafeMutableBytes { b in
        _ = try! header.emit(into: b, source: source, destination: destination, payloadLength: payload.count)
    }
    return out
}

@Suite(.serialized) struct TCPInterfaceTests {

    @Test func aSYNToAClosedPortGetsARST() throws {
        let h = try InterfaceHarness()
        let syn = tcpBytes(source: peerIP, destination: ourIP, sourcePort: 40000, destinationPort: 81, sequence: 1000, flags: .syn)
        try inject(h.far, [ipv4Frame(from: h.farMAC, to: h.ourMAC, source: peerIP, destination: ourIP, protocol: .tcp, transport: syn)])
        h.interface.poll(now: h.clock.now)
        let out = tcpPackets(try drain(h.far))
        try #require(out.count == 1)
        try out[0].withUnsafeBytes { b in
            let ip = try IPv4Packet(validating: b)
            let tcp = try TCPSegmentView(validating: ip.payload, source: ip.source, destination: ip.destination, verifyChecksum: false)
            #expect(tcp.flags == [.rst, .ack] && tcp.acknowledgmentNumber == SequenceNumber(1001))
            #expect(tcp.sourcePort == 81 && tcp.destinationPort == 40000)
        }
        let s = h.interface.statistics
        #expect(s.tcp.noPorts == 1 && s.tcp.resetsSent == 1 && s.tcp.segmentsReceived == 1, "\(s.tcp)")
        // A RST is never answered.
        let rst = tcpBytes(source: peerIP, destination: ourIP, sourcePort: 40000, destinationPort: 81, sequence: 1001, flags: .rst)
        try inject(h.far, [ipv4Frame(from: h.farMAC, to: h.ourMAC, source: peerIP, destination: ourIP, protocol: .tcp, transport: rst)])
        h.interface.poll(now: h.clock.now)
        #expect(tcpPackets(try drain(h.far)).isEmpty)
    }

    @Test func anICMPPortUnreachableRefusesAConnectionAttempt() throws {
        let h = try InterfaceHarness()
        let c = TCPSocket(interface: h.interface)
        c.isNonBlocking = true
        #expect(throws: SocketError.inProgress) { try c.connect(to: SocketAddress(peerIP, 80)) }
        let syn = try #require(tcpPackets(try drain(h.far)).first)
        // Port unreachable from the peer, quoting our SYN (RFC 1122 §4.2.3.9).
        var icmp = [UInt8](repeating: 0, count: 8 + syn.count)
        let n = try icmp.withUnsafeMutableBytes { b in
            try syn.withUnsafeBytes { q in try ICMPMessage.destinationUnreachable(.port, nextHopMTU: 0).emitError(quoting: q, into: b) }
        }
        try inject(h.far, [ipv4Frame(from: h.farMAC, to: h.ourMAC, source: peerIP, destination: ourIP, protocol: .icmp,
                                     transport: Array(icmp[..<n]))])
        h.interface.poll(now: h.clock.now)
        #expect(c.state == .closed)
        #expect(c.readiness.contains(.error))
        // Linux: ECONNREFUSED, as a RST would give (icmp_err_convert).
        #expect(throws: SocketError.connectionRefused) { try c.connect(to: SocketAddress(peerIP, 80)) }
        #expect(h.interface.tcpConnectionCount == 0)
        #expect(h.interface.statistics.icmp.unreachableReceived == 1)
    }
}
