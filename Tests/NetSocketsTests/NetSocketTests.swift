// NetSocketTests.swift: the NetStack socket backend through the socket contract: TCP
// within an instance over 127.0.0.1 and between two instances (dual-stack AF_INET6 with
// ::ffff: peers), non-blocking connect, refusals, port reservation, options, receive
// flags, UDP with MSG_PEEK and MSG_TRUNC.
import FileSystem
import Glibc
@testable import NetSockets
import NetStack
import SyscallEmu
import SystemPackage
import Testing
import UThreads

@Suite(.serialized) struct NetSocketTests {
    @Test func tcpOverTheInStackLoopback() throws {
        let s = try TwoInstances()
        defer { s.stop() }
        try s.run { () throws in
            let server = try s.a.makeSocket(family: AF_INET, type: STREAM, protocol: 0)
            try server.bind(v4("0.0.0.0", 7000))
            try server.listen(backlog: 8)
            #expect(try intOption(server, SocketConstants.SOL_SOCKET, OptionName.SO_ACCEPTCONN) == 1)
            let client = try s.a.makeSocket(family: AF_INET, type: STREAM, protocol: 0)
            try client.connect(v4("127.0.0.1", 7000), nonBlocking: false)
            let (conn, peer) = try server.accept(nonBlocking: false)
            let local = try client.localAddress()
            #expect(show(peer) == show(local))
            #expect(show(try client.peerAddress()) == "127.0.0.1:7000")
            #expect(try send(client, Array("ping".utf8)) == 4)
            let (m, bytes) = try receive(conn, 16)
            #expect(m.count == 4)
            #expect(bytes == Array("ping".utf8))
            client.close()
            let (eof, _) = try receive(conn, 16)
            #expect(eof.count == 0)
            conn.close()
            server.close()
        }
    }

    @Test func dualStackServerSeesMappedIPv4Peers() throws {
        let s = try TwoInstances()
        defer { s.stop() }
        try s.run { () throws in
            let server = try s.b.makeSocket(family: AF_INET6, type: STREAM, protocol: 0)
            try server.bind(v6mapped("0.0.0.0", 80))
            try server.listen(backlog: 8)
            #expect(show(try server.localAddress()) == "[::]:80")
            let client = try s.a.makeSocket(family: AF_INET, type: STREAM, protocol: 0)
            #expect(errno { try client.connect(v4("10.9.0.9", 80), nonBlocking: true) } == EINPROGRESS)
            // EALREADY while the handshake runs; once it is done, the next call says 0
            // (once), then EISCONN, as Linux (the handshake may finish before the call).
            let second = errno { try client.connect(v4("10.9.0.9", 80), nonBlocking: true) }
            #expect(second == EALREADY || second == 0)
            #expect(waitReady(client, .writable))
            #expect(try intOption(client, SocketConstants.SOL_SOCKET, OptionName.SO_ERROR) == 0)
            if second == EALREADY { #expect(errno { try client.connect(v4("10.9.0.9", 80), nonBlocking: true) } == 0) }
            #expect(errno { try client.connect(v4("10.9.0.9", 80), nonBlocking: true) } == EISCONN)
            let (conn, peer) = try server.accept(nonBlocking: false)
            #expect(show(peer).hasPrefix("[::ffff:10.9.0.2]:"))
            #expect(show(try conn.localAddress()) == "[::ffff:10.9.0.9]:80")
            try send(conn, Array(repeating: 7, count: 100_000))
            var got = 0
            while got < 100_000 {
                let (m, _) = try receive(client, 65536)
                if m.count == 0 { break }
                got += m.count
            }
            #expect(got == 100_000)
            conn.close(); client.close(); server.close()
        }
    }

    @Test func refusedUnreachableAndV6Only() throws {
        let s = try TwoInstances()
        defer { s.stop() }
        try s.run { () throws in
            let c1 = try s.a.makeSocket(family: AF_INET, type: STREAM, protocol: 0)
            #expect(errno { try c1.connect(v4("10.9.0.9", 81), nonBlocking: false) } == ECONNREFUSED)
            let c2 = try s.a.makeSocket(family: AF_INET, type: STREAM, protocol: 0)
            #expect(errno { try c2.connect(v4("127.0.0.1", 81), nonBlocking: true) } == EINPROGRESS)
            #expect(waitReady(c2, [.error, .hangUp]))
            #expect(try intOption(c2, SocketConstants.SOL_SOCKET, OptionName.SO_ERROR) == ECONNREFUSED)
            let c3 = try s.a.makeSocket(family: AF_INET, type: STREAM, protocol: 0)
            #expect(errno { try c3.connect(v4("192.168.77.1", 80), nonBlocking: false) } == ENETUNREACH)  // no gateway
            let c4 = try s.a.makeSocket(family: AF_INET6, type: STREAM, protocol: 0)
            var v6 = [UInt8](repeating: 0, count: 16); v6[0] = 0x20; v6[1] = 0x01; v6[15] = 1
            #expect(errno { try c4.connect(.inet6(address: v6, port: 80), nonBlocking: false) } == ENETUNREACH)
            try setInt(c4, SocketConstants.IPPROTO_IPV6, OptionName.IPV6_V6ONLY, 1)
            #expect(errno { try c4.connect(v6mapped("10.9.0.9", 80), nonBlocking: false) } == ENETUNREACH)
            #expect(errno { try c1.setOption(level: SocketConstants.IPPROTO_IPV6, name: OptionName.IPV6_V6ONLY, value: UnsafeRawBufferPointer(start: nil, count: 0)) } == ENOPROTOOPT)
            #expect(errno { try c1.send(UnsafeBufferPointer(start: nil, count: 0), to: nil, control: [], flags: [], nonBlocking: false) } == 0)
            let fresh = try s.a.makeSocket(family: AF_INET, type: STREAM, protocol: 0)
            #expect(errno { try send(fresh, [1]) } == EPIPE)
            #expect(errno { _ = try receive(fresh, 1) } == ENOTCONN)
            #expect(errno { _ = try fresh.peerAddress() } == ENOTCONN)
            #expect(errno { _ = try s.a.makeSocket(family: AF_INET, type: STREAM, protocol: 17) } == EPROTONOSUPPORT)
            #expect(errno { _ = try s.a.makeSocket(family: AF_INET, type: 5, protocol: 0) } == ESOCKTNOSUPPORT)
            #expect(errno { _ = try s.a.makeSocket(family: AF_INET, type: 99, protocol: 0) } == EINVAL)
        }
    }

    @Test func portReservation() throws {
        let s = try TwoInstances()
        defer { s.stop() }
        try s.run { () throws in
            func tcp() throws -> any SocketHandle { try s.a.makeSocket(family: AF_INET, type: STREAM, protocol: 0) }
            let x = try tcp(), y = try tcp()
            try x.bind(v4("0.0.0.0", 9000))
            #expect(errno { try y.bind(v4("127.0.0.1", 9000)) } == EADDRINUSE)
            #expect(errno { try y.bind(v4("10.9.0.99", 9001)) } == EADDRNOTAVAIL)
            #expect(errno { try x.bind(v4("0.0.0.0", 9002)) } == EINVAL)   // bound already
            // SO_REUSEADDR: two bound sockets share a port, but only one may listen.
            let r1 = try tcp(), r2 = try tcp()
            try setInt(r1, SocketConstants.SOL_SOCKET, OptionName.SO_REUSEADDR, 1)
            try setInt(r2, SocketConstants.SOL_SOCKET, OptionName.SO_REUSEADDR, 1)
            try r1.bind(v4("0.0.0.0", 9100))
            try r2.bind(v4("0.0.0.0", 9100))
            try r1.listen(backlog: 4)
            #expect(errno { try r2.listen(backlog: 4) } == EADDRINUSE)
            // SO_REUSEPORT: both listen; connections reach one of them.
            let p1 = try tcp(), p2 = try tcp()
            try setInt(p1, SocketConstants.SOL_SOCKET, OptionName.SO_REUSEPORT, 1)
            try setInt(p2, SocketConstants.SOL_SOCKET, OptionName.SO_REUSEPORT, 1)
            try p1.bind(v4("0.0.0.0", 9200)); try p2.bind(v4("0.0.0.0", 9200))
            try p1.listen(backlog: 4); try p2.listen(backlog: 4)
            let c = try tcp()
            try c.connect(v4("127.0.0.1", 9200), nonBlocking: false)
            #expect(waitReady(p2, .readable))
            _ = try p2.accept(nonBlocking: true)
            #expect(errno { _ = try p1.accept(nonBlocking: true) } == EAGAIN)
            // Port 0: an ephemeral port; closing releases ports.
            let e = try tcp()
            try e.bind(v4("0.0.0.0", 0))
            #expect(ephemeralRange.contains(try e.localAddress().port!))
            x.close()
            try y.bind(v4("127.0.0.1", 9000))
            // UDP's ports are apart from TCP's.
            let u = try s.a.makeSocket(family: AF_INET, type: DGRAM, protocol: 0)
            try u.bind(v4("0.0.0.0", 9000))
        }
    }

    @Test func optionsAsLinuxReportsThem() throws {
        let s = try TwoInstances()
        defer { s.stop() }
        try s.run { () throws in
            let t = try s.a.makeSocket(family: AF_INET6, type: STREAM, protocol: 0)
            let SOL = SocketConstants.SOL_SOCKET, TCP = SocketConstants.IPPROTO_TCP
            try setInt(t, SOL, OptionName.SO_SNDBUF, 10000)
            #expect(try intOption(t, SOL, OptionName.SO_SNDBUF) == 20000)
            try setInt(t, SOL, OptionName.SO_RCVBUF, 100)
            #expect(try intOption(t, SOL, OptionName.SO_RCVBUF) == 2304)
            try setInt(t, TCP, OptionName.TCP_DEFER_ACCEPT, 5)
            #expect(try intOption(t, TCP, OptionName.TCP_DEFER_ACCEPT) == 7)
            #expect(try intOption(t, TCP, OptionName.TCP_KEEPIDLE) == 7200)
            #expect(errno { try setInt(t, TCP, OptionName.TCP_KEEPCNT, 0) } == EINVAL)
            try setInt(t, TCP, OptionName.TCP_NODELAY, 1)
            #expect(try intOption(t, TCP, OptionName.TCP_NODELAY) == 1)
            #expect(try intOption(t, SocketConstants.IPPROTO_IPV6, OptionName.IPV6_V6ONLY) == 0)
            #expect(errno { try setInt(t, SOL, 44, 1) } == ENOPROTOOPT)                 // SO_TXTIME
            #expect(errno { _ = try intOption(t, TCP, 13) } == ENOPROTOOPT)              // TCP_CONGESTION
            #expect(errno { try setInt(t, SOL, OptionName.SO_ERROR, 1) } == ENOPROTOOPT)
            var linger: (Int32, Int32) = (1, 3)
            try withUnsafeBytes(of: &linger) { b throws(Errno) in try t.setOption(level: SOL, name: OptionName.SO_LINGER, value: b) }
            var back: (Int32, Int32) = (0, 0)
            let n = try withUnsafeMutableBytes(of: &back) { b throws(Errno) in try t.getOption(level: SOL, name: OptionName.SO_LINGER, into: b) }
            #expect(n == 8 && back == (1, 3))
            var info = [UInt8](repeating: 0xaa, count: 232)
            let len = try info.withUnsafeMutableBytes { b throws(Errno) in try t.getOption(level: TCP, name: OptionName.TCP_INFO, into: b) }
            #expect(len == 232 && info[0] == 7)   // TCP_CLOSE
            let u = try s.a.makeSocket(family: AF_INET, type: DGRAM, protocol: 0)
            #expect(errno { try setInt(u, TCP, OptionName.TCP_NODELAY, 1) } == ENOPROTOOPT)
            #expect(try intOption(u, SOL, OptionName.SO_RCVBUF) == 212_992)
        }
    }

    @Test func receiveFlags() throws {
        let s = try TwoInstances()
        defer { s.stop() }
        try s.run { () throws in
            let server = try s.b.makeSocket(family: AF_INET, type: STREAM, protocol: 0)
            try server.bind(v4("10.9.0.9", 7))
            try server.listen(backlog: 1)
            let client = try s.a.makeSocket(family: AF_INET, type: STREAM, protocol: 0)
            try client.connect(v4("10.9.0.9", 7), nonBlocking: false)
            let (conn, _) = try server.accept(nonBlocking: false)
            #expect(errno { _ = try receive(conn, 8, nonBlocking: true) } == EAGAIN)
            try send(client, Array("hello".utf8))
            let (p, peeked) = try receive(conn, 3, flags: .peek)
            #expect(p.count == 3 && peeked == Array("hel".utf8))
            try send(client, Array("world".utf8))
            let (w, all) = try receive(conn, 10, flags: .waitAll)   // both sends, however they arrive
            #expect(w.count == 10 && all == Array("helloworld".utf8))
            try send(client, Array("abcdef".utf8))
            #expect(waitReady(conn, .readable))
            #expect(try conn.bytesReadable() > 0)
            try client.shutdown(SocketConstants.SHUT_WR)
            var rest: [UInt8] = []
            while true {
                let (m, b) = try receive(conn, 64)
                if m.count == 0 { break }
                rest += b
            }
            #expect(rest == Array("abcdef".utf8))
            #expect(conn.readiness.contains(.readHangUp))
            conn.close(); client.close(); server.close()
        }
    }

    @Test func udpBetweenInstancesAndOverLoopback() throws {
        let s = try TwoInstances()
        defer { s.stop() }
        try s.run { () throws in
            let server = try s.b.makeSocket(family: AF_INET, type: DGRAM, protocol: 0)
            try server.bind(v4("0.0.0.0", 53))
            let client = try s.a.makeSocket(family: AF_INET6, type: DGRAM, protocol: 0)
            try send(client, Array(repeating: 1, count: 300), to: v6mapped("10.9.0.9", 53))
            let (peek, _) = try receive(server, 100, flags: [.peek, .truncated])
            #expect(peek.count == 300 && peek.flags.contains(.truncated))
            let (m, _) = try receive(server, 100)
            #expect(m.count == 100 && m.flags.contains(.truncated))
            let from = m.address!
            #expect(show(from).hasPrefix("10.9.0.2:"))
            try send(server, Array("pong".utf8), to: from)
            let (r, bytes) = try receive(client, 100)
            #expect(bytes == Array("pong".utf8))
            #expect(show(r.address!) == "[::ffff:10.9.0.9]:53")
            // Within instance B over 127.0.0.1, to the same wildcard socket.
            let local = try s.b.makeSocket(family: AF_INET, type: DGRAM, protocol: 0)
            try local.connect(v4("127.0.0.1", 53), nonBlocking: false)
            try send(local, Array("hi".utf8))
            let (lm, lb) = try receive(server, 10)
            #expect(lb == Array("hi".utf8))
            #expect(show(lm.address!).hasPrefix("127.0.0.1:"))
            #expect(errno { try send(try s.b.makeSocket(family: AF_INET, type: DGRAM, protocol: 0), [1]) } == EDESTADDRREQ)
            #expect(errno { _ = try receive(local, 10, nonBlocking: true) } == EAGAIN)
        }
    }
}
