// InterfaceFuzzTests.swift: mutated captured frames through a whole interface (an
// in-memory device that verifies nothing for us, a manual clock): no crash, every frame
// counted, everything the interface sends well-formed, and every pool buffer back at the end.
import NICQueues
@testable import NetProtocols
@testable import NetStack
import Testing

/// An in-memory device: frames to receive are queued by the test, transmitted ones kept.
/// Its info says nothing about checksums, so the interface verifies and computes them all.
final class MemoryLink: FrameLink, @unchecked Sendable {
    let linkInfo: DeviceInfo
    let linkPool: PacketPool
    var incoming: [[UInt8]] = []
    var sent: [[UInt8]] = []

    init() throws {
        let loop = try LoopbackDevice()
        var info = loop.info
        info.offloads = []
        info.name = "memory"
        linkInfo = info
        linkPool = try PacketPool(name: "memory", bufferSize: 2048, count: 1024, headroom: 128)
    }

    func receive(queue: Int, into batch: inout PacketBatch, limit: Int) throws(NICError) -> Int {
        var n = 0
        while n < limit, !batch.isFull, !incoming.isEmpty {
            let f = incoming.removeFirst()
            guard f.count <= linkPool.frameCapacity else { continue }
            batch.append(try linkPool.allocate(copying: f))
            n += 1
        }
        return n
    }

    func transmit(queue: Int, from batch: inout PacketBatch) throws(NICError) -> Int {
        var n = 0
        while let f = batch.popFirst() { sent.append(f.bytes); n += 1 }
        return n
    }

    func reclaim(queue: Int) throws(NICError) -> Int { 0 }
    func notificationFD(queue: Int) -> Int32 { -1 }
    func armNotification(queue: Int) throws(NICError) -> Bool { true }
}

@Suite struct InterfaceFuzzTests {
    @Test(arguments: [11, 12] as [UInt64])
    func mutatedFramesThroughTheInterface(seed: UInt64) throws {
        let link = try MemoryLink()
        let clock = ManualClock()
        // The captured frames are addressed to 192.0.2.2 at 02:00:00:00:00:0b.
        var config = InterfaceConfiguration(mac: MAC(2, 0, 0, 0, 0, 0x0b), address: try IPv4CIDR(parsing: "192.0.2.2/24"))
        config.udpReceiveQueueLength = 16
        let interface = try NetworkInterface(link: link, configuration: config, clock: .manual(clock))
        let socket = try UDPSocket(interface: interface, port: 5353)
        socket.isNonBlocking = true
        var mutator = Mutator(rng: SplitMix64(seed: seed))
        var buffer = [UInt8](repeating: 0, count: 2048)
        var delivered = 0
        let frames = 20_000
        for i in 0..<frames {
            let original = Captured.all[i % Captured.all.count].bytes
            link.incoming.append(i % 5 == 0 ? original : mutator.mutate(original))
            clock.advance(by: .milliseconds(10))
            interface.poll(now: clock.now)
            while (try? socket.receive(into: &buffer)) != nil { delivered += 1 }
        }
        clock.advance(by: .seconds(60))   // resolutions fail, reassembly times out
        interface.tick(now: clock.now)
        interface.tick(now: clock.now + 1)
        socket.close()

        let s = interface.statistics
        #expect(s.ethernet.framesReceived == UInt64(frames))
        #expect(delivered > 300 && s.udp.received == UInt64(delivered))
        #expect(s.icmp.echoRepliesSent > 200 && s.icmp.unreachableSent > 200, "\(s.description)")
        #expect(s.wire.total > 1000 && s.ipv4.addressErrors > 0 && s.ethernet.notForUs > 0)
        #expect(s.reassembly.reassembled > 0)
        // Everything sent parses back (the interface only emits well-formed frames).
        var bad = 0
        for f in link.sent where dissect(f) == .other { bad += 1 }
        #expect(bad == 0 && link.sent.count > 500)
        // No buffer leaked: received frames, queued datagrams and pending packets all went back.
        #expect(interface.pending.count == 0)
        #expect(link.linkPool.freeCount == link.linkPool.count)
    }
}
