// UnixSocketTests.swift: the AF_UNIX provider through the SocketHandle contract, on
// uthreads over a MemFS root: names, connections, datagrams, records, descriptors and
// credentials in order, shutdown, readiness and the errnos Linux gives.
import FileSystem
import SyscallEmu
import SystemPackage
import Testing
import UThreads

#if canImport(Glibc)
import Glibc
#endif

let AF_UNIX = SocketConstants.AF_UNIX
let STREAM = SocketConstants.SOCK_STREAM, DGRAM = SocketConstants.SOCK_DGRAM, SEQPACKET = SocketConstants.SOCK_SEQPACKET

/// A provider over a fresh MemFS root, for one test.
func makeProvider() throws -> UnixSocketProvider {
    let ctx = try FileSystemContext(vfs: VFS(root: MemFS()), credentials: .host)
    return UnixSocketProvider(fs: ctx, pid: 4242)
}

func address(_ path: String) -> SocketAddress {
    let bytes: [UInt8] = [UInt8(AF_UNIX), 0] + Array(path.utf8) + [0]
    return try! bytes.withUnsafeBytes { try SocketAddress(bytes: $0) }
}

func abstractAddress(_ name: String) -> SocketAddress {
    let bytes: [UInt8] = [UInt8(AF_UNIX), 0, 0] + Array(name.utf8)
    return try! bytes.withUnsafeBytes { try SocketAddress(bytes: $0) }
}

func bytes(of a: SocketAddress) -> [UInt8] { a.withUnsafeBytes { Array($0) } }

extension SocketHandle {
    @discardableResult
    func send(_ data: [UInt8], to: SocketAddress? = nil, control: [ControlMessage] = [], nonBlocking: Bool = false) throws -> Int {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws -> Int in
            try [raw].withUnsafeBufferPointer { list throws -> Int in
                try send(list, to: to, control: control, flags: [], nonBlocking: nonBlocking)
            }
        }
    }

    func receive(_ n: Int, flags: MessageFlags = [], nonBlocking: Bool = false) throws -> ([UInt8], ReceivedMessage) {
        var buf = [UInt8](repeating: 0, count: n)
        let r = try buf.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) throws -> ReceivedMessage in
            try [raw].withUnsafeBufferPointer { list throws -> ReceivedMessage in
                try receive(into: list, flags: flags, nonBlocking: nonBlocking, wantAddress: true, controlCapacity: 256)
            }
        }
        return (Array(buf.prefix(min(r.count, n))), r)
    }
}

/// Runs `body` on a uthread of a 2-kthread runtime.
func onUThreads(_ body: @escaping @Sendable () throws -> Void) throws {
    let error = try Runtime.run(RuntimeConfiguration(kthreads: 2)) { () -> String? in
        do { try body(); return nil } catch { return "\(error)" }
    }
    if let error { Issue.record("failed: \(error)") }
}

@Suite("AF_UNIX sockets", .serialized, .timeLimit(.minutes(2)))
struct UnixSocketTests {
    @Test("a socket pair of each type carries bytes both ways; bad types and protocols are refused")
    func pairs() throws {
        let p = try makeProvider()
        for type in [STREAM, DGRAM, SEQPACKET] {
            let (a, b) = try p.makePair(family: AF_UNIX, type: type, protocol: 0)
            #expect(try a.send(Array("ping".utf8)) == 4)
            #expect(try b.receive(16, nonBlocking: true).0 == Array("ping".utf8))
            #expect(try b.send(Array("pong".utf8)) == 4)
            #expect(try a.receive(16, nonBlocking: true).0 == Array("pong".utf8))
            #expect(bytes(of: try a.peerAddress()) == [1, 0])
        }
        #expect(throws: Errno.socketTypeNotSupported) { try p.makeSocket(family: AF_UNIX, type: 4, protocol: 0) }
        #expect(throws: Errno.protocolNotSupported) { try p.makeSocket(family: AF_UNIX, type: STREAM, protocol: 6) }
    }

    @Test("bind makes a socket inode; EADDRINUSE, connect, accept, names with Linux's lengths, unlink, ECONNREFUSED")
    func namedStream() throws {
        let p = try makeProvider()
        try onUThreads {
            let server = try p.makeSocket(family: AF_UNIX, type: STREAM, protocol: 0)
            try server.bind(address("/srv"))
            #expect(try p.fileSystem.status("/srv").kind == .socket)
            #expect(bytes(of: try server.localAddress()) == [1, 0] + Array("/srv".utf8) + [0])
            let other = try p.makeSocket(family: AF_UNIX, type: STREAM, protocol: 0)
            #expect(throws: Errno.addressInUse) { try other.bind(address("/srv")) }
            #expect(throws: Errno.invalidArgument) { try server.bind(address("/again")) }
            let client = try p.makeSocket(family: AF_UNIX, type: STREAM, protocol: 0)
            #expect(throws: Errno.connectionRefused) { try client.connect(address("/srv"), nonBlocking: false) }  // not listening
            try server.listen(backlog: 4)
            try client.connect(address("/srv"), nonBlocking: false)
            #expect(throws: Errno.socketIsConnected) { try client.connect(address("/srv"), nonBlocking: false) }
            let (conn, peer) = try server.accept(nonBlocking: false)
            #expect(bytes(of: peer) == [1, 0])
            #expect(bytes(of: try conn.localAddress()) == bytes(of: try server.localAddress()))
            #expect(bytes(of: try client.peerAddress()) == [1, 0] + Array("/srv".utf8) + [0])
            try client.send(Array("hello".utf8))
            #expect(try conn.receive(5).0 == Array("hello".utf8))
            #expect(throws: Errno.noSuchFileOrDirectory) {
                try p.makeSocket(family: AF_UNIX, type: STREAM, protocol: 0).connect(address("/missing"), nonBlocking: false)
            }
            #expect(throws: Errno.protocolWrongTypeForSocket) {
                try p.makeSocket(family: AF_UNIX, type: DGRAM, protocol: 0).connect(address("/srv"), nonBlocking: false)
            }
            server.close()
            #expect(throws: Errno.connectionRefused) {
                try p.makeSocket(family: AF_UNIX, type: STREAM, protocol: 0).connect(address("/srv"), nonBlocking: false)
            }
            try p.fileSystem.unlink("/srv")
            #expect(throws: Errno.noSuchFileOrDirectory) {
                try p.makeSocket(family: AF_UNIX, type: STREAM, protocol: 0).connect(address("/srv"), nonBlocking: false)
            }
        }
    }

    @Test("abstract names and autobind: exact lengths, EADDRINUSE, no file")
    func abstractNames() throws {
        let p = try makeProvider()
        let s = try p.makeSocket(family: AF_UNIX, type: DGRAM, protocol: 0)
        try s.bind(abstractAddress("junction-test"))
        #expect(bytes(of: try s.localAddress()) == [1, 0, 0] + Array("junction-test".utf8))
        #expect(throws: Errno.addressInUse) { try p.makeSocket(family: AF_UNIX, type: DGRAM, protocol: 0).bind(abstractAddress("junction-test")) }
        let auto = try p.makeSocket(family: AF_UNIX, type: DGRAM, protocol: 0)
        try auto.bind(try [UInt8(AF_UNIX), 0].withUnsafeBytes { try SocketAddress(bytes: $0) })
        let name = bytes(of: try auto.localAddress())
        #expect(name.count == 8 && name[2] == 0)
        #expect(throws: Errno.invalidArgument) { try auto.bind(abstractAddress("x")) }
        #expect(throws: Errno.invalidArgument) { try s.connect(try [2, 0, 0].withUnsafeBytes { try SocketAddress(bytes: $0) }, nonBlocking: false) }
    }

    @Test("datagrams: boundaries, MSG_TRUNC, the sender's name, EPERM, ECONNREFUSED once the peer is gone")
    func datagrams() throws {
        let p = try makeProvider()
        let server = try p.makeSocket(family: AF_UNIX, type: DGRAM, protocol: 0)
        try server.bind(address("/d"))
        let client = try p.makeSocket(family: AF_UNIX, type: DGRAM, protocol: 0)
        try client.bind(abstractAddress("client"))
        #expect(throws: Errno.socketNotConnected) { try client.send([1]) }
        try client.send(Array("first".utf8), to: address("/d"))
        try client.send(Array("second!".utf8), to: address("/d"))
        let (one, r1) = try server.receive(3, nonBlocking: true)
        #expect(one == Array("fir".utf8))
        #expect(r1.flags.contains(.truncated) && r1.count == 3)
        #expect(r1.address.map(bytes) == [1, 0, 0] + Array("client".utf8))
        #expect(try server.bytesReadable() == 7)
        let (_, r2) = try server.receive(2, flags: .truncated, nonBlocking: true)
        #expect(r2.count == 7)
        #expect(throws: Errno.wouldBlock) { try server.receive(8, nonBlocking: true) }
        // Connected: only the peer may send to it.
        try server.connect(abstractAddress("client"), nonBlocking: false)
        let third = try p.makeSocket(family: AF_UNIX, type: DGRAM, protocol: 0)
        #expect(throws: Errno.notPermitted) { try third.send([1], to: address("/d")) }
        try client.connect(address("/d"), nonBlocking: false)
        try client.send([9])
        #expect(try server.receive(4, nonBlocking: true).0 == [9])
        server.close()
        #expect(throws: Errno.connectionRefused) { try client.send([1]) }
        #expect(throws: Errno.socketNotConnected) { try client.send([1]) }
    }

    @Test("seqpacket keeps records on a connection and gives 0 at the end")
    func seqpacket() throws {
        let p = try makeProvider()
        try onUThreads {
            let l = try p.makeSocket(family: AF_UNIX, type: SEQPACKET, protocol: 0)
            try l.bind(abstractAddress("seq"))
            try l.listen(backlog: 1)
            let c = try p.makeSocket(family: AF_UNIX, type: SEQPACKET, protocol: 0)
            #expect(throws: Errno.socketNotConnected) { try c.send([1]) }
            try c.connect(abstractAddress("seq"), nonBlocking: false)
            let (s, _) = try l.accept(nonBlocking: true)
            try c.send([1, 2, 3])
            try c.send([4, 5])
            #expect(try s.receive(10).0 == [1, 2, 3])
            let (part, r) = try s.receive(1)
            #expect(part == [4] && r.flags.contains(.truncated))
            c.close()
            #expect(try s.receive(10).1.count == 0)
        }
    }

    @Test("descriptors and credentials travel with their bytes, in order; a read stops after descriptors")
    func rightsAndCredentials() throws {
        let p = try makeProvider()
        let (a, b) = try p.makePair(family: AF_UNIX, type: STREAM, protocol: 0)
        let (r, w) = Pipe.makePair()
        let f1 = OpenFile(location: Location(node: AnonymousNode.pipe(), path: "pipe:"), handle: r, flags: [])
        let f2 = OpenFile(location: Location(node: AnonymousNode.pipe(), path: "pipe:"), handle: w, flags: .writeOnly)
        try a.send([1, 2], control: [.rights([f1])])
        try a.send([3, 4], control: [.rights([f2])])
        try a.send([5])
        let (d1, m1) = try b.receive(16, nonBlocking: true)
        #expect(d1 == [1, 2])
        guard case .rights(let got1)? = m1.control.first else { Issue.record("no rights: \(m1.control)"); return }
        #expect(got1.first === f1)
        let (d2, m2) = try b.receive(16, nonBlocking: true)
        #expect(d2 == [3, 4])
        guard case .rights(let got2)? = m2.control.first else { Issue.record("no rights"); return }
        #expect(got2.first === f2)
        #expect(try b.receive(16, nonBlocking: true).0 == [5])
        // SO_PASSCRED: the sender's pid, uid and gid; SO_PEERCRED of a pair: the creator.
        var one: Int32 = 1
        try withUnsafeBytes(of: &one) { try b.setOption(level: 1, name: 16, value: $0) }
        try a.send([6])
        let (_, m3) = try b.receive(4, nonBlocking: true)
        guard case .credentials(let pid, _, _)? = m3.control.first else { Issue.record("no credentials"); return }
        #expect(pid == 4242)
        var cred = (Int32(0), UInt32(0), UInt32(0))
        let n = try withUnsafeMutableBytes(of: &cred) { try a.getOption(level: 1, name: 17, into: $0) }
        #expect(n == 12 && cred.0 == 4242)
        #expect(throws: Errno.notPermitted) {
            if UInt32(getuid()) != 0 { try a.send([1], control: [.credentials(pid: 1, uid: 0, gid: 0)]) } else { throw Errno.notPermitted }
        }
    }

    @Test("stream: shutdown each way, EPIPE, MSG_PEEK, MSG_WAITALL across sends, readiness")
    func streamSemantics() throws {
        let p = try makeProvider()
        try onUThreads {
            let (a, b) = try p.makePair(family: AF_UNIX, type: STREAM, protocol: 0)
            #expect(b.readiness == [.writable])
            try a.send([1, 2, 3])
            #expect(b.readiness.contains(.readable))
            #expect(try b.receive(2, flags: .peek).0 == [1, 2])
            #expect(try b.bytesReadable() == 3)
            #expect(try a.bytesUnsent() == 3)
            // A writer on another uthread completes the MSG_WAITALL read.
            let writer = UThread.spawn { () -> Int in (try? a.send([4, 5, 6])) ?? -1 }
            #expect(try b.receive(6, flags: .waitAll).0 == [1, 2, 3, 4, 5, 6])
            #expect(writer.join() == 3)
            try a.shutdown(SocketConstants.SHUT_WR)
            #expect(try b.receive(4).1.count == 0)
            #expect(throws: Errno.brokenPipe) { try a.send([1]) }
            try b.send([7])
            #expect(try a.receive(4).0 == [7])
            b.close()
            #expect(a.readiness.contains(.hangUp))
            #expect(try a.receive(4).1.count == 0)
            let lone = try p.makeSocket(family: AF_UNIX, type: STREAM, protocol: 0)
            #expect(throws: Errno.socketNotConnected) { try lone.send([1]) }
            #expect(throws: Errno.invalidArgument) { try lone.receive(1) }
            #expect(throws: Errno.invalidArgument) { try lone.listen(backlog: 1) }  // unbound
        }
    }

    @Test("a full send buffer blocks the writer until the reader drains it; a nonblocking one gets EAGAIN")
    func backpressure() throws {
        let p = try makeProvider()
        try onUThreads {
            let (a, b) = try p.makePair(family: AF_UNIX, type: STREAM, protocol: 0)
            var small: Int32 = 4096
            try withUnsafeBytes(of: &small) { try a.setOption(level: 1, name: 7, value: $0) }
            var v: Int32 = 0
            _ = try withUnsafeMutableBytes(of: &v) { try a.getOption(level: 1, name: 7, into: $0) }
            #expect(v == 8192)
            let block = [UInt8](repeating: 7, count: 100_000)
            let n = try a.send(block, nonBlocking: true)
            #expect(n > 0 && n < block.count)
            #expect(throws: Errno.wouldBlock) { try a.send([1], nonBlocking: true) }
            let writer = UThread.spawn { () -> Int in (try? a.send(block)) ?? -1 }
            var total = 0
            while total < n + block.count { total += try b.receive(65536).1.count }
            #expect(writer.join() == block.count)
        }
    }
}
