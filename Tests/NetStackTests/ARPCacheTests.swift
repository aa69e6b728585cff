// ARPCacheTests.swift: the neighbour table on a manual clock (retries, timeouts,
// eviction), and the interface's queue of packets awaiting resolution over a loopback
// pair whose far end the test plays.
import NICQueues
@testable import NetProtocols
@testable import NetStack
import Testing

let second: Int64 = 1_000_000_000

@Suite struct ARPCacheTests {
    let a = IPv4Address(10, 0, 0, 1), b = IPv4Address(10, 0, 0, 2)
    let macA = MAC(2, 0, 0, 0, 0, 1)

    @Test func resolvingRetriesThenFails() {
        var cache = ARPCache()
        #expect(cache.lookup(a, now: 0) == .resolving(sendRequest: true))
        #expect(cache.lookup(a, now: 10) == .resolving(sendRequest: false))
        var retries: [Int64] = [], failed: [IPv4Address] = []
        for t in stride(from: Int64(0), through: 5 * second, by: Int(second / 10)) {
            cache.expire(now: t, retry: { _, unicast in #expect(unicast == nil); retries.append(t) }, failed: { failed.append($0) })
        }
        #expect(retries == [second, 2 * second])          // 3 requests in all, 1 s apart
        #expect(failed == [a])
        #expect(cache.count == 0)
        #expect(cache.counters.requestsSent == 3 && cache.counters.resolutionFailures == 1)
    }

    @Test func replyResolvesAndEntryExpires() {
        var cache = ARPCache()
        _ = cache.lookup(a, now: 0)
        let wasResolving = cache.update(a, mac: macA, now: second / 2, create: false)
        #expect(wasResolving)
        #expect(cache.lookup(a, now: second) == .resolved(macA))
        #expect(cache.resolved(a, now: 30 * second + second / 2 - 1) == macA)
        #expect(cache.resolved(a, now: 30 * second + second / 2) == nil)
        cache.expire(now: 31 * second, retry: { _, _ in Issue.record("no retry for an unused entry") }, failed: { _ in })
        #expect(cache.count == 0 && cache.counters.expired == 1)
    }

    /// A stale entry in use keeps working while unicast probes confirm it; without an
    /// answer to three probes it goes.
    @Test func staleEntriesInUseAreProbed() {
        var cache = ARPCache()
        cache.update(a, mac: macA, now: 0, create: true)
        #expect(cache.lookup(a, now: 31 * second) == .stale(macA))
        #expect(cache.lookup(a, now: 31 * second + 1) == .resolved(macA))
        var probes: [MAC?] = []
        for t in [32, 33, 34] { cache.expire(now: Int64(t) * second, retry: { _, m in probes.append(m) }, failed: { _ in }) }
        #expect(probes == [macA, macA])
        #expect(cache.count == 0 && cache.counters.expired == 1)
        // Answered: reachable again for 30 s.
        cache.update(a, mac: macA, now: 0, create: true)
        #expect(cache.lookup(a, now: 31 * second) == .stale(macA))
        cache.update(a, mac: macA, now: 31 * second + second / 2, create: false)
        cache.expire(now: 40 * second, retry: { _, _ in Issue.record("no probe once confirmed") }, failed: { _ in })
        #expect(cache.lookup(a, now: 60 * second) == .resolved(macA))
    }

    @Test func unsolicitedRepliesDoNotCreateEntries() {
        var cache = ARPCache()
        let unsolicited = cache.update(a, mac: macA, now: 0, create: false)
        #expect(!unsolicited && cache.count == 0)
        let learned = cache.update(a, mac: macA, now: 0, create: true)
        #expect(!learned)
        #expect(cache.resolved(a, now: 1) == macA)
        // Broadcast, multicast and zero addresses are never learned.
        let broadcastMAC = cache.update(b, mac: .broadcast, now: 0, create: true)
        let broadcastIP = cache.update(.broadcast, mac: macA, now: 0, create: true)
        #expect(!broadcastMAC && !broadcastIP)
        #expect(cache.count == 1)
    }

    @Test func capacityEvictsTheResolvedEntryNearestItsEnd() {
        var c = ARPConfiguration()
        c.capacity = 3
        var cache = ARPCache(configuration: c)
        cache.update(IPv4Address(10, 0, 0, 10), mac: macA, now: 0, create: true)
        cache.update(IPv4Address(10, 0, 0, 11), mac: macA, now: 5, create: true)
        _ = cache.lookup(IPv4Address(10, 0, 0, 12), now: 0)                        // resolving: kept
        _ = cache.lookup(IPv4Address(10, 0, 0, 13), now: 10)
        #expect(cache.count == 3 && cache.counters.evicted == 1)
        #expect(cache.resolved(IPv4Address(10, 0, 0, 10), now: 20) == nil)
        #expect(cache.resolved(IPv4Address(10, 0, 0, 11), now: 20) == macA)
        #expect(cache.isResolving(IPv4Address(10, 0, 0, 12)))
    }

    /// Datagrams to an unresolved neighbour wait (at most `pendingPerNeighbour`, oldest
    /// dropped), the requests repeat each second, and a failed resolution drops them.
    @Test func pendingQueueIsBoundedAndDroppedOnFailure() throws {
        let pair = try LoopbackDevice.pair()
        let far = pair.b
        let (interface, clock) = try manualInterface(pair.a) { $0.arp.pendingPerNeighbour = 4 }
        interface.announce(now: clock.now)
        let announced = try drain(far)
        #expect(announced.count == 1)
        if case .arp(let p, let d) = dissect(announced[0]) {
            #expect(p.operation == .request && p.senderProtocolAddress == ourIP && p.targetProtocolAddress == ourIP && d == .broadcast)
        } else { Issue.record("no gratuitous ARP: \(announced)") }

        let socket = try UDPSocket(interface: interface, port: 4000)
        for i in 0..<10 { #expect(try socket.send([UInt8(i)], to: SocketAddress(peerIP, 5000)) == 1) }
        var requests = try drain(far).map(dissect)
        #expect(requests.count == 1)
        #expect(interface.statistics.arp.pendingDropped == 6)
        #expect(interface.pending.count(for: peerIP) == 4)
        // Retries at 1 s and 2 s, none at 0.5 s; failure at 3 s.
        for step in 1...7 {
            clock.advance(by: .milliseconds(500))
            interface.tick(now: clock.now)
            requests += try drain(far).map(dissect)
            #expect(requests.count == min(3, 1 + step / 2), "after \(step * 500) ms")
        }
        for r in requests {
            guard case .arp(let p, let d) = r else { Issue.record("not ARP: \(r)"); continue }
            #expect(p.operation == .request && p.targetProtocolAddress == peerIP && d == .broadcast)
        }
        let s = interface.statistics
        #expect(s.arp.resolutionFailures == 1 && s.arp.pendingDropped == 10 && interface.pending.count == 0)
    }

    /// A reply releases the waiting datagrams, in order, to the resolved address; the
    /// entry is used without asking again until it expires.
    @Test func replyReleasesQueuedDatagramsInOrder() throws {
        let pair = try LoopbackDevice.pair()
        let far = pair.b
        let farMAC = MAC(far.info.mac)
        let (interface, clock) = try manualInterface(pair.a)
        let socket = try UDPSocket(interface: interface, port: 4000)
        for i in 0..<3 { try socket.send([UInt8(i)], to: SocketAddress(peerIP, 5000)) }
        #expect(try drain(far).count == 1)   // the request
        try inject(far, [arpFrame(.reply, from: farMAC, ip: peerIP, to: interface.configuration.mac, targetIP: ourIP)])
        interface.poll(now: clock.now)
        let sent = try drain(far).map(dissect)
        #expect(sent.count == 3)
        for (i, s) in sent.enumerated() {
            guard case .udp(let ip, let udp, let payload, let d) = s else { Issue.record("not UDP: \(s)"); continue }
            #expect(d == farMAC && ip.destination == peerIP && udp.sourcePort == 4000 && udp.destinationPort == 5000 && payload == [UInt8(i)])
        }
        try socket.send([9], to: SocketAddress(peerIP, 5000))
        #expect(try drain(far).map(dissect).count == 1)   // straight out, no request
        clock.advance(by: .seconds(31))
        interface.tick(now: clock.now)
        #expect(interface.neighbour(peerIP) == nil)
        try socket.send([10], to: SocketAddress(peerIP, 5000))
        guard case .arp(let p, _)? = try drain(far).map(dissect).first else { Issue.record("no new request"); return }
        #expect(p.targetProtocolAddress == peerIP)
    }

    /// Sending through a stale entry does not wait: the datagram goes to the known
    /// address at once, with a unicast request beside it.
    @Test func staleNeighbourIsUsedAndProbed() throws {
        let pair = try LoopbackDevice.pair()
        let far = pair.b
        let farMAC = MAC(far.info.mac)
        let (interface, clock) = try manualInterface(pair.a)
        try inject(far, [arpFrame(.request, from: farMAC, ip: peerIP, to: .zero, targetIP: ourIP, destination: .broadcast)])
        interface.poll(now: clock.now)
        _ = try drain(far)   // our reply
        clock.advance(by: .seconds(40))
        let socket = try UDPSocket(interface: interface, port: 4000)
        try socket.send([7], to: SocketAddress(peerIP, 5000))
        let out = try drain(far).map(dissect)
        #expect(out.count == 2)
        if case .arp(let p, let d)? = out.first {
            #expect(p.operation == .request && d == farMAC && p.targetHardwareAddress == farMAC && p.targetProtocolAddress == peerIP)
        } else { Issue.record("no unicast probe: \(out)") }
        if case .udp(_, _, let payload, let d)? = out.last { #expect(payload == [7] && d == farMAC) } else { Issue.record("no datagram: \(out)") }
    }

    /// A request for our address gets a reply and teaches us the asker (RFC 826); one for
    /// another address teaches nothing.
    @Test func requestsForUsAreAnsweredAndLearned() throws {
        let pair = try LoopbackDevice.pair()
        let far = pair.b
        let farMAC = MAC(far.info.mac)
        let (interface, clock) = try manualInterface(pair.a)
        try inject(far, [arpFrame(.request, from: farMAC, ip: IPv4Address(10, 9, 0, 7), to: .zero, targetIP: IPv4Address(10, 9, 0, 99), destination: .broadcast),
                         arpFrame(.request, from: farMAC, ip: peerIP, to: .zero, targetIP: ourIP, destination: .broadcast)])
        interface.poll(now: clock.now)
        let replies = try drain(far).map(dissect)
        #expect(replies.count == 1)
        guard case .arp(let p, let d) = replies.first else { Issue.record("no reply"); return }
        #expect(p.operation == .reply && d == farMAC && p.senderHardwareAddress == interface.configuration.mac)
        #expect(p.senderProtocolAddress == ourIP && p.targetProtocolAddress == peerIP && p.targetHardwareAddress == farMAC)
        #expect(interface.neighbour(peerIP) == farMAC)
        #expect(interface.neighbour(IPv4Address(10, 9, 0, 7)) == nil)
        let s = interface.statistics.arp
        #expect(s.requestsReceived == 2 && s.repliesSent == 1)
    }

    /// An interface dropped with packets still waiting for ARP gives their buffers back.
    @Test func droppingAnInterfaceReturnsItsBuffers() throws {
        let link = try MemoryLink()
        do {
            let config = InterfaceConfiguration(mac: MAC(2, 0, 0, 0, 0, 1), address: try IPv4CIDR(parsing: "10.9.0.2/24"))
            let interface = try NetworkInterface(link: link, configuration: config, clock: .manual(ManualClock()))
            let socket = try UDPSocket(interface: interface, port: 4000)
            for i in 0..<5 { try socket.send([UInt8(i)], to: SocketAddress(peerIP, 5000)) }
            #expect(interface.pending.count == 5)
            #expect(link.linkPool.freeCount == link.linkPool.count - 5)
        }
        #expect(link.linkPool.freeCount == link.linkPool.count)
    }
}
