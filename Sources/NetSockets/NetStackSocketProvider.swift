// NetStackSocketProvider.swift: socket(2) for AF_INET and AF_INET6 when the instance has
// a --net device: stream sockets are NetTCPSocket, datagram sockets NetUDPSocket, all on
// the instance's InstanceNetwork; AF_NETLINK/NETLINK_ROUTE sockets describe that network
// (NetlinkRouteSocket). LibOS registers it for the three families.
import Glibc
import NetStack
import SyscallEmu
import SystemPackage

/// The NetStack backend of the socket layer (SyscallEmu knows only the protocol; LibOS
/// composes this target with it, so SyscallEmu does not depend on NetStack).
public final class NetStackSocketProvider: SocketProvider, @unchecked Sendable {
    /// Replaced only in a forked child, before its program resumes (ForkRule.swift).
    public internal(set) var network: InstanceNetwork
    /// How a forked child attaches its own queue of the --net device: an interface like
    /// the parent's (not started). Nil when the device has no second queue to give
    /// (shm:, xdp:, verbs:): a child then has the loopback only.
    public var attachQueue: (@Sendable () throws -> NetworkInterface)?
    /// The device as the user named it (for the log).
    public var deviceName = "the --net device"
    /// Why the device's queues cannot be shared with forked children (for the log).
    public var steeringUnavailable: String?

    /// The port ids (nl_pid) of the instance's netlink sockets.
    let netlinkPorts = NetlinkPorts()

    public init(network: InstanceNetwork) { self.network = network }

    /// Interface ioctls asked on a socket of another family (glibc's if_nametoindex on
    /// AF_UNIX): about `lo` and the device, as NetStack sockets answer them.
    public func interfaceControl(request: UInt64, argument: UInt64) throws(Errno) -> Int64 {
        try InterfaceQueries.control(network, request: request, argument: argument)
    }

    public func makeSocket(family: Int32, type: Int32, protocol proto: Int32) throws(Errno) -> any SocketHandle {
        if family == SocketConstants.AF_NETLINK {
            // netlink_create: SOCK_RAW or SOCK_DGRAM; protocols other than NETLINK_ROUTE
            // (uevents, audit, generic netlink...) are not the instance's to answer.
            guard type == SocketConstants.SOCK_RAW || type == SocketConstants.SOCK_DGRAM else { throw .linux(ESOCKTNOSUPPORT) }
            guard proto == Netlink.NETLINK_ROUTE else { throw .linux(EPROTONOSUPPORT) }
            return NetlinkRouteSocket(network: network, ports: netlinkPorts, type: type)
        }
        guard family == SocketConstants.AF_INET || family == SocketConstants.AF_INET6 else { throw .linux(EAFNOSUPPORT) }
        switch type {
        case SocketConstants.SOCK_STREAM:
            guard proto == 0 || proto == SocketConstants.IPPROTO_TCP else { throw .linux(EPROTONOSUPPORT) }
            return NetTCPSocket(network: network, family: family, protocol: SocketConstants.IPPROTO_TCP)
        case SocketConstants.SOCK_DGRAM:
            guard proto == 0 || proto == SocketConstants.IPPROTO_UDP else { throw .linux(EPROTONOSUPPORT) }
            return NetUDPSocket(network: network, family: family, protocol: SocketConstants.IPPROTO_UDP)
        case SocketConstants.SOCK_RAW:
            // Raw sockets need CAP_NET_RAW natively; NetStack has none to give.
            throw .linux(EPROTONOSUPPORT)
        case 4, SocketConstants.SOCK_SEQPACKET, 6:   // SOCK_RDM, SOCK_SEQPACKET, SOCK_DCCP
            throw .linux(ESOCKTNOSUPPORT)
        default:
            throw .linux(EINVAL)
        }
    }

    public func makePair(family: Int32, type: Int32, protocol: Int32) throws(Errno) -> (any SocketHandle, any SocketHandle) {
        throw .linux(EOPNOTSUPP)
    }

    /// exit_group: the connections the program left open are closed as Linux's exit
    /// closes them, and the exit waits (bounded) until the stack has put every close
    /// through: the FINs a kernel would send after the process is gone (TCPExit.swift).
    public func processExiting() {
        for i in network.interfaces { _ = i.finishConnectionsForExit() }
    }
}
