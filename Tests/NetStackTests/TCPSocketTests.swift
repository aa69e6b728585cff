// TCPSocketTests.swift: TCP sockets between two interfaces over an in-process loopback
// pair (TwoStacks, UDPSocketTests.swift): connect/accept/read/write/close, blocking and
// non-blocking calls, timeouts and interrupts, refusal, SYN cookies past the backlog,
// shutdown, linger, options, readiness callbacks, the connection table emptying.
import Glibc
import NICQueues
@testable import NetProtocols
@testable import NetStack
import Synchronization
import Testing
import UThreads

/// Test defaults: a short TIME_WAIT so tables empty within the test.
func testTCPConfiguration(buffer: Int? = nil) -> TCPConfiguration {
    var c = TCPConfiguration()
    c.timeWaitDuration = .milliseconds(200)
    c.finWait2Timeout = .seconds(2)
    if let buffer {
        c.receiveBufferSize = buffer
        c.sendBufferSize = buffer
    }
    return c
}

let serverAddress = SocketAddress(IPv4Address(10, 9, 0, 9), 80)

/// The byte at `offset` of a test stream (a pattern with a long period).
@inline(__always) func patternByte(_ offset: Int, seed: Int = 0) -> UInt8 {
    UInt8(truncatingIfNeeded: (offset &* 2654435761 &+ seed) >> 13)
}

func pattern(_ count: Int, from offset: Int = 0, seed: Int = 0) -> [UInt8] {
    (0..<count).map { patternByte(offset + $0, seed: seed) }
}

/// Writes the first `n` bytes of `chunk` (all of them, blocking); the error, if any.
func writePrefix(_ c: TCPSocket, _ chunk: [UInt8], _ n: Int) -> SocketError? {
    chunk.withUnsafeBytes { b -> SocketError? in
        do throws(SocketError) {
            _ = try c.write(UnsafeRawBufferPointer(rebasing: b[..<n]))
            return nil
        } catch { return error }
    }
}

/// An echo service on `listener`: one uthread per connection until the peer's FIN.
/// `stop()` (before the interfaces stop) ends it whatever the peers did: under load a
/// peer's FIN can still be in flight when a test ends, and a connection uthread left parked
/// in read() after the interfaces stop has nothing left to wake it, which
/// Runtime.shutdown() reports as a deadlock (the flake of issue 18).
final class EchoService: @unchecked Sendable {
    let listener: TCPListener
    private let acceptor = Mutex<JoinHandle<Void>?>(nil)
    private let connections = Mutex<[(socket: TCPSocket, handler: JoinHandle<Void>)]>([])

    init(_ listener: TCPListener, on runtime: Runtime) {
        self.listener = listener
        let handle = runtime.spawn { [self] in
            while let c = try? listener.accept() {
                let handler = UThread.spawn {
                    var buffer = [UInt8](repeating: 0, count: 16384)
                    while let n = try? c.read(into: &buffer), n > 0 {
                        if writePrefix(c, buffer, n) != nil { break }
                    }
                    c.close()
                }
                connections.withLock { $0.append((c, handler)) }
            }
        }
        acceptor.withLock { $0 = handle }
    }

    /// Closes the listener and every accepted connection (waking their uthreads) and
    /// waits for all of its uthreads.
    func stop() {
        listener.close()
        acceptor.withLock { $0 }?.join()
        let all = connections.withLock { $0 }
        for c in all { c.socket.close() }
        for c in all { c.handler.join() }
    }
}

/// Starts an ``EchoService``; the caller stops it before the interfaces.
func startEcho(_ listener: TCPListener, on runtime: Runtime) -> EchoService {
    EchoService(listener, on: runtime)
}

/// Waits (polling) until `condition` holds or `seconds` pass.
func eventually(seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = MonotonicInstant.now.advanced(by: .milliseconds(Int64(seconds * 1000)))
    while MonotonicInstant.now < deadline {
        if condition() { return true }
        if UThread.isInUThread { UThread.sleep(for: .milliseconds(5)) } else { usleep(5_000) }   // never block a kthread
    }
    return condition()
}

@Suite(.serialized) struct TCPSocketTests {
    @Test func connectAcceptEchoAndClose() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let listener = try TCPListener(interface: s.b, port: 80, configuration: testTCPConfiguration())
        let echo = startEcho(listener, on: s.runtime)
        defer { echo.stop() }
        let size = 1 << 20
        let echoed = try s.run { () throws -> Bool in
            let c = try TCPSocket.connect(interface: s.a, to: serverAddress, configuration: testTCPConfiguration())
            #expect(c.state == .established)
            #expect(c.remoteAddress == serverAddress)
            #expect(c.localAddress.map { ephemeralPorts.contains($0.port) } == true)
            let data = pattern(size)
            // A writer uthread and this reader: the echo comes back while we still send.
            let writer = UThread.spawn { () -> Int in (try? c.write(data)) ?? -1 }
            var got = [UInt8]()
            got.reserveCapacity(size)
            var buffer = [UInt8](repeating: 0, count: 65536)
            while got.count < size {
                let n = try c.read(into: &buffer)
                if n == 0 { break }
                got.append(contentsOf: buffer[..<n])
            }
            #expect(writer.join() == size)
            try c.shutdown(.write)
            #expect(try c.read(into: &buffer) == 0)   // the server closes after our FIN
            c.close()
            return got == data
        }
        #expect(echoed)
        listener.close()
        // FIN exchanges, then TIME_WAIT (200 ms) and the tables are empty.
        #expect(eventually { s.a.tcpConnectionCount == 0 && s.b.tcpConnectionCount == 0 },
                "\(s.a.tcpConnectionCount) \(s.b.tcpConnectionCount)")
        let sa = s.a.statistics.tcp, sb = s.b.statistics.tcp
        #expect(sa.activeOpens == 1 && sb.passiveOpens == 1)
        #expect(sa.segmentsSent > 0 && sb.segmentsReceived > 0 && sa.resetsSent == 0 && sb.resetsSent == 0)
    }

    @Test func manyConnectionsAtOnce() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let listener = try TCPListener(interface: s.b, port: 80, backlog: 256, configuration: testTCPConfiguration())
        let echo = startEcho(listener, on: s.runtime)
        defer { echo.stop() }
        let ok = Atomic<Int>(0)
        let clients = (0..<100).map { i in
            s.runtime.spawn {
                guard let c = try? TCPSocket.connect(interface: s.a, to: serverAddress, configuration: testTCPConfiguration()) else { return }
                c.receiveTimeout = .seconds(10)
                let m = pattern(100 + i, seed: i)
                var buffer = [UInt8](repeating: 0, count: 1000)
                var got: [UInt8] = []
                guard (try? c.write(m)) == m.count else { return }
                while got.count < m.count, let n = try? c.read(into: &buffer), n > 0 { got.append(contentsOf: buffer[..<n]) }
                if got == m { ok.add(1, ordering: .relaxed) }
                c.close()
            }
        }
        for c in clients { c.join() }
        #expect(ok.load(ordering: .relaxed) == 100)
        listener.close()
        #expect(eventually { s.a.tcpConnectionCount == 0 && s.b.tcpConnectionCount == 0 })
    }

    @Test func connectToAClosedPortIsRefused() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let error = try s.run { () -> SocketError? in
            do throws(SocketError) {
                _ = try TCPSocket.connect(interface: s.a, to: SocketAddress(IPv4Address(10, 9, 0, 9), 9))
                return nil
            } catch { return error }
        }
        #expect(error == .connectionRefused)
        #expect(error?.errno == ECONNREFUSED)
        #expect(s.b.statistics.tcp.noPorts == 1 && s.b.statistics.tcp.resetsSent == 1)
        #expect(eventually { s.a.tcpConnectionCount == 0 })
    }

    @Test func nonBlockingConnectAcceptAndRead() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let listener = try TCPListener(interface: s.b, port: 80, configuration: testTCPConfiguration())
        listener.isNonBlocking = true
        #expect(throws: SocketError.wouldBlock) { _ = try listener.accept() }
        let listenerEvents = Atomic<Int>(0)
        listener.setReadinessHandler { r in if r.contains(.readable) { listenerEvents.add(1, ordering: .relaxed) } }

        let c = TCPSocket(interface: s.a, configuration: testTCPConfiguration())
        c.isNonBlocking = true
        let writable = Atomic<Bool>(false)
        c.setReadinessHandler { r in if r.contains(.writable) { writable.store(true, ordering: .relaxed) } }
        #expect(throws: SocketError.inProgress) { try c.connect(to: serverAddress) }
        #expect(SocketError.inProgress.errno == EINPROGRESS)
        #expect(eventually { writable.load(ordering: .relaxed) })
        #expect(c.state == .established)
        try c.connect(to: serverAddress)   // reports the completed connect once
        #expect(throws: SocketError.alreadyConnected) { try c.connect(to: serverAddress) }

        #expect(eventually { listener.readiness.contains(.readable) })
        #expect(listenerEvents.load(ordering: .relaxed) == 1)
        let server = try listener.accept()
        server.isNonBlocking = true
        var buffer = [UInt8](repeating: 0, count: 100)
        #expect(throws: SocketError.wouldBlock) { _ = try server.read(into: &buffer) }
        let readable = Atomic<Int>(0)
        server.setReadinessHandler { r in if r.contains(.readable) { readable.add(1, ordering: .relaxed) } }
        #expect(try c.write(Array("hello".utf8)) == 5)
        #expect(eventually { readable.load(ordering: .relaxed) > 0 })
        #expect(server.readableBytes == 5)
        #expect(try server.peek(into: UnsafeMutableRawBufferPointer(rebasing: buffer.withUnsafeMutableBytes { $0 }[0..<100])) == 5)
        #expect(try server.read(into: &buffer) == 5)
        #expect(Array(buffer[..<5]) == Array("hello".utf8))
        #expect(throws: SocketError.wouldBlock) { _ = try server.read(into: &buffer) }
        // The peer's FIN: readable (end of stream) and read hang-up.
        try c.shutdown(.write)
        #expect(eventually { server.readiness.contains(.readHangUp) })
        #expect(try server.read(into: &buffer) == 0)
        server.close()
        c.close()
        listener.close()
    }

    @Test func nonBlockingWriteFillsTheSendBuffer() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let listener = try TCPListener(interface: s.b, port: 80, configuration: testTCPConfiguration(buffer: 16384))
        let (c, server) = try s.run { () throws -> (TCPSocket, TCPSocket) in
            let c = try TCPSocket.connect(interface: s.a, to: serverAddress, configuration: testTCPConfiguration(buffer: 16384))
            return (c, try listener.accept())
        }
        c.isNonBlocking = true
        // Nobody reads: the server's receive window and our send buffer fill up (until
        // a write fails twice, 50 ms apart: ACKs in flight may still make room).
        var total = 0
        let chunk = pattern(4096)
        var refusals = 0
        while refusals < 2 && total < 1 << 20 {
            do {
                total += try c.write(chunk)
                refusals = 0
            } catch {
                #expect(error == .wouldBlock)
                refusals += 1
                usleep(50_000)
            }
        }
        #expect(total >= 16384 && total <= 3 * 16384, "\(total)")
        #expect(!c.readiness.contains(.writable))
        let writable = Atomic<Bool>(false)
        c.setReadinessHandler { r in if r.contains(.writable) { writable.store(true, ordering: .relaxed) } }
        // Draining the server makes room again (writable reported).
        let sent = total
        let drained = try s.run { () throws -> Int in
            var buffer = [UInt8](repeating: 0, count: 65536)
            var got = 0
            server.receiveTimeout = .milliseconds(300)
            while got < sent, let n = try? server.read(into: &buffer), n > 0 { got += n }
            return got
        }
        #expect(drained == total)
        #expect(eventually { writable.load(ordering: .relaxed) })
        c.close()
        server.close()
        listener.close()
    }

    @Test func timeoutsAndInterrupts() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let listener = try TCPListener(interface: s.b, port: 80, configuration: testTCPConfiguration())
        listener.acceptTimeout = .milliseconds(100)
        let acceptError = try s.run { () -> SocketError? in
            do throws(SocketError) { _ = try listener.accept(); return nil } catch { return error }
        }
        #expect(acceptError == .timedOut)
        listener.acceptTimeout = nil
        let (c, server) = try s.run { () throws -> (TCPSocket, TCPSocket) in
            let c = try TCPSocket.connect(interface: s.a, to: serverAddress, configuration: testTCPConfiguration())
            return (c, try listener.accept())
        }
        c.receiveTimeout = .milliseconds(100)
        let start = MonotonicInstant.now
        let readError = try s.run { () -> SocketError? in
            var b = [UInt8](repeating: 0, count: 10)
            do throws(SocketError) { _ = try c.read(into: &b); return nil } catch { return error }
        }
        #expect(readError == .timedOut)
        #expect(MonotonicInstant.now.nanoseconds - start.nanoseconds >= 90_000_000)
        // A blocked read ends with .interrupted when its uthread is interrupted.
        c.receiveTimeout = nil
        let reader = s.runtime.spawn { () -> SocketError? in
            var b = [UInt8](repeating: 0, count: 10)
            do throws(SocketError) { _ = try c.read(into: &b); return nil } catch { return error }
        }
        usleep(50_000)
        reader.uthread.interrupt()
        #expect(reader.join() == .interrupted)
        // Close ends a blocked read with .closed.
        let reader2 = s.runtime.spawn { () -> SocketError? in
            var b = [UInt8](repeating: 0, count: 10)
            do throws(SocketError) { _ = try server.read(into: &b); return nil } catch { return error }
        }
        usleep(50_000)
        server.close()
        #expect(reader2.join() == .closed)
        c.close()
        listener.close()
    }

    /// More simultaneous SYNs than the backlog: the listener answers the rest with SYN
    /// cookies, and those connections work too.
    @Test func backlogOverflowFallsBackToSYNCookies() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let listener = try TCPListener(interface: s.b, port: 80, backlog: 4, configuration: testTCPConfiguration())
        let echo = startEcho(listener, on: s.runtime)
        defer { echo.stop() }
        let n = 40
        let ok = try s.run { () -> Int in
            // All SYNs leave in one burst (non-blocking connects), before any handshake completes.
            var sockets: [TCPSocket] = []
            for _ in 0..<n {
                let c = TCPSocket(interface: s.a, configuration: testTCPConfiguration())
                c.isNonBlocking = true
                #expect(throws: SocketError.inProgress) { try c.connect(to: serverAddress) }
                sockets.append(c)
            }
            var ok = 0
            for (i, c) in sockets.enumerated() {
                c.isNonBlocking = false
                c.receiveTimeout = .seconds(15)
                let m = pattern(64, seed: i)
                var got: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 128)
                guard (try? c.write(m)) == m.count else { continue }
                while got.count < m.count, let k = try? c.read(into: &buffer), k > 0 { got.append(contentsOf: buffer[..<k]) }
                if got == m { ok += 1 }
                c.close()
            }
            return ok
        }
        let t = s.b.statistics.tcp
        #expect(ok == n, "\(t)")
        #expect(t.synCookiesSent > 0 && t.synCookiesAccepted > 0, "\(t)")
        #expect(listener.synCookiesSent == t.synCookiesSent)
        listener.close()
    }

    @Test func shutdownLingerAndReset() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let listener = try TCPListener(interface: s.b, port: 80, configuration: testTCPConfiguration())
        let (c, server) = try s.run { () throws -> (TCPSocket, TCPSocket) in
            let c = try TCPSocket.connect(interface: s.a, to: serverAddress, configuration: testTCPConfiguration())
            return (c, try listener.accept())
        }
        // shutdown(.write): the peer reads end of stream; our writes fail with EPIPE.
        try c.shutdown(.write)
        #expect(throws: SocketError.brokenPipe) { _ = try c.write([1, 2, 3]) }
        #expect(SocketError.brokenPipe.errno == EPIPE)
        let eof = try s.run { () throws -> Int in
            var b = [UInt8](repeating: 0, count: 10)
            return try server.read(into: &b)
        }
        #expect(eof == 0)
        #expect(server.state == .closeWait)
        // The other direction still works.
        #expect(try server.write([7, 8, 9]) == 3)
        let back = try s.run { () throws -> [UInt8] in
            var b = [UInt8](repeating: 0, count: 10)
            let n = try c.read(into: &b)
            return Array(b[..<n])
        }
        #expect(back == [7, 8, 9])
        // linger = .zero: close resets; the peer sees ECONNRESET.
        server.linger = .zero
        server.close()
        let reset = try s.run { () -> SocketError? in
            var b = [UInt8](repeating: 0, count: 10)
            c.receiveTimeout = .seconds(5)
            do throws(SocketError) { _ = try c.read(into: &b); return nil } catch { return error }
        }
        #expect(reset == .connectionReset)
        #expect(c.state == .closed)
        c.close()

        // A linger time: close waits for the FIN to be acknowledged.
        let (c2, server2) = try s.run { () throws -> (TCPSocket, TCPSocket) in
            let c = try TCPSocket.connect(interface: s.a, to: serverAddress, configuration: testTCPConfiguration())
            return (c, try listener.accept())
        }
        c2.linger = .seconds(2)
        let state = try s.run { () -> TCPState in
            _ = try? c2.write(pattern(100_000))
            c2.close()
            return c2.state
        }
        #expect(state == .finWait2 || state == .timeWait, "\(state)")
        server2.close()
        listener.close()
        #expect(eventually { s.a.tcpConnectionCount == 0 && s.b.tcpConnectionCount == 0 })
    }

    @Test func bindingAndOptions() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let listener = try TCPListener(interface: s.b, port: 80)
        #expect(listener.localAddress == serverAddress)
        #expect(throws: SocketError.addressInUse(80)) { _ = try TCPListener(interface: s.b, port: 80) }
        #expect(throws: SocketError.addressInUse(80)) { _ = try TCPListener(interface: s.b, port: 80, reuseAddress: true) }
        // TCP's ports are apart from UDP's.
        let udp = try UDPSocket(interface: s.b, port: 80)
        udp.close()
        let ephemeral = try TCPListener(interface: s.b, port: 0)
        #expect(ephemeralPorts.contains(ephemeral.localAddress.port))
        ephemeral.close()

        let c = TCPSocket(interface: s.a)
        #expect(c.state == .closed && c.localAddress == nil && c.remoteAddress == nil)
        #expect(throws: SocketError.notConnectedStream) { _ = try c.write([1]) }
        #expect(throws: SocketError.notConnectedStream) { try c.shutdown(.both) }
        #expect(throws: SocketError.addressNotAvailable(IPv4Address(1, 2, 3, 4))) { try c.bind(port: 5000, address: IPv4Address(1, 2, 3, 4)) }
        try c.bind(port: 5000)
        #expect(throws: SocketError.alreadyBound) { try c.bind(port: 5001) }
        let d = TCPSocket(interface: s.a)
        #expect(throws: SocketError.addressInUse(5000)) { try d.bind(port: 5000) }
        d.reuseAddress = true
        try d.bind(port: 5000)
        d.close()
        c.noDelay = true
        #expect(c.noDelay)
        var k = TCPKeepalive()
        k.enabled = true
        k.idle = .seconds(10)
        c.keepalive = k
        #expect(c.keepalive == k)
        let keepalive = k
        c.receiveBufferSize = 32768
        c.sendBufferSize = 65536
        #expect(c.receiveBufferSize == 32768 && c.sendBufferSize == 65536)
        c.linger = .seconds(1)
        #expect(c.linger == .seconds(1))
        try s.run { () throws in
            try c.connect(to: serverAddress)
            #expect(c.localAddress == SocketAddress(IPv4Address(10, 9, 0, 2), 5000))
            #expect(c.noDelay && c.keepalive == keepalive)
            #expect(c.info.state == .established)
            #expect(c.info.maximumSegmentSize > 0 && c.info.maximumSegmentSize <= 1460)
        }
        #expect(throws: SocketError.alreadyConnected) { try c.connect(to: serverAddress) }
        #expect(throws: SocketError.invalidDestination(SocketAddress(.any, 80))) { try TCPSocket(interface: s.a).connect(to: SocketAddress(.any, 80)) }
        c.linger = nil
        c.close()
        #expect(throws: SocketError.closed) { _ = try c.write([1]) }
        listener.close()
    }

    /// A new SYN for a 4-tuple the server holds in TIME-WAIT starts a new connection.
    @Test func aNewSYNEndsTIMEWAIT() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        var serverConfig = testTCPConfiguration()
        serverConfig.timeWaitDuration = .seconds(30)
        let listener = try TCPListener(interface: s.b, port: 80, configuration: serverConfig)
        let first = try s.run { () throws -> TCPSocket in
            let c = TCPSocket(interface: s.a, configuration: testTCPConfiguration())
            try c.bind(port: 5000)
            try c.connect(to: serverAddress)
            let server = try listener.accept()
            server.close()   // the server closes first: it ends in TIME-WAIT
            var b = [UInt8](repeating: 0, count: 10)
            #expect(try c.read(into: &b) == 0)
            c.close()
            return server
        }
        #expect(eventually { first.state == .timeWait && s.a.tcpConnectionCount == 0 }, "\(first.state)")
        let second = try s.run { () throws -> TCPState in
            let c = TCPSocket(interface: s.a, configuration: testTCPConfiguration())
            try c.bind(port: 5000)
            c.sendTimeout = .seconds(5)
            try c.connect(to: serverAddress)
            let server = try listener.accept()
            #expect(try c.write([42]) == 1)
            var b = [UInt8](repeating: 0, count: 10)
            #expect(try server.read(into: &b) == 1 && b[0] == 42)
            c.abort()
            server.close()
            return server.state
        }
        #expect(second != .timeWait)
        listener.close()
    }

    /// The timer uthread wakes at the earliest TCP deadline, not only every 50 ms: a 5 ms
    /// TIME-WAIT ends within a few milliseconds on an idle interface.
    @Test func timersRunAtTheirDeadline() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        var c5 = testTCPConfiguration()
        c5.timeWaitDuration = .milliseconds(5)
        let config = c5
        let listener = try TCPListener(interface: s.b, port: 80, configuration: config)
        var waits: [Int64] = []
        for _ in 0..<5 {
            let c = try s.run { () throws -> TCPSocket in
                let c = try TCPSocket.connect(interface: s.a, to: serverAddress, configuration: config)
                let server = try listener.accept()
                c.close()   // we close first: TIME-WAIT here
                var b = [UInt8](repeating: 0, count: 10)
                _ = try server.read(into: &b)
                server.close()
                return c
            }
            while c.state != .timeWait && c.state != .closed { usleep(200) }
            let start = MonotonicInstant.now.nanoseconds
            while s.a.tcpConnectionCount > 0 && MonotonicInstant.now.nanoseconds - start < 1_000_000_000 { usleep(200) }
            waits.append((MonotonicInstant.now.nanoseconds - start) / 1_000_000)
        }
        let average = waits.reduce(0, +) / Int64(waits.count)
        #expect(average < 20, "TIME-WAIT of 5 ms took \(waits) ms")
        listener.close()
    }

    /// Closing a listener resets the connections nobody accepted.
    @Test func closingAListenerResetsWhatWasNotAccepted() throws {
        let s = try TwoStacks()
        defer { s.stop() }
        let listener = try TCPListener(interface: s.b, port: 80, configuration: testTCPConfiguration())
        let errors = try s.run { () throws -> [SocketError?] in
            let clients = try (0..<3).map { _ in try TCPSocket.connect(interface: s.a, to: serverAddress, configuration: testTCPConfiguration()) }
            for _ in 0..<500 where listener.pendingConnections < 3 { UThread.sleep(for: .milliseconds(10)) }
            #expect(listener.pendingConnections == 3)
            listener.close()
            return clients.map { c in
                c.receiveTimeout = .seconds(5)
                var b = [UInt8](repeating: 0, count: 10)
                do throws(SocketError) { _ = try c.read(into: &b); return nil } catch { return error }
            }
        }
        #expect(errors == [.connectionReset, .connectionReset, .connectionReset])
        #expect(eventually { s.a.tcpConnectionCount == 0 && s.b.tcpConnectionCount == 0 })
    }

    @Test func errnoMapping() {
        #expect(SocketError(TCPError.refused) == .connectionRefused)
        #expect(SocketError(TCPError.reset).errno == ECONNRESET)
        #expect(SocketError(TCPError.timedOut).errno == ETIMEDOUT)
        #expect(SocketError(TCPError.writeClosed).errno == EPIPE)
        #expect(SocketError(TCPError.aborted).errno == ECONNABORTED)
        #expect(SocketError(TCPError.notConnected).errno == ENOTCONN)
        #expect(SocketError(TCPError.unreachable, remote: IPv4Address(1, 2, 3, 4)) == .hostUnreachable(IPv4Address(1, 2, 3, 4)))
        #expect(SocketError.alreadyConnected.errno == EISCONN)
        #expect(SocketError.alreadyInProgress.errno == EALREADY)
        #expect(SocketError.invalidArgument.errno == EINVAL)
        #expect(Readiness(TCPReadiness([.readable, .readHangUp])) == [.readable, .readHangUp])
    }
}
