// NetUDPSocket.swift: an AF_INET/AF_INET6 SOCK_DGRAM socket on NetStack: one UDPSocket
// per interface its bound address covers (0.0.0.0 listens on the device and on the
// loopback), connect, sendto routed by destination, recvmsg with MSG_PEEK and MSG_TRUNC.
import FileSystem
import Glibc
import NetStack
import SyscallEmu
import SystemPackage
import UThreads

final class NetUDPSocket: SocketHandle, @unchecked Sendable {
    /// Replaced only in a forked child, before its program resumes (ForkRule.swift).
    var network: InstanceNetwork
    let family: Int32
    let protocolNumber: Int32
    var socketType: Int32 { SocketConstants.SOCK_DGRAM }
    let common = SocketCommon()
    let events = SocketEvents()

    let lock = SpinLock()
    // Guarded by `lock`.
    private var options = InetOptions(stream: false)
    var bound: (address: IPv4Address, port: UInt16)?
    var sockets: [UDPSocket] = []
    /// connect(2): the peer as the program named it, and the socket that reaches it.
    var peer: (visible: Endpoint, socket: UDPSocket)?
    private var readShut = false, writeShut = false
    var closed = false

    init(network: InstanceNetwork, family: Int32, protocol: Int32) {
        self.network = network
        self.family = family
        protocolNumber = `protocol`
    }

    deinit { close() }

    // MARK: bind and connect

    func bind(_ address: SockAddr) throws(Errno) {
        let target = try InetAddressing.decode(address, family: family)
        try lock.withLock { () throws(Errno) in
            if closed { throw .linux(EBADF) }
            guard bound == nil else { throw .linux(EINVAL) }
            switch target {
            case .ipv4(let a, let p):
                if family == SocketConstants.AF_INET6 && options.v6only { throw .linux(EINVAL) }
                guard network.isLocal(a) else { throw .linux(EADDRNOTAVAIL) }
                try bindLocked(a, p)
            case .ipv6(let any, let p):
                guard any else { throw .linux(EADDRNOTAVAIL) }
                try bindLocked(.any, p)
            case .unspecified: throw .linux(EAFNOSUPPORT)
            }
        }
    }

    /// Reserves the port and opens a NetStack socket on each covered interface. Lock held.
    func bindLocked(_ address: IPv4Address, _ port: UInt16) throws(Errno) {
        let owner = ObjectIdentifier(self)
        let p = try network.udpPorts.reserve(port, PortBinding(owner: owner, address: address,
                                                                reuseAddress: options.reuseAddress, reusePort: options.reusePort))
        do {
            sockets = try open(address, p)
        } catch {
            network.udpPorts.release(p, owner: owner)
            throw error
        }
        bound = (address, p)
    }

    func open(_ address: IPv4Address, _ port: UInt16) throws(Errno) -> [UDPSocket] {
        let covered = address.isUnspecified ? network.interfaces : [network.interface(owning: address)!]
        var out: [UDPSocket] = []
        for i in covered {
            let s = UDPSocket(interface: i)
            s.isNonBlocking = true
            do { try s.bind(port: port) } catch {
                for o in out { o.close() }
                s.close()
                throw Errno(error)
            }
            s.setReadinessHandler { [events] r in events.signal(r) }
            out.append(s)
        }
        return out
    }

    func connect(_ address: SockAddr, nonBlocking: Bool) throws(Errno) {
        let target = try InetAddressing.decode(address, family: family, allowUnspecified: true)
        try lock.withLock { () throws(Errno) in
            if closed { throw .linux(EBADF) }
            switch target {
            case .unspecified:
                // Dissolve: fresh NetStack sockets on the same port take from anyone again.
                guard peer != nil, let b = bound else { return }
                for s in sockets { s.setReadinessHandler(nil); s.close() }
                sockets = try open(b.address, b.port)
                peer = nil
            case .ipv6:
                throw .linux(ENETUNREACH)
            case .ipv4(let destination, let port):
                if family == SocketConstants.AF_INET6 && options.v6only { throw .linux(ENETUNREACH) }
                guard let (interface, routed) = network.route(destination) else { throw .linux(ENETUNREACH) }
                if bound == nil { try bindLocked(.any, 0) }
                guard let s = sockets.first(where: { $0.interface === interface }) else { throw .linux(ENETUNREACH) }
                do throws(NetStack.SocketError) { try s.connect(to: Endpoint(routed, port)) } catch { throw Errno(error) }
                peer = (Endpoint(destination.isUnspecified ? .loopback : destination, port), s)
            }
        }
    }

    // MARK: send and receive

    func send(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, to address: SockAddr?,
              control: [ControlMessage], flags: MessageFlags, nonBlocking: Bool) throws(Errno) -> Int {
        if flags.contains(.outOfBand) { throw .linux(EOPNOTSUPP) }
        let (socket, destination) = try lock.withLock { () throws(Errno) -> (UDPSocket, Endpoint?) in
            if closed { throw .linux(EBADF) }
            if writeShut { throw .linux(EPIPE) }
            if let address {
                guard case .ipv4(let d, let port) = try InetAddressing.decode(address, family: family) else {
                    throw .linux(ENETUNREACH)
                }
                if family == SocketConstants.AF_INET6 && options.v6only { throw .linux(ENETUNREACH) }
                if d.isBroadcast && !options.broadcast { throw .linux(EACCES) }
                guard let (interface, routed) = network.route(d) else { throw .linux(ENETUNREACH) }
                if bound == nil { try bindLocked(.any, 0) }
                guard let s = sockets.first(where: { $0.interface === interface }) else { throw .linux(ENETUNREACH) }
                return (s, Endpoint(routed, port))
            }
            guard let p = peer else { throw .linux(EDESTADDRREQ) }
            return (p.socket, nil)
        }
        func out(_ bytes: UnsafeRawBufferPointer) throws(Errno) -> Int {
            do throws(NetStack.SocketError) {
                if let destination { return try socket.send(bytes, to: destination) }
                return try socket.send(bytes)
            } catch { throw Errno(error) }
        }
        if buffers.count == 1 { return try out(buffers[0]) }
        var joined: [UInt8] = []
        joined.reserveCapacity(buffers.reduce(0) { $0 + $1.count })
        for b in buffers { joined.append(contentsOf: b) }
        return try joined.withUnsafeBytes { b in Result { () throws(Errno) in try out(b) } }.get()
    }

    func receive(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, flags: MessageFlags,
                 nonBlocking: Bool, wantAddress: Bool, controlCapacity: Int) throws(Errno) -> ReceivedMessage {
        if flags.contains(.outOfBand) { throw .linux(EOPNOTSUPP) }
        // The error queue (MSG_ERRQUEUE, IP_RECVERR): NetStack reports no ICMP errors.
        if flags.contains(.errorQueue) { throw .linux(EAGAIN) }
        let (candidates, shut) = try lock.withLock { () throws(Errno) -> ([UDPSocket], Bool) in
            if closed { throw .linux(EBADF) }
            if bound == nil { try bindLocked(.any, 0) }   // Linux autobinds; the call then waits
            return (peer.map { [$0.socket] } ?? sockets, readShut)
        }
        let peek = flags.contains(.peek)
        let r = try events.wait(nonBlocking: nonBlocking || shut, timeout: common.receiveTimeout) {
            () throws(Errno) -> (count: Int, length: Int, from: Endpoint)? in
            for s in candidates {
                do throws(NetStack.SocketError) { return try s.receiveMessage(into: buffers, peek: peek) } catch {
                    if error == .wouldBlock { continue }
                    throw Errno(error)
                }
            }
            return nil
        }
        var m = ReceivedMessage(count: flags.contains(.truncated) ? r.length : r.count)
        if r.length > r.count { m.flags.insert(.truncated) }
        if wantAddress { m.address = InetAddressing.encode(r.from, family: family) }
        return m
    }

    func listen(backlog: Int32) throws(Errno) { throw .linux(EOPNOTSUPP) }

    func accept(nonBlocking: Bool) throws(Errno) -> (socket: any SocketHandle, peer: SockAddr) { throw .linux(EOPNOTSUPP) }

    func shutdown(_ how: Int32) throws(Errno) {
        guard (0...2).contains(how) else { throw .linux(EINVAL) }
        try lock.withLock { () throws(Errno) in
            guard peer != nil else { throw .linux(ENOTCONN) }
            if how != SocketConstants.SHUT_WR { readShut = true }
            if how != SocketConstants.SHUT_RD { writeShut = true }
        }
        events.signal(readiness)
    }

    func close() {
        let (all, port) = lock.withLock { () -> ([UDPSocket], UInt16?) in
            if closed { return ([], nil) }
            closed = true
            defer { sockets = []; peer = nil }
            return (sockets, bound?.port)
        }
        for s in all { s.setReadinessHandler(nil); s.close() }
        if let port { network.udpPorts.release(port, owner: ObjectIdentifier(self)) }
        events.signal([.hangUp])
    }

    // MARK: names, options, readiness

    func localAddress() throws(Errno) -> SockAddr {
        guard let b = lock.withLock({ bound }) else { return InetAddressing.encode(.any, 0, family: family) }
        return InetAddressing.encode(b.address, b.port, family: family)
    }

    func peerAddress() throws(Errno) -> SockAddr {
        guard let p = lock.withLock({ peer }) else { throw .linux(ENOTCONN) }
        return InetAddressing.encode(p.visible, family: family)
    }

    func setOption(level: Int32, name: Int32, value: UnsafeRawBufferPointer) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            try options.set(level: level, name: name, value: value, family: family, stream: false, bound: bound != nil)
        }
    }

    func getOption(level: Int32, name: Int32, into: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        switch (level, name) {
        case (SocketConstants.SOL_SOCKET, OptionName.SO_ERROR), (SocketConstants.SOL_SOCKET, OptionName.SO_ACCEPTCONN):
            return InetOptions.put([0], into)
        default:
            let o = lock.withLock { options }
            return try o.get(level: level, name: name, into: into, family: family, stream: false)
        }
    }

    func bytesReadable() throws(Errno) -> Int {
        let all = lock.withLock { peer.map { [$0.socket] } ?? sockets }
        for s in all {
            let n = s.nextDatagramLength
            if n > 0 { return n }
        }
        return 0
    }

    func bytesUnsent() throws(Errno) -> Int { 0 }

    var readiness: Readiness {
        let (all, isClosed, shut) = lock.withLock { (peer.map { [$0.socket] } ?? sockets, closed, readShut) }
        if isClosed { return [.hangUp] }
        var r: Readiness = [.writable]
        for s in all { r.formUnion(s.readiness) }
        if shut { r.insert(.readable) }
        return r
    }

    func addReadinessObserver(_ observer: @escaping @Sendable (Readiness) -> Void) -> Int { events.observers.add(observer) }
    func removeReadinessObserver(_ token: Int) { events.observers.remove(token) }
    func size() throws(Errno) -> Int64 { 0 }
}
