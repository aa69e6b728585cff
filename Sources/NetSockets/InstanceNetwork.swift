// InstanceNetwork.swift: the interfaces of one instance (the --net device's and the
// in-stack loopback, 127.0.0.1/8), how a socket picks one by address, the TCP and UDP
// port tables over both, and the listener groups SO_REUSEPORT sockets share.
import FileSystem
import Glibc
import NICQueues
import NetStack
import SystemPackage
import UThreads

/// The instance's network: every AF_INET/AF_INET6 socket of the program lives here.
public final class InstanceNetwork: @unchecked Sendable {
    /// The --net device's interface (nil: loopback only).
    public let external: NetworkInterface?
    /// 127.0.0.1/8 over NICQueues' loopback device: never leaves the instance.
    public let loopback: NetworkInterface
    let tcpPorts = PortTable(listenersExclusive: true)
    let udpPorts = PortTable(listenersExclusive: false)
    private let lock = SpinLock()
    private var groups: [UInt16: [ListenerGroup]] = [:]
    /// The --net tap device's steering among the instance's processes (ForkRule.swift);
    /// nil on other devices, or when the kernel could not steer.
    public var steering: TapSteering?

    public init(external: NetworkInterface?, loopback: NetworkInterface) {
        self.external = external
        self.loopback = loopback
    }

    /// An interface for 127.0.0.1/8 over a fresh loopback device (not started).
    public static func makeLoopbackInterface() throws(NetStackError) -> NetworkInterface {
        var c = LoopbackConfiguration()
        c.buffers = 16384
        let device: LoopbackDevice
        do { device = try LoopbackDevice(configuration: c) } catch { throw .device("loopback: \(error)") }
        let mac = NetStack.MACAddress(rawValue: device.info.mac.raw)
        var config = InterfaceConfiguration(mac: mac, address: try IPv4CIDR(address: .loopback, prefixLength: 8), mtu: device.info.mtu)
        config.isLoopback = true
        return try NetworkInterface(device: device, configuration: config)
    }

    /// Starts both interfaces' pollers on `runtime`.
    public func start(on runtime: Runtime) throws(NetStackError) {
        try loopback.start(on: runtime)
        try external?.start(on: runtime)
    }

    var interfaces: [NetworkInterface] { external.map { [loopback, $0] } ?? [loopback] }

    /// The interface that owns local address `a` (nil: not an address of this instance).
    func interface(owning a: IPv4Address) -> NetworkInterface? {
        if a == IPv4Address.loopback { return loopback }
        if let e = external, e.address == a { return e }
        return nil
    }

    /// Whether `a` is 0.0.0.0 or one of the instance's addresses (what bind accepts).
    func isLocal(_ a: IPv4Address) -> Bool { a.isUnspecified || interface(owning: a) != nil }

    /// Where a packet to `destination` goes, and the destination as that interface sees it:
    /// 127/8 and our own address stay in the instance (on the loopback, as 127.0.0.1:
    /// one loopback address); everything else takes the device (nil when there is none).
    func route(_ destination: IPv4Address) -> (NetworkInterface, IPv4Address)? {
        if destination.isUnspecified || destination.isLoopback { return (loopback, .loopback) }
        if let e = external {
            if destination == e.address { return (loopback, .loopback) }
            return (e, destination)
        }
        return nil
    }

    // MARK: listener groups

    /// The group a listening socket joins: an SO_REUSEPORT group on the same port and
    /// address when there is one, else a new group with listeners on every interface the
    /// address covers.
    func joinGroup(port: UInt16, address: IPv4Address, reusePort: Bool, backlog: Int,
                   configuration: TCPConfiguration, member: SocketEvents) throws(Errno) -> ListenerGroup {
        try lock.withLock { () throws(Errno) -> ListenerGroup in
            if reusePort, let g = groups[port]?.first(where: { $0.reusePort && $0.address == address }) {
                g.add(member)
                return g
            }
            let covered = address.isUnspecified ? interfaces : [interface(owning: address)!]
            var listeners: [TCPListener] = []
            for i in covered {
                do throws(NetStack.SocketError) {
                    let l = try TCPListener(interface: i, port: port, backlog: backlog, configuration: configuration, reuseAddress: true)
                    l.isNonBlocking = true
                    listeners.append(l)
                } catch {
                    for l in listeners { l.close() }
                    throw Errno(error)
                }
            }
            let g = ListenerGroup(port: port, address: address, reusePort: reusePort, backlog: backlog, listeners: listeners)
            g.add(member)
            groups[port, default: []].append(g)
            return g
        }
    }

    /// A member leaves; the last one closes the listeners.
    func leaveGroup(_ g: ListenerGroup, member: SocketEvents) {
        let (last, portFree) = lock.withLock { () -> (Bool, Bool) in
            guard g.remove(member) else { return (false, false) }
            groups[g.port]?.removeAll { $0 === g }
            if groups[g.port]?.isEmpty == true { groups[g.port] = nil }
            return (true, groups[g.port] == nil)
        }
        if last { g.close() }
        if portFree, let steering, g.coversDevice(of: self) { steering.accepting(port: g.port, false) }
    }

    /// A process accepts (accept, or asks a listener's readiness: poll, select, epoll) on
    /// `g`: the device's new connections to its port may come to this process (a bit in
    /// shared memory, no system call). A process that only holds the listener (a
    /// pre-forking server's master) gets none.
    @inline(__always)
    func accepting(on g: ListenerGroup) {
        if let steering, g.coversDevice(of: self) { steering.accepting(port: g.port, true) }
    }
}

/// Listeners on one port (one per covered interface) and the sockets accepting from
/// them: one socket, or several SO_REUSEPORT sockets sharing the queue.
final class ListenerGroup: @unchecked Sendable {
    let port: UInt16
    let address: IPv4Address
    let reusePort: Bool
    /// listen(2)'s backlog (a forked child's listeners get the same).
    let backlog: Int
    let listeners: [TCPListener]
    private let lock = SpinLock()
    private var members: [SocketEvents] = []

    init(port: UInt16, address: IPv4Address, reusePort: Bool, backlog: Int = 1, listeners: [TCPListener]) {
        self.port = port
        self.backlog = backlog
        self.address = address
        self.reusePort = reusePort
        self.listeners = listeners
        for l in listeners {
            l.setReadinessHandler { [weak self] r in self?.signal(r) }
        }
    }

    func add(_ m: SocketEvents) { lock.withLock { members.append(m) } }

    /// Whether the group listens on the --net device (0.0.0.0 or the device's address).
    func coversDevice(of net: InstanceNetwork) -> Bool {
        guard let e = net.external else { return false }
        return address.isUnspecified || address == e.address
    }

    /// Whether it was the last member.
    func remove(_ m: SocketEvents) -> Bool {
        lock.withLock {
            members.removeAll { $0 === m }
            return members.isEmpty
        }
    }

    private func signal(_ r: Readiness) {
        let all = lock.withLock { members }
        for m in all { m.signal(r) }
    }

    var readiness: Readiness {
        listeners.contains { $0.readiness.contains(.readable) } ? [.readable] : []
    }

    /// The next established connection from any listener (nil: none waiting).
    func acceptNow() throws(Errno) -> TCPSocket? {
        for l in listeners {
            do { return try l.accept() } catch {
                if error == .wouldBlock { continue }
                throw Errno(error)
            }
        }
        return nil
    }

    func close() {
        for l in listeners {
            l.setReadinessHandler(nil)
            l.close()
        }
    }
}
