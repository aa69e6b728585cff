// PortTable.swift: the instance's port reservations for one protocol (TCP or UDP),
// across all its interfaces: bind conflicts as Linux decides them (overlapping
// addresses, SO_REUSEADDR, SO_REUSEPORT, listening sockets), ephemeral ports.
import FileSystem
import Glibc
import NetStack
import SystemPackage
import UThreads

/// Linux's default `ip_local_port_range`.
let ephemeralRange: ClosedRange<UInt16> = 32768...60999

/// Who holds a port: an address (0.0.0.0 = every local address) and the socket's options.
struct PortBinding {
    var owner: ObjectIdentifier
    var address: IPv4Address
    var reuseAddress: Bool
    var reusePort: Bool
    var listening = false

    func overlaps(_ other: IPv4Address) -> Bool { address.isUnspecified || other.isUnspecified || address == other }
}

/// One protocol's ports. Thread-safe.
final class PortTable: @unchecked Sendable {
    private let lock = SpinLock()
    private var bindings: [UInt16: [PortBinding]] = [:]
    private var nextEphemeral = UInt16.random(in: ephemeralRange)
    /// TCP: SO_REUSEADDR does not let a socket share a port with a listening one.
    let listenersExclusive: Bool

    init(listenersExclusive: Bool) { self.listenersExclusive = listenersExclusive }

    private func conflicts(_ b: PortBinding, with others: [PortBinding]) -> Bool {
        for o in others where o.owner != b.owner && o.overlaps(b.address) {
            if o.reusePort && b.reusePort { continue }
            if o.reuseAddress && b.reuseAddress && !(listenersExclusive && o.listening) { continue }
            return true
        }
        return false
    }

    /// Reserves `port` (0: a free ephemeral one) for `binding`; EADDRINUSE on a conflict
    /// (or when no ephemeral port is free). Returns the port.
    func reserve(_ port: UInt16, _ binding: PortBinding) throws(Errno) -> UInt16 {
        try lock.withLock { () throws(Errno) -> UInt16 in
            if port != 0 {
                let others = bindings[port] ?? []
                if conflicts(binding, with: others) { throw Errno(rawValue: EADDRINUSE) }
                bindings[port, default: []].append(binding)
                return port
            }
            let span = Int(ephemeralRange.upperBound - ephemeralRange.lowerBound) + 1
            for _ in 0..<span {
                let p = nextEphemeral
                nextEphemeral = p >= ephemeralRange.upperBound ? ephemeralRange.lowerBound : p + 1
                if bindings[p]?.isEmpty ?? true {
                    bindings[p] = [binding]
                    return p
                }
            }
            throw Errno(rawValue: EADDRINUSE)
        }
    }

    /// listen(2) on a bound port: EADDRINUSE when another listening socket overlaps it
    /// (unless both set SO_REUSEPORT).
    func markListening(_ port: UInt16, owner: ObjectIdentifier) throws(Errno) {
        try lock.withLock { () throws(Errno) in
            guard var list = bindings[port], let k = list.firstIndex(where: { $0.owner == owner }) else { return }
            let me = list[k]
            for o in list where o.owner != owner && o.listening && o.overlaps(me.address) && !(o.reusePort && me.reusePort) {
                throw Errno(rawValue: EADDRINUSE)
            }
            list[k].listening = true
            bindings[port] = list
        }
    }

    func release(_ port: UInt16, owner: ObjectIdentifier) {
        lock.withLock {
            guard var list = bindings[port] else { return }
            list.removeAll { $0.owner == owner }
            bindings[port] = list.isEmpty ? nil : list
        }
    }
}
