// InterfaceSupport.swift: fixtures for the Interface and socket tests: an interface on
// one end of a loopback pair with the other end in the test's hands, frame builders
// from the Wire values, and helpers for root-only tests (names, commands, cleanup).
import Foundation
import NICQueues
@testable import NetProtocols
@testable import NetStack
import Testing
import Synchronization
import UThreads

typealias MAC = NetStack.MACAddress

extension NetStack.MACAddress {
    init(_ nic: NICQueues.MACAddress) { self.init(rawValue: nic.raw) }
}

/// Receives what waits on `device` (one pass, or until `count` arrived / `timeoutMs`).
func drain(_ device: borrowing some NetworkDevice & ~Copyable, count: Int = 0, timeoutMs: Int32 = 0) throws -> [[UInt8]] {
    var out: [[UInt8]] = []
    var batch = PacketBatch(capacity: 32)
    let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
    while true {
        let n = try device.receive(queue: 0, into: &batch, limit: 32)
        while let f = batch.popFirst() { out.append(f.bytes) }
        if out.count >= count && n == 0 { break }
        if n == 0 {
            if Date() >= deadline { break }
            _ = try device.waitForFrames(timeoutMs: 10)
        }
    }
    return out
}

/// Sends raw frames from `device`.
func inject(_ device: borrowing some NetworkDevice & ~Copyable, _ frames: [[UInt8]]) throws {
    var batch = PacketBatch(capacity: 32)
    for f in frames { batch.append(try device.pool.allocate(copying: f)) }
    while !batch.isEmpty { if try device.transmit(queue: 0, from: &batch) == 0 { usleep(10) } }
}

/// Builds a frame from Wire values: Ethernet, then IPv4 + `transport` (already emitted).
func ipv4Frame(from srcMAC: MAC, to dstMAC: MAC, source: IPv4Address, destination: IPv4Address,
               protocol proto: IPProtocol, transport: [UInt8], fragment: (offset: Int, more: Bool)? = nil,
               identification: UInt16 = 1) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 34 + transport.count)
    out.withUnsafeMutableBytes { b in
        _ = try! EthernetHeader(destination: dstMAC, source: srcMAC, etherType: .ipv4).emit(into: b)
        var h = IPv4Header(source: source, destination: destination, protocol: proto, payloadLength: transport.count,
                           identification: identification)
        if let fragment { h.dontFragment = false; h.fragmentOffset = fragment.offset; h.moreFragments = fragment.more }
        _ = try! h.emit(into: UnsafeMutableRawBufferPointer(rebasing: b[14...]))
    }
    out.replaceSubrange(34..., with: transport)
    return out
}

func udpBytes(source: IPv4Address, destination: IPv4Address, sourcePort: UInt16, destinationPort: UInt16, payload: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 8) + payload
    out.withUnsafeMutableBytes { b in
        _ = try! UDPHeader(sourcePort: sourcePort, destinationPort: destinationPort, payloadLength: payload.count)
            .emit(into: b, source: source, destination: destination)
    }
    return out
}

func icmpEchoBytes(identifier: UInt16, sequence: UInt16, data: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 8) + data
    out.withUnsafeMutableBytes { b in
        _ = try! ICMPMessage.echoRequest(identifier: identifier, sequence: sequence).emit(into: b, payloadLength: data.count)
    }
    return out
}

func arpFrame(_ op: ARPOperation, from mac: MAC, ip: IPv4Address, to targetMAC: MAC, targetIP: IPv4Address,
              destination: MAC? = nil) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 42)
    out.withUnsafeMutableBytes { b in
        _ = try! EthernetHeader(destination: destination ?? targetMAC, source: mac, etherType: .arp).emit(into: b)
        _ = try! ARPPacket(operation: op, senderHardwareAddress: mac, senderProtocolAddress: ip,
                           targetHardwareAddress: targetMAC, targetProtocolAddress: targetIP)
            .emit(into: UnsafeMutableRawBufferPointer(rebasing: b[14...]))
    }
    return out
}

/// What a test sees of a frame the interface sent.
enum Seen: Equatable {
    case arp(ARPPacket, destination: MAC)
    case udp(IPv4Header, UDPHeader, payload: [UInt8], destination: MAC)
    case icmp(IPv4Header, ICMPMessage, data: [UInt8])
    case other
}

func dissect(_ frame: [UInt8]) -> Seen {
    frame.withUnsafeBytes { b -> Seen in
        guard let eth = try? EthernetFrame(validating: b) else { return .other }
        switch eth.etherType {
        case .arp:
            guard let a = try? ARPPacket.parse(eth.payload) else { return .other }
            return .arp(a, destination: eth.destination)
        case .ipv4:
            guard let ip = try? IPv4Packet(validating: eth.payload) else { return .other }
            if ip.protocol == .udp, let u = try? UDPDatagram(validating: ip.payload, source: ip.source, destination: ip.destination) {
                return .udp(IPv4Header(ip), UDPHeader(u), payload: Array(u.payload), destination: eth.destination)
            }
            if ip.protocol == .icmp, let p = try? ICMPPacket(validating: ip.payload), let m = try? ICMPMessage(p) {
                return .icmp(IPv4Header(ip), m, data: Array(p.payload))
            }
            return .other
        default:
            return .other
        }
    }
}

let ourIP = IPv4Address(10, 9, 0, 2)
let peerIP = IPv4Address(10, 9, 0, 9)

/// An interface on `pair.a` (10.9.0.2/24) on a manual clock; the test drives `pair.b`.
func manualInterface(_ a: consuming LoopbackDevice, configure: (inout InterfaceConfiguration) -> Void = { _ in })
    throws -> (NetworkInterface, ManualClock) {
    let clock = ManualClock()
    var c = InterfaceConfiguration(mac: MAC(a.info.mac), address: try IPv4CIDR(parsing: "10.9.0.2/24"))
    configure(&c)
    return (try NetworkInterface(device: a, configuration: c, clock: .manual(clock)), clock)
}

/// True when running as root (the TAP and namespace tests need it).
let runningAsRoot = getuid() == 0


struct InterfaceTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A name unique to this test process and call (interfaces, namespaces, files).
func uniqueTestName(_ prefix: String) -> String {
    let n = testNameCounter.add(1, ordering: .relaxed).newValue
    return "\(prefix)\(getpid() % 100_000)\(n)"
}
let testNameCounter = Atomic<Int>(0)

/// A /24 third octet unlikely to meet another run's.
func testSubnetOctet() -> UInt8 { UInt8(truncatingIfNeeded: (Int(getpid()) &* 13 &+ testNameCounter.add(1, ordering: .relaxed).newValue) % 200 + 30) }

/// An interface on a manual clock over a loopback pair whose far end the test plays, and
/// that already knows the far end (so replies go straight out).
final class InterfaceHarness {
    let interface: NetworkInterface, clock: ManualClock, far: LoopbackDevice, farMAC: MAC, ourMAC: MAC
    init() throws {
        let pair = try LoopbackDevice.pair()
        far = pair.b
        farMAC = MAC(far.info.mac)
        (interface, clock) = try manualInterface(pair.a)
        ourMAC = interface.configuration.mac
        try inject(far, [arpFrame(.request, from: farMAC, ip: peerIP, to: .zero, targetIP: ourIP, destination: .broadcast)])
        interface.poll(now: clock.now)
        _ = try drain(far)
    }
}
