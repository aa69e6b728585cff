// TCPSupport.swift: fixtures for the TCP tests: segment templates, a connection in a
// class (so tests can hold the ~Copyable value), and a simulated link between two
// connections with a manual clock, loss, reordering and duplication.
@testable import NetProtocols
@testable import NetStack
import Testing

let tcpClientAddress = SocketAddress(IPv4Address(10, 0, 0, 1), 40000)
let tcpServerAddress = SocketAddress(IPv4Address(10, 0, 0, 2), 80)
let ms: Int64 = 1_000_000
let sec: Int64 = 1_000_000_000

/// Builds a TCPSegment; its payload points into `payloadStorage`, kept alive by the caller's
/// closure (`withSegment`) or by a long-lived array.
func segment(_ seq: UInt32, _ ack: UInt32 = 0, _ flags: TCPFlags, window: UInt16 = 65535,
             options: TCPOptions = TCPOptions(), payload: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) -> TCPSegment {
    TCPSegment(sequenceNumber: SequenceNumber(seq), acknowledgmentNumber: SequenceNumber(ack), flags: flags,
               window: window, options: options, payload: payload)
}

/// Payload bytes that stay allocated for the whole test (tests leak a few KiB on purpose).
func bytes(_ count: Int, fill: UInt8 = 0x61) -> UnsafeRawBufferPointer {
    let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 8)
    for i in 0..<count { p[i] = fill &+ UInt8(truncatingIfNeeded: i) }
    return UnsafeRawBufferPointer(rebasing: p[0..<count])
}

func options(mss: UInt16? = nil, wscale: UInt8? = nil, sack: Bool = false, ts: TCPTimestamp? = nil,
             blocks: [SACKBlock] = []) -> TCPOptions {
    var o = TCPOptions()
    o.maximumSegmentSize = mss
    o.windowScale = wscale
    o.sackPermitted = sack
    o.timestamp = ts
    for b in blocks { o.sackBlocks.append(b) }
    return o
}

/// A plain configuration: no options, so sequence and window arithmetic in tests is simple.
func plainConfiguration() -> TCPConfiguration {
    var c = TCPConfiguration()
    c.windowScaling = false
    c.timestamps = false
    c.selectiveAcknowledgments = false
    c.receiveBufferSize = 65535
    c.sendBufferSize = 65535
    return c
}

/// A connection held by reference.
final class Endpoint {
    var conn: TCPConnection
    init(_ conn: consuming TCPConnection) { self.conn = conn }

    /// Every segment it wants to send now.
    func drain(_ now: Int64) -> [TCPOutgoingSegment] {
        var out: [TCPOutgoingSegment] = []
        while let s = conn.nextSegment(now: now) {
            out.append(s)
            if out.count > 100_000 { Issue.record("nextSegment never returns nil"); break }
        }
        return out
    }

    func send(_ data: [UInt8]) -> Int {
        (try? data.withUnsafeBytes { try conn.send($0) }) ?? -1
    }

    func receiveAll() -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { (try? conn.receive(into: $0)) ?? nil }
            guard let n, n > 0 else { break }
            out += buf[0..<n]
        }
        return out
    }

    func payload(of s: TCPOutgoingSegment) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: s.payloadLength)
        b.withUnsafeMutableBytes { conn.copyPayload(of: s, into: $0) }
        return b
    }
}

/// A client in SYN-SENT with ISN 1000 and the server's answer template values.
func makeClient(_ configuration: TCPConfiguration = plainConfiguration(), isn: UInt32 = 1000, mss: Int = 1460,
                now: Int64 = 0) -> Endpoint {
    Endpoint(TCPConnection(connectingFrom: tcpClientAddress, to: tcpServerAddress, isn: SequenceNumber(isn), mss: mss,
                           configuration: configuration, now: now))
}

/// A client driven to ESTABLISHED against a scripted peer with ISN 5000 (window 65535,
/// MSS 1460, no options): snd.una = 1001, rcv.nxt = 5001.
func establishedClient(_ configuration: TCPConfiguration = plainConfiguration(), now: Int64 = 0) -> Endpoint {
    let c = makeClient(configuration, now: now)
    _ = c.drain(now)
    c.conn.input(segment(5000, 1001, [.syn, .ack], options: options(mss: 1460)), now: now)
    _ = c.drain(now)
    return c
}

/// A server accepted from a SYN with ISN 5000, ACKed: its ISN is 1000, rcv.nxt = 5001.
func establishedServer(_ configuration: TCPConfiguration = plainConfiguration(), now: Int64 = 0) -> Endpoint {
    let syn = segment(5000, 0, .syn, options: options(mss: 1460))
    let s = Endpoint(TCPConnection(acceptingSYN: syn, local: tcpServerAddress, remote: tcpClientAddress,
                                   isn: SequenceNumber(1000), mss: 1460, configuration: configuration, now: now)!)
    _ = s.drain(now)
    s.conn.input(segment(5001, 1001, .ack), now: now)
    return s
}

// MARK: the simulated link

/// Two connections joined by a link with delay, a bottleneck rate, a drop-tail queue and
/// seeded loss, reordering and duplication. Segments go through TCPHeader.emit and
/// TCPSegmentView, so the wire format is exercised too.
final class Simulation {
    struct Packet { var arrival: Int64; var order: Int; var toServer: Bool; var bytes: [UInt8] }

    var now: Int64 = 0
    var rng: SplitMix64
    var delay: Int64 = 2 * ms
    /// Bytes per millisecond at the bottleneck (12_500 = 100 Mbit/s).
    var bytesPerMillisecond: Int64 = 12_500
    /// Queueing delay beyond which the bottleneck drops (drop-tail).
    var queueLimit: Int64 = 20 * ms
    var loss = 0.0
    var reorder = 0.0
    var duplicate = 0.0
    var packets: [Packet] = []
    var busyUntil: [Int64] = [0, 0]
    var order = 0
    var dropped = 0

    let client: Endpoint
    var server: Endpoint?
    let configuration: TCPConfiguration
    let serverConfiguration: TCPConfiguration

    init(seed: UInt64, client: TCPConfiguration, server: TCPConfiguration? = nil) {
        rng = SplitMix64(seed: seed)
        configuration = client
        serverConfiguration = server ?? client
        self.client = Endpoint(TCPConnection(connectingFrom: tcpClientAddress, to: tcpServerAddress,
                                             isn: SequenceNumber(UInt32(truncatingIfNeeded: seed &* 7919)), mss: 1460,
                                             configuration: client, now: 0))
    }

    func chance(_ p: Double) -> Bool { p > 0 && Double.random(in: 0..<1, using: &rng) < p }

    func transmit(_ s: TCPOutgoingSegment, from endpoint: Endpoint, toServer: Bool) {
        let header = s.header(sourcePort: toServer ? tcpClientAddress.port : tcpServerAddress.port,
                              destinationPort: toServer ? tcpServerAddress.port : tcpClientAddress.port)
        var frame = [UInt8](repeating: 0, count: header.length + s.payloadLength)
        frame.withUnsafeMutableBytes { b in
            endpoint.conn.copyPayload(of: s, into: UnsafeMutableRawBufferPointer(rebasing: b[header.length...]))
            _ = try! header.emit(into: b, source: toServer ? tcpClientAddress.address : tcpServerAddress.address,
                                 destination: toServer ? tcpServerAddress.address : tcpClientAddress.address,
                                 payloadLength: s.payloadLength)
        }
        if chance(loss) { dropped += 1; return }
        let side = toServer ? 0 : 1
        let start = max(now, busyUntil[side])
        if start - now > queueLimit { dropped += 1; return }
        let departure = start + Int64(frame.count + 40) * ms / bytesPerMillisecond
        busyUntil[side] = departure
        var arrival = departure + delay
        if chance(reorder) { arrival += Int64.random(in: 1...3, using: &rng) * ms }
        order += 1
        packets.append(Packet(arrival: arrival, order: order, toServer: toServer, bytes: frame))
        if chance(duplicate) {
            order += 1
            packets.append(Packet(arrival: arrival + ms, order: order, toServer: toServer, bytes: frame))
        }
    }

    func drainAll() {
        for s in client.drain(now) { transmit(s, from: client, toServer: true) }
        if let server { for s in server.drain(now) { transmit(s, from: server, toServer: false) } }
    }

    func deliver(_ p: Packet) {
        let src = p.toServer ? tcpClientAddress.address : tcpServerAddress.address
        let dst = p.toServer ? tcpServerAddress.address : tcpClientAddress.address
        p.bytes.withUnsafeBytes { b in
            let view = try! TCPSegmentView(validating: b, source: src, destination: dst)
            let seg = TCPSegment(view)
            if p.toServer {
                if let server {
                    server.conn.input(seg, now: now)
                } else if let conn = TCPConnection(acceptingSYN: seg, local: tcpServerAddress, remote: tcpClientAddress,
                                                     isn: SequenceNumber(77_000), mss: 1460,
                                                     configuration: serverConfiguration, now: now) {
                    server = Endpoint(conn)
                }
            } else {
                client.conn.input(seg, now: now)
            }
        }
    }

    /// Advances to the next event (a packet arriving or a deadline). False when there is none.
    func step() -> Bool {
        drainAll()
        var next: Int64? = packets.map(\.arrival).min()
        for d in [client.conn.nextDeadline, server?.conn.nextDeadline] {
            if let d { next = next.map { min($0, d) } ?? d }
        }
        guard let next else { return false }
        now = max(now, next)
        packets.sort { ($0.arrival, $0.order) < ($1.arrival, $1.order) }
        while let p = packets.first, p.arrival <= now {
            packets.removeFirst()
            deliver(p)
        }
        if let d = client.conn.nextDeadline, d <= now { client.conn.handleTimers(now: now) }
        if let server, let d = server.conn.nextDeadline, d <= now { server.conn.handleTimers(now: now) }
        drainAll()
        return true
    }

    /// Runs until `done` or until `limit` of simulated time passes.
    func run(until limit: Int64, _ done: () -> Bool) {
        while !done() && now < limit {
            if !step() { break }
        }
    }
}

/// Whether a listener would take `syn` (`== nil` on the optional needs Copyable).
func acceptsSYN(_ syn: TCPSegment) -> Bool {
    let c = TCPConnection(acceptingSYN: syn, local: tcpServerAddress, remote: tcpClientAddress, isn: SequenceNumber(1),
                          mss: 1460, configuration: plainConfiguration(), now: 0)
    switch consume c {
    case .none: return false
    case .some: return true
    }
}
