// SocketTypes.swift: what sockets share: an IPv4 endpoint address, the typed socket
// error (with the errno a system-call layer returns for it), and readiness.
import Glibc

/// An IPv4 address and port.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4Address
    public var port: UInt16

    @inlinable
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

    // Spelled out (and inlinable) so that a flow table in another module hashes and
    // compares addresses without a call per field.
    @inlinable
    public static func == (a: SocketAddress, b: SocketAddress) -> Bool { a.address == b.address && a.port == b.port }
    @inlinable
    public func hash(into hasher: inout Hasher) {
        hasher.combine(address.rawValue)
        hasher.combine(port)
    }
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
    /// TCP: the peer reset the connection (ECONNRESET).
    case connectionReset
    /// TCP: retransmissions, SYN retries or keepalive probes ran out (ETIMEDOUT).
    case connectionTimedOut
    /// TCP: write after shutdown(SHUT_WR), close, or the connection's end (EPIPE).
    case brokenPipe
    /// TCP: connect on a connected socket (EISCONN).
    case alreadyConnected
    /// TCP: a non-blocking connect has started (EINPROGRESS); the socket turns writable
    /// when it completes.
    case inProgress
    /// TCP: connect while a non-blocking connect is still going (EALREADY).
    case alreadyInProgress
    /// TCP: read, write or shutdown on a stream socket that is not connected (ENOTCONN).
    case notConnectedStream
    /// TCP: the connection was aborted here (ECONNABORTED).
    case connectionAborted
    /// An argument or a call the socket's state does not allow (EINVAL).
    case invalidArgument

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
        case .connectionReset: ECONNRESET
        case .connectionTimedOut: ETIMEDOUT
        case .brokenPipe: EPIPE
        case .alreadyConnected: EISCONN
        case .inProgress: EINPROGRESS
        case .alreadyInProgress: EALREADY
        case .notConnectedStream: ENOTCONN
        case .connectionAborted: ECONNABORTED
        case .invalidArgument: EINVAL
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
        case .connectionReset: "connection reset by peer"
        case .connectionTimedOut: "connection timed out"
        case .brokenPipe: "broken pipe: the connection is shut down for writing"
        case .alreadyConnected: "the socket is already connected"
        case .inProgress: "the connection is in progress"
        case .alreadyInProgress: "a connection attempt is already in progress"
        case .notConnectedStream: "the socket is not connected"
        case .connectionAborted: "connection aborted"
        case .invalidArgument: "invalid argument"
        }
    }
}

extension SocketError {
    /// The socket error for a TCP state machine's error (the errno Linux gives for it).
    /// - Parameters:
    ///   - remote: the peer, named by ``SocketError/hostUnreachable(_:)``.
    public init(_ error: TCPError, remote: IPv4Address? = nil) {
        switch error {
        case .refused: self = .connectionRefused
        case .reset: self = .connectionReset
        case .timedOut: self = .connectionTimedOut
        case .unreachable: self = .hostUnreachable(remote ?? .any)
        case .networkUnreachable: self = .networkUnreachable(remote ?? .any)
        case .aborted: self = .connectionAborted
        case .writeClosed: self = .brokenPipe
        case .notConnected: self = .notConnectedStream
        }
    }
}

/// Which directions a socket's `shutdown` (NetStack's `TCPSocket.shutdown(_:)`) closes (SHUT_RD, SHUT_WR, SHUT_RDWR).
public enum SocketShutdown: Sendable, Hashable {
    case read, write, both
}
