// Readiness.swift: what a file, pipe or socket is ready for, in poll(2)'s bits: the one
// readiness type of the libraries (files, sockets, poll and epoll all use it).

/// What an open file or socket is ready for, as poll(2) and epoll report it (the raw
/// value is poll's event bits).
@frozen
public struct Readiness: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Data (or end of file, or an error) to read: POLLIN.
    @inlinable public static var readable: Readiness { Readiness(rawValue: 0x001) }
    /// A write would not block: POLLOUT.
    @inlinable public static var writable: Readiness { Readiness(rawValue: 0x004) }
    /// An error is pending: POLLERR.
    @inlinable public static var error: Readiness { Readiness(rawValue: 0x008) }
    /// Both directions are done (a TCP socket closed both ways, a pipe's writers gone): POLLHUP.
    @inlinable public static var hangUp: Readiness { Readiness(rawValue: 0x010) }
    /// The peer's FIN arrived (TCP): POLLRDHUP / EPOLLRDHUP.
    @inlinable public static var readHangUp: Readiness { Readiness(rawValue: 0x2000) }
}
