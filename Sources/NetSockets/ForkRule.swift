// ForkRule.swift: NetStack's sockets after fork. On a tap: device with steering
// (TapSteering.swift, the default) a forked child takes its own queue of the TAP and runs
// its own interface on it (same MAC and address, its ARP table started from the
// parent's); the TAP's steering program sends each TCP segment to the process whose
// connection it is, a new connection to one of the processes that accept on its port
// (accept, or poll/select/epoll on the listener: a master that only holds the listener
// gets none), everything else (ARP requests, ICMP, UDP, unknown flows) to the first
// process. Elsewhere (other devices, no BPF, JUNCTION_NET_FORK_QUEUES=0, all queues taken)
// the device stays the parent's: the child has the in-stack loopback only (127.0.0.1/8),
// so what needs the device fails cleanly (connect: ENETUNREACH, bind to the instance's
// address: EADDRNOTAVAIL).
//
// The child's copies of the parent's sockets: a listener listens again on the child's
// network (same port, backlog, options; without a device one bound to the device's
// address is left unbound); an established (or connecting) TCP connection stays the
// parent's, the child's copy is an unconnected socket (recv ENOTCONN, send EPIPE); a
// bound UDP socket is bound again where the child can (its datagrams from the device
// still reach the first process). The child logs once what its copies lost. Nothing of
// the parent's network is touched: its objects are kept, unused.
import FileSystem
import Glibc
import NICQueues
import NetStack
import SyscallEmu
import SystemPackage
import UThreads

/// What became of one inherited socket in a forked child.
enum ForkOutcome {
    case kept       // listening, bound or fresh as before, on the child's stack
    case severed    // a TCP connection that stays the parent's
    case lost       // its address or port is not the child's to take (no device)
}

/// The parent's network objects as the child inherited them. Never used nor freed: their
/// interfaces hold the parent's device queue (a close would send on it).
nonisolated(unsafe) private var inheritedFromParent: [AnyObject] = []

extension NetStackSocketProvider: ForkAwareSocketProvider {
    public func parentDidFork(child: pid_t) {
        guard let steering = network.steering else { return }
        // A sibling shares the TAP from now on: a segment of a connection this process
        // does not know (an unknown flow goes to queue 0) may be a closed one of a sibling's.
        steering.markShared()
        network.external?.sharesLink = true
        releaseWhenGone(child, steering)
    }

    /// Frees the child's queue, its ports and flows when it exits (its pidfd becomes
    /// readable; a crash included). A child that this process does not outlive is freed
    /// by the next fork that needs its queue (`cnq_steer_claim`).
    private func releaseWhenGone(_ child: pid_t, _ steering: TapSteering) {
        guard let runtime = Runtime.current, let pidfd = TapSteering.exitDescriptor(of: child) else { return }
        HostWatcher.shared.watch(pidfd)
        _ = runtime.spawn {
            while true {
                do throws(Errno) { try HostWatcher.shared.wait(pidfd, for: Int16(POLLIN)); break } catch { continue }
            }
            steering.release(pid: child)
            HostWatcher.shared.unwatch(pidfd)
            close(pidfd)
        }
    }

    public func childAfterFork(runtime: Runtime, files: [OpenFile]) -> String? {
        let old = network
        inheritedFromParent.append(old)
        var external: NetworkInterface?
        var noDevice: String?
        if let parentInterface = old.external {
            if let attachQueue {
                do {
                    let e = try attachQueue()
                    e.learnNeighbours(from: parentInterface)
                    e.sharesLink = true
                    external = e
                } catch {
                    noDevice = "it could not attach its own queue of \(deviceName) (\(error))"
                }
            } else {
                noDevice = "\(deviceName) stays with the parent" + (steeringUnavailable.map { " (no queue of its own: \($0))" } ?? "")
            }
        }
        let net: InstanceNetwork
        do {
            net = InstanceNetwork(external: external, loopback: try InstanceNetwork.makeLoopbackInterface())
            if external != nil { net.steering = old.steering }
        } catch {
            childNetworkFailed(error)
        }
        network = net
        var seen = Set<ObjectIdentifier>()
        var severed = 0, lost = 0
        for f in files {
            guard seen.insert(ObjectIdentifier(f.handle)).inserted else { continue }
            let outcome: ForkOutcome
            switch f.handle {
            case let s as NetTCPSocket: outcome = s.moveAfterFork(to: net, keeping: &inheritedFromParent)
            case let s as NetUDPSocket: outcome = s.moveAfterFork(to: net, keeping: &inheritedFromParent)
            case let s as NetlinkRouteSocket: s.network = net; outcome = .kept
            default: continue
            }
            if outcome == .severed { severed += 1 }
            if outcome == .lost { lost += 1 }
        }
        // Started once the listeners are in place: a SYN the device steers here finds them.
        do { try net.start(on: runtime) } catch { childNetworkFailed(error) }
        guard noDevice != nil || severed > 0 || lost > 0 else { return nil }
        var line = "junction: pid \(getpid()), the child of fork, has its own NetStack sockets"
        if let noDevice { line += "; it has no --net device: \(noDevice), so it reaches 127.0.0.1 only (ENETUNREACH, EADDRNOTAVAIL)" }
        if severed > 0 { line += "; \(severed) inherited TCP connection(s) stay with the parent (this copy: ENOTCONN, EPIPE)" }
        if lost > 0 { line += "; \(lost) inherited socket(s) lost their address (unbound here)" }
        return line
    }
}

private func childNetworkFailed(_ error: NetStackError) -> Never {
    let line = "junction: the child of fork could not start its network: \(error)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    _exit(127)
}

extension NetTCPSocket {
    /// The child's copy of this socket moves to the child's network `net` (ForkRule).
    func moveAfterFork(to net: InstanceNetwork, keeping old: inout [AnyObject]) -> ForkOutcome {
        lock.withLock { () -> ForkOutcome in
            network = net
            switch mode {
            case .closed:
                return .kept
            case .connection(let s):
                old.append(s)
                mode = .fresh
                bound = nil
                holdsPort = false
                visiblePeer = nil
                pendingError = 0
                return .severed
            case .fresh:
                guard holdsPort, let b = bound else { return .kept }
                holdsPort = false
                bound = nil
                guard net.isLocal(b.address), (try? reserve(b.address, b.port)) != nil else { return .lost }
                return .kept
            case .listening(let g):
                old.append(g)
                if ipv6Only {
                    mode = .listening(ListenerGroup(port: g.port, address: .any, reusePort: false, listeners: []))
                    return .kept
                }
                guard let b = bound else { mode = .fresh; return .lost }
                holdsPort = false
                bound = nil
                do throws(Errno) {
                    guard net.isLocal(b.address) else { throw .linux(EADDRNOTAVAIL) }
                    try reserve(b.address, b.port)
                    try net.tcpPorts.markListening(b.port, owner: ObjectIdentifier(self))
                    mode = .listening(try net.joinGroup(port: b.port, address: b.address, reusePort: options.reusePort,
                                                        backlog: g.backlog, configuration: options.tcpConfiguration,
                                                        member: events))
                    return .kept
                } catch {
                    if holdsPort, let p = bound?.port { net.tcpPorts.release(p, owner: ObjectIdentifier(self)) }
                    holdsPort = false
                    bound = nil
                    mode = .fresh   // accept: EINVAL, as on a socket that does not listen
                    return .lost
                }
            }
        }
    }
}

extension NetUDPSocket {
    /// The child's copy of this socket moves to the child's network `net` (ForkRule):
    /// bound again to the same address and port, connected to the same peer.
    func moveAfterFork(to net: InstanceNetwork, keeping old: inout [AnyObject]) -> ForkOutcome {
        lock.withLock { () -> ForkOutcome in
            network = net
            if closed { return .kept }
            old.append(contentsOf: sockets as [AnyObject])
            let connected = peer
            sockets = []
            peer = nil
            guard let b = bound else { return .kept }
            bound = nil
            guard net.isLocal(b.address), (try? bindLocked(b.address, b.port)) != nil else { return .lost }
            guard let connected else { return .kept }
            guard let (interface, routed) = net.route(connected.visible.address),
                  let s = sockets.first(where: { $0.interface === interface }),
                  (try? s.connect(to: Endpoint(routed, connected.visible.port))) != nil else { return .lost }
            peer = (connected.visible, s)
            return .kept
        }
    }
}
