// SocketTypes.swift: what sockets share: an IPv4 endpoint address, the typed socket
// error (with the errno a system-call layer returns for it), and readiness.
import Glibc

/// An IPv4 address and port.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4Address
    public var port: UInt16

    public init(_ address: IPv4Address, _ port: UInt16) {
        self.address = address
        self.port = port
    }

    /// Parses `A.B.C.D:PORT`.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = IPv4Address(String(parts[0])), let p = UInt16(parts[1]) else { return nil }
        self.init(a, p)
    }

    public var description: String { "\(address):\(port)" }
}

/// Why a socket call failed.
public enum SocketError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Non-blocking, and nothing to receive (EAGAIN).
    case wouldBlock
    /// The receive timeout passed (Linux returns EAGAIN for SO_RCVTIMEO too).
    case timedOut
    /// `UThreadRef.interrupt()` ended a blocking call (EINTR).
    case interrupted
    /// Another socket has the port (EADDRINUSE), or no ephemeral port is free.
    case addressInUse(UInt16)
    /// `bind` on a socket already bound (EINVAL).
    case alreadyBound
    /// `send` without a destination on an unconnected socket (EDESTADDRREQ).
    case notConnected
    /// A local address other than ours or 0.0.0.0 (EADDRNOTAVAIL).
    case addressNotAvailable(IPv4Address)
    /// Port 0 or address 0.0.0.0 as a destination (EINVAL).
    case invalidDestination(SocketAddress)
    /// More than fits one packet (EMSGSIZE); we do not fragment on output.
    case messageTooLong(length: Int, maximum: Int)
    /// No packet buffer, or the transmit queue is full (ENOBUFS).
    case noBufferSpace
    /// Off-link with no gateway (ENETUNREACH).
    case networkUnreachable(IPv4Address)
    /// An ICMP host/network unreachable for our datagram (EHOSTUNREACH).
    case hostUnreachable(IPv4Address)
    /// An ICMP port unreachable for our datagram (ECONNREFUSED), on a connected socket.
    case connectionRefused
    /// The socket was closed (EBADF).
    case closed
    /// A blocking call outside a uthread: it could not park (EPERM here; the library OS
    /// always calls from uthreads).
    case notOnUThread

    /// The errno Linux returns for it.
    public var errno: Int32 {
        switch self {
        case .wouldBlock, .timedOut: EAGAIN
        case .interrupted: EINTR
        case .addressInUse: EADDRINUSE
        case .alreadyBound, .invalidDestination: EINVAL
        case .notConnected: EDESTADDRREQ
        case .addressNotAvailable: EADDRNOTAVAIL
        case .messageTooLong: EMSGSIZE
        case .noBufferSpace: ENOBUFS
        case .networkUnreachable: ENETUNREACH
        case .hostUnreachable: EHOSTUNREACH
        case .connectionRefused: ECONNREFUSED
        case .closed: EBADF
        case .notOnUThread: EPERM
        }
    }

    public var description: String {
        switch self {
        case .wouldBlock: "no datagram waiting (non-blocking socket)"
        case .timedOut: "receive timed out"
        case .interrupted: "interrupted"
        case .addressInUse(let p): p == 0 ? "no free ephemeral port" : "port \(p) is in use"
        case .alreadyBound: "the socket is already bound"
        case .notConnected: "no destination: the socket is not connected"
        case .addressNotAvailable(let a): "\(a) is not this interface's address"
        case .invalidDestination(let a): "\(a) is not a destination"
        case .messageTooLong(let n, let m): "a \(n)-byte datagram is larger than the \(m) bytes one packet carries"
        case .noBufferSpace: "no buffer space (packet pool or transmit queue full)"
        case .networkUnreachable(let a): "\(a) is off-link and there is no gateway"
        case .hostUnreachable(let a): "\(a) is unreachable"
        case .connectionRefused: "connection refused (ICMP port unreachable)"
        case .closed: "the socket is closed"
        case .notOnUThread: "a blocking socket call must run on a uthread"
        }
    }
}

/// What a socket is ready for, as a readiness callback reports it (the base of epoll).
public struct SocketReadiness: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// A datagram (or an error) is waiting.
    public static let readable = SocketReadiness(rawValue: 1)
    /// A send would not block (UDP: always, while open).
    public static let writable = SocketReadiness(rawValue: 2)
    /// An error is pending (`connectionRefused`...).
    public static let error = SocketReadiness(rawValue: 4)
    /// Closed.
    public static let hangUp = SocketReadiness(rawValue: 8)
}
