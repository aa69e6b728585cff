// NetTCPSocket.swift: an AF_INET/AF_INET6 SOCK_STREAM socket on NetStack: bind with the
// instance's port table, listen on every interface the address covers, accept, connect
// (blocking or EINPROGRESS) on the interface the destination routes to, and shutdown
// and close. Data transfer and options are in NetTCPTransfer.swift.
import FileSystem
import Glibc
import NetStack
import SyscallEmu
import SystemPackage
import UThreads

/// A TCP socket of the program. NetStack's objects are used non-blocking; blocking calls
/// wait in ``SocketEvents`` (parking the uthread), so MSG_DONTWAIT, O_NONBLOCK and the
/// timeouts are decided per call.
final class NetTCPSocket: SocketHandle, @unchecked Sendable {
    enum Mode {
        case fresh
        case listening(ListenerGroup)
        case connection(TCPSocket)
        case closed
    }

    /// Replaced only in a forked child, before its program resumes (ForkRule.swift).
    var network: InstanceNetwork
    let family: Int32
    let protocolNumber: Int32
    var socketType: Int32 { SocketConstants.SOCK_STREAM }
    let common = SocketCommon()
    let events = SocketEvents()

    let lock = SpinLock()
    // Guarded by `lock`.
    var mode: Mode = .fresh
    var options = InetOptions(stream: true)
    /// The reserved port and address (bind, or the automatic bind of listen/connect).
    var bound: (address: IPv4Address, port: UInt16)?
    /// Whether this socket holds `bound` in the port table (accepted sockets do not).
    var holdsPort = false
    /// Bound to `::` with IPV6_V6ONLY: no IPv4 peer can reach it.
    var ipv6Only = false
    /// The peer as the program named it (our own address reaches the loopback as 127.0.0.1).
    var visiblePeer: Endpoint?
    /// A connection error reported once through SO_ERROR after the connection went.
    var pendingError: Int32 = 0

    init(network: InstanceNetwork, family: Int32, protocol: Int32) {
        self.network = network
        self.family = family
        protocolNumber = `protocol`
    }

    /// An accepted connection (options inherited from the listener, as Linux does).
    init(accepted s: TCPSocket, from listener: NetTCPSocket, options: InetOptions) {
        network = listener.network
        family = listener.family
        protocolNumber = listener.protocolNumber
        self.options = options
        mode = .connection(s)
        if let l = s.localAddress { bound = (l.address, l.port) }
        common.receiveTimeout = listener.common.receiveTimeout
        common.sendTimeout = listener.common.sendTimeout
        attach(s)
    }

    deinit { close() }

    /// Readiness changes of `s` reach this socket's waiters and observers.
    func attach(_ s: TCPSocket) {
        s.isNonBlocking = true
        s.setReadinessHandler { [events] r in events.signal(r) }
    }

    var connection: TCPSocket? {
        lock.withLock { if case .connection(let s) = mode { return s }; return nil }
    }

    // MARK: bind

    func bind(_ address: SockAddr) throws(Errno) {
        let target = try InetAddressing.decode(address, family: family)
        try lock.withLock { () throws(Errno) in
            if case .closed = mode { throw .linux(EBADF) }
            guard bound == nil else { throw .linux(EINVAL) }
            let ip: IPv4Address
            let port: UInt16
            switch target {
            case .ipv4(let a, let p):
                if family == SocketConstants.AF_INET6 && options.v6only { throw .linux(EINVAL) }
                guard network.isLocal(a) else { throw .linux(EADDRNOTAVAIL) }
                ip = a; port = p
            case .ipv6(let any, let p):
                guard any else { throw .linux(EADDRNOTAVAIL) }   // no IPv6 addresses here
                if options.v6only {
                    // `::` for IPv6 peers only: NetStack has none, so the socket holds no
                    // IPv4 port (an IPv4 socket may take it, as on Linux) and hears nothing.
                    bound = (.any, p)
                    ipv6Only = true
                    return
                }
                ip = .any; port = p
            case .unspecified: throw .linux(EAFNOSUPPORT)
            }
            try reserve(ip, port)
        }
    }

    /// Takes `port` (0: ephemeral) on `ip` in the port table. Lock held.
    func reserve(_ ip: IPv4Address, _ port: UInt16) throws(Errno) {
        let b = PortBinding(owner: ObjectIdentifier(self), address: ip, reuseAddress: options.reuseAddress,
                            reusePort: options.reusePort)
        let p = try network.tcpPorts.reserve(port, b)
        bound = (ip, p)
        holdsPort = true
    }

    // MARK: listen and accept

    func listen(backlog: Int32) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            switch mode {
            case .closed: throw .linux(EBADF)
            case .connection: throw .linux(EINVAL)
            case .listening: return   // Linux lets a second listen change the backlog
            case .fresh: break
            }
            if ipv6Only, let b = bound {
                mode = .listening(ListenerGroup(port: b.port, address: .any, reusePort: false, listeners: []))
                return
            }
            if bound == nil { try reserve(.any, 0) }
            let (ip, port) = bound!
            try network.tcpPorts.markListening(port, owner: ObjectIdentifier(self))
            // Linux: the backlog is capped at somaxconn (4096); 0 or less still takes one.
            let backlog = Int(min(max(backlog, 1), 4096))
            let g = try network.joinGroup(port: port, address: ip, reusePort: options.reusePort, backlog: backlog,
                                          configuration: options.tcpConfiguration, member: events)
            mode = .listening(g)
        }
        events.signal(stateReadiness)
    }

    func accept(nonBlocking: Bool) throws(Errno) -> (socket: any SocketHandle, peer: SockAddr) {
        let (group, inherited) = try lock.withLock { () throws(Errno) -> (ListenerGroup, InetOptions) in
            guard case .listening(let g) = mode else { throw .linux(EINVAL) }
            return (g, options)
        }
        network.accepting(on: group)
        let s = try events.wait(nonBlocking: nonBlocking, timeout: common.receiveTimeout) { () throws(Errno) -> TCPSocket? in
            if case .closed = lock.withLock({ mode }) { throw .linux(EBADF) }
            return try group.acceptNow()
        }
        let child = NetTCPSocket(accepted: s, from: self, options: inherited)
        let peer = s.remoteAddress ?? Endpoint(.any, 0)
        return (child, InetAddressing.encode(peer, family: family))
    }

    // MARK: connect

    func connect(_ address: SockAddr, nonBlocking: Bool) throws(Errno) {
        let target = try InetAddressing.decode(address, family: family, allowUnspecified: true)
        if case .unspecified = target {
            // AF_UNSPEC dissolves a connection (Linux: tcp_disconnect, an RST to the peer).
            let old = lock.withLock { () -> TCPSocket? in
                guard case .connection(let s) = mode else { return nil }
                mode = .fresh
                return s
            }
            old?.setReadinessHandler(nil)
            old?.abort()
            events.signal(readiness)
            return
        }
        let s: TCPSocket
        let started: Bool
        (s, started) = try lock.withLock { () throws(Errno) -> (TCPSocket, Bool) in
            switch mode {
            case .closed: throw .linux(EBADF)
            case .listening: throw .linux(EISCONN)
            case .connection(let s): return (s, false)   // a second call: NetStack reports the outcome
            case .fresh: break
            }
            guard case .ipv4(let destination, let port) = target else { throw .linux(ENETUNREACH) }  // IPv4 only
            if family == SocketConstants.AF_INET6 && options.v6only { throw .linux(ENETUNREACH) }
            guard let (interface, routed) = network.route(destination) else { throw .linux(ENETUNREACH) }
            if let b = bound, !b.address.isUnspecified, network.interface(owning: b.address) !== interface {
                throw .linux(EINVAL)   // bound to an address the destination is not reached from
            }
            if port == 0 { throw .linux(ECONNREFUSED) }
            let s = TCPSocket(interface: interface, configuration: options.tcpConfiguration)
            s.reuseAddress = true   // the instance's port table has decided
            if bound == nil { try reserve(.any, 0) }
            do throws(NetStack.SocketError) { try s.bind(port: bound!.port) } catch { throw Errno(error) }
            if interface === network.external, let steering = network.steering {
                // Before the SYN leaves: the SYN-ACK must come to this process's queue.
                steering.connecting(remote: routed.rawValue, remotePort: port, localPort: bound!.port)
            }
            attach(s)
            mode = .connection(s)
            visiblePeer = Endpoint(destination.isUnspecified ? .loopback : destination, port)
            do throws(NetStack.SocketError) { try s.connect(to: Endpoint(routed, port)) } catch {
                if error == .inProgress { return (s, true) }
                throw Errno(error)
            }
            return (s, false)
        }
        if started {
            if nonBlocking { throw .linux(EINPROGRESS) }
        } else {
            // A later call: EALREADY while the handshake runs, 0 once after it succeeded,
            // then EISCONN; or why it failed.
            guard let remote = s.remoteAddress else { throw .linux(EINVAL) }
            do {
                try s.connect(to: remote)
                return
            } catch {
                guard error == .alreadyInProgress else { throw Errno(error) }
                if nonBlocking { throw .linux(EALREADY) }
            }
        }
        // Blocking: wait for the handshake's end (SO_SNDTIMEO bounds it, as Linux).
        do {
            _ = try events.wait(nonBlocking: false, timeout: common.sendTimeout) { () throws(Errno) -> Bool? in
                switch s.state {
                case .synSent, .synReceived: return nil
                default: return true
                }
            }
        } catch {
            if error.rawValue == EAGAIN { throw .linux(EINPROGRESS) }   // timed out: Linux says EINPROGRESS
            throw error
        }
        guard let remote = s.remoteAddress else { throw .linux(ECONNABORTED) }
        do { try s.connect(to: remote) } catch {
            if error == .alreadyConnected { return }
            throw Errno(error)
        }
    }

    // MARK: shutdown and close

    func shutdown(_ how: Int32) throws(Errno) {
        guard (0...2).contains(how) else { throw .linux(EINVAL) }
        let m = lock.withLock { mode }
        switch m {
        case .connection(let s):
            do {
                try s.shutdown(how == SocketConstants.SHUT_RD ? .read : how == SocketConstants.SHUT_WR ? .write : .both)
            } catch { throw Errno(error) }
        case .listening(let g) where how != SocketConstants.SHUT_WR:
            // Linux: SHUT_RD on a listener stops it (accept then fails with EINVAL).
            lock.withLock { mode = .fresh }
            network.leaveGroup(g, member: events)
            events.signal(stateReadiness)
        default:
            throw .linux(ENOTCONN)
        }
    }

    func close() {
        let (m, port) = lock.withLock { () -> (Mode, UInt16?) in
            let m = mode
            mode = .closed
            let p = holdsPort ? bound?.port : nil
            holdsPort = false
            return (m, p)
        }
        switch m {
        case .connection(let s):
            s.setReadinessHandler(nil)
            s.close()
        case .listening(let g):
            network.leaveGroup(g, member: events)
        default: break
        }
        if let port { network.tcpPorts.release(port, owner: ObjectIdentifier(self)) }
        events.signal([.hangUp])
    }

    // MARK: names

    func localAddress() throws(Errno) -> SockAddr {
        let (m, b) = lock.withLock { (mode, bound) }
        if case .connection(let s) = m, let l = s.localAddress {
            // Our own address, reached through the loopback, stays the one the program bound.
            let address = b.map { $0.address.isUnspecified ? l.address : $0.address } ?? l.address
            return InetAddressing.encode(address, l.port, family: family)
        }
        guard let b else { return InetAddressing.encode(.any, 0, family: family) }
        return InetAddressing.encode(b.address, b.port, family: family)
    }

    func peerAddress() throws(Errno) -> SockAddr {
        let (m, visible) = lock.withLock { (mode, visiblePeer) }
        guard case .connection(let s) = m else { throw .linux(ENOTCONN) }
        switch s.state {
        case .synSent, .synReceived, .closed, .listen: throw .linux(ENOTCONN)
        default: break
        }
        guard let r = visible ?? s.remoteAddress else { throw .linux(ENOTCONN) }
        return InetAddressing.encode(r, family: family)
    }

    // MARK: readiness

    /// What poll, select and epoll see. Asked about a listener, it also says that this
    /// process accepts on it (InstanceNetwork.accepting(on:)).
    var readiness: Readiness {
        let m = lock.withLock({ mode })
        if case .listening(let g) = m { network.accepting(on: g) }
        return Self.readiness(of: m)
    }

    /// The readiness of the socket's state, for its own signals (listen must not count as
    /// accepting).
    var stateReadiness: Readiness { Self.readiness(of: lock.withLock({ mode })) }

    static func readiness(of mode: Mode) -> Readiness {
        switch mode {
        case .fresh: [.writable, .hangUp]
        case .listening(let g): g.readiness
        case .connection(let s): s.readiness
        case .closed: [.hangUp]
        }
    }

    func addReadinessObserver(_ observer: @escaping @Sendable (Readiness) -> Void) -> Int { events.observers.add(observer) }
    /// NetStack reports every change (TCPControlBlock.notify, TCPListener.report) and every
    /// change of mode here signals `events`.
    var reportsEveryReadinessChange: Bool { true }
    func removeReadinessObserver(_ token: Int) { events.observers.remove(token) }
    func size() throws(Errno) -> Int64 { 0 }
}
