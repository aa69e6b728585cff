// UDPSocketTests.swift: UDP sockets between two interfaces over a loopback pair, run by
// their pollers on a UThreads runtime: echo, blocking and non-blocking receive, timeouts,
// binding rules, connected sockets and ICMP port unreachable, readiness callbacks.
import NICQueues
@testable import NetProtocols
@testable import NetStack
import Synchronization
import Testing
import UThreads

/// Two started interfaces (10.9.0.2 and 10.9.0.9) on one runtime.
final class TwoStacks: @unchecked Sendable {
    let runtime: Runtime
    let a: NetworkInterface, b: NetworkInterface

    init(kthreads: Int = 2, configure: (inout InterfaceConfiguration) -> Void = { _ in }) throws {
        let pair = try LoopbackDevice.pair()
        let da = pair.a, db = pair.b
        var ca = InterfaceConfiguration(mac: MAC(da.info.mac), address: try IPv4CIDR(parsing: "10.9.0.2/24"))
        var cb = InterfaceConfiguration(mac: MAC(db.info.mac), address: try IPv4CIDR(parsing: "10.9.0.9/24"))
        configure(&ca)
        configure(&cb)
        a = try NetworkInterface(device: da, configuration: ca)
        b = try NetworkInterface(device: db, configuration: cb)
        runtime = try Runtime(RuntimeConfiguration(kthreads: kthreads))
        try a.start(on: runtime)
        try b.start(on: runtime)
    }

    /// Runs `body` on a uthread and waits for it.
    func run<T>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let r = runtime.spawn { Result { try body() } }.join()
        return try r.get()
    }

    func stop() {
        a.stop()
        b.stop()
        runtime.shutdown()
    }
}

@Suite struct UDPSocketTests {
    @Test func echoBetweenTwoStacks() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let server = try UDPSocket(interface: s.b, port: 7)
        s.runtime.spawn {
            var buffer = [UInt8](repeating: 0, count: 2048)
            while let (n, from) = try? server.receiveFrom(into: &buffer) { _ = try? server.send(buffer[..<n], to: from) }
        }
        let received = try s.run { () throws -> [[UInt8]] in
            let client = UDPSocket(interface: s.a)
            try client.connect(to: SocketAddress(IPv4Address(10, 9, 0, 9), 7))
            client.receiveTimeout = .seconds(5)
            var out: [[UInt8]] = []
            var buffer = [UInt8](repeating: 0, count: 2048)
            for i in 0..<200 {
                let message = [UInt8](repeating: UInt8(i & 0xFF), count: 1 + i * 7)
                try client.send(message)
                let n = try client.receive(into: &buffer)
                out.append(Array(buffer[..<n]))
            }
            #expect(client.localAddress.map { ephemeralPorts.contains($0.port) } == true)
            return out
        }
        #expect(received.count == 200)
        for (i, r) in received.enumerated() { #expect(r == [UInt8](repeating: UInt8(i & 0xFF), count: 1 + i * 7)) }
        server.close()
        let sa = s.a.statistics, sb = s.b.statistics
        #expect(sa.udp.sent == 200 && sa.udp.received == 200 && sb.udp.received == 200 && sb.udp.sent == 200)
        #expect(sa.arp.requestsSent == 1 && sb.arp.repliesSent == 1)   // resolved once
    }

    @Test func portUnreachableRefusesAConnectedSocket() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let error = try s.run { () throws -> SocketError? in
            let client = UDPSocket(interface: s.a)
            try client.connect(to: SocketAddress(IPv4Address(10, 9, 0, 9), 9999))
            client.receiveTimeout = .seconds(5)
            try client.send([1, 2, 3])
            var b = [UInt8](repeating: 0, count: 16)
            do throws(SocketError) { _ = try client.receive(into: &b) } catch { return error }
            return nil
        }
        #expect(error == .connectionRefused)
        #expect(s.b.statistics.udp.noPorts == 1 && s.a.statistics.icmp.unreachableReceived == 1)
    }

    @Test func timeoutsNonBlockingAndInterrupts() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        try s.run {
            let socket = try UDPSocket(interface: s.a, port: 0)
            var b = [UInt8](repeating: 0, count: 16)
            socket.receiveTimeout = .milliseconds(50)
            let start = MonotonicInstant.now
            #expect(throws: SocketError.timedOut) { _ = try socket.receive(into: &b) }
            #expect(start.duration(to: .now) >= .milliseconds(50))
            socket.isNonBlocking = true
            #expect(throws: SocketError.wouldBlock) { _ = try socket.receive(into: &b) }
            socket.isNonBlocking = false
            socket.receiveTimeout = nil
            let me = UThread.current
            _ = UThread.spawn { UThread.sleep(for: .milliseconds(20)); me.interrupt() }
            #expect(throws: SocketError.interrupted) { _ = try socket.receive(into: &b) }
        }
    }

    @Test func closeWakesABlockedReceiver() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let socket = try UDPSocket(interface: s.a, port: 5555)
        let result = s.runtime.spawn { () -> SocketError? in
            var b = [UInt8](repeating: 0, count: 16)
            do throws(SocketError) { _ = try socket.receive(into: &b) } catch { return error }
            return nil
        }
        _ = try s.run { UThread.sleep(for: .milliseconds(20)) }
        socket.close()
        #expect(result.join() == .closed)
        #expect(throws: SocketError.closed) { try socket.send([1], to: SocketAddress(IPv4Address(10, 9, 0, 9), 1)) }
    }

    @Test func bindingAndSendingRules() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let one = try UDPSocket(interface: s.a, port: 4000)
        #expect(throws: SocketError.addressInUse(4000)) { _ = try UDPSocket(interface: s.a, port: 4000) }
        #expect(throws: SocketError.alreadyBound) { try one.bind(port: 4001) }
        #expect(throws: SocketError.addressNotAvailable(IPv4Address(10, 9, 0, 3))) {
            try UDPSocket(interface: s.a).bind(port: 1, address: IPv4Address(10, 9, 0, 3))
        }
        #expect(throws: SocketError.notConnected) { try one.send([1]) }
        #expect(throws: SocketError.networkUnreachable(IPv4Address(192, 0, 2, 1))) { try one.send([1], to: SocketAddress(IPv4Address(192, 0, 2, 1), 9)) }
        #expect(throws: SocketError.invalidDestination(SocketAddress(IPv4Address(10, 9, 0, 9), 0))) { try one.send([1], to: SocketAddress(IPv4Address(10, 9, 0, 9), 0)) }
        let big = [UInt8](repeating: 0, count: 1473)
        #expect(throws: SocketError.messageTooLong(length: 1473, maximum: 1472)) { try one.send(big, to: SocketAddress(IPv4Address(10, 9, 0, 9), 9)) }
        #expect(throws: SocketError.notOnUThread) { var b = [UInt8](repeating: 0, count: 1); _ = try one.receive(into: &b) }
        one.close()
        _ = try UDPSocket(interface: s.a, port: 4000)   // free again
        #expect(SocketError.connectionRefused.errno == 111 && SocketError.wouldBlock.errno == 11)
    }

    @Test func readinessCallbacksAndSenderAddresses() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let receiver = try UDPSocket(interface: s.b, port: 6000)
        let events = Atomic<Int>(0)
        receiver.setReadinessHandler { r in if r.contains(.readable) { events.add(1, ordering: .relaxed) } }
        #expect(receiver.readiness == [.writable])
        let sender = try UDPSocket(interface: s.a, port: 6001)
        try s.run {
            for i in 0..<3 { try sender.send([UInt8(i)], to: SocketAddress(IPv4Address(10, 9, 0, 9), 6000)) }
            for _ in 0..<500 where receiver.queuedDatagrams < 3 { UThread.sleep(for: .milliseconds(2)) }
            #expect(receiver.readiness == [.readable, .writable])
            var b = [UInt8](repeating: 0, count: 4)
            for i in 0..<3 {
                let (n, from) = try receiver.receiveFrom(into: &b)
                #expect(n == 1 && b[0] == UInt8(i) && from == SocketAddress(IPv4Address(10, 9, 0, 2), 6001))
            }
        }
        #expect(events.load(ordering: .relaxed) >= 1)
        receiver.close()
        #expect(receiver.readiness == [.hangUp])
    }

    /// Several uthreads blocked on one socket: each datagram wakes one of them, and all
    /// datagrams are taken.
    @Test func severalReceiversShareASocket() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let socket = try UDPSocket(interface: s.b, port: 6100)
        socket.receiveTimeout = .seconds(5)
        let receivers = (0..<4).map { _ in
            s.runtime.spawn { () -> Int in
                var b = [UInt8](repeating: 0, count: 8)
                var n = 0
                while (try? socket.receive(into: &b)) != nil { n += 1; if b[0] == 0xFF { break } }
                return n
            }
        }
        try s.run {
            UThread.sleep(for: .milliseconds(20))   // let them all block
            let sender = try UDPSocket(interface: s.a, port: 6101)
            // Resolve first (to a closed port): 40 datagrams would overflow ARP's queue.
            try sender.send([0], to: SocketAddress(IPv4Address(10, 9, 0, 9), 9))
            UThread.sleep(for: .milliseconds(20))
            for i in 0..<40 { try sender.send([UInt8(i)], to: SocketAddress(IPv4Address(10, 9, 0, 9), 6100)) }
            UThread.sleep(for: .milliseconds(50))
            for _ in 0..<4 { try sender.send([0xFF], to: SocketAddress(IPv4Address(10, 9, 0, 9), 6100)) }
        }
        let start = MonotonicInstant.now
        let counts = receivers.map { $0.join() }
        #expect(counts.reduce(0, +) == 44, "\(counts)")
        // Promptly: no receiver sat on a datagram until its 5 s timeout.
        #expect(start.duration(to: .now) < .seconds(2))
    }
}
