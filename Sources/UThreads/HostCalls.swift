// HostCalls.swift: the one file where UThreads calls the host kernel (mmap, eventfd, epoll,
// threads); each wrapper returns a typed error naming the call, and retries EINTR here.
import CUThreads
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A failed host system call: which call, and the errno it returned.
public struct HostCallError: Error, CustomStringConvertible, Equatable, Sendable {
    public let call: String
    public let errno: Errno

    public init(_ call: String, _ errno: Errno) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call): \(errno) (errno \(errno.rawValue))" }
}

/// The libraries' one funnel for host calls: every wrapper of a host call (here, in
/// FileSystem, SyscallEmu, NICQueues) turns its result into swift-system's `Errno`
/// through these two functions, and EINTR is retried only here.
public enum SystemCall {
    /// Runs a C library call that fails with a negative result and `errno`, again while it
    /// fails with EINTR; returns its result or the errno (read at once, before any other call).
    @inlinable @inline(__always)
    public static func retrying<T: BinaryInteger>(_ body: () -> T) -> Result<T, Errno> {
        while true {
            let r = body()
            if r >= 0 { return .success(r) }
            let e = Glibc.errno
            if e != EINTR { return .failure(Errno(rawValue: e)) }
        }
    }

    /// A raw system call's (or C shim's) result: non-negative, or the negated errno.
    @inlinable @inline(__always)
    public static func result<T: BinaryInteger>(raw r: T) -> Result<T, Errno> {
        r >= 0 ? .success(r) : .failure(Errno(rawValue: Int32(truncatingIfNeeded: 0 - r)))
    }
}

@usableFromInline
enum Host {
    @inline(__always)
    static func lastErrno() -> Errno { Errno(rawValue: Glibc.errno) }

    /// Retries a call that may fail with EINTR; returns the result or the errno.
    @inline(__always)
    static func retrying<T: BinaryInteger>(_ call: String, _ body: () -> T) -> Result<T, HostCallError> {
        SystemCall.retrying(body).mapError { HostCallError(call, $0) }
    }

    static func mapAnonymous(size: Int, protection: Int32, extraFlags: Int32 = 0) -> Result<UnsafeMutableRawPointer, HostCallError> {
        let p = mmap(nil, size, protection, MAP_PRIVATE | MAP_ANONYMOUS | extraFlags, -1, 0)
        guard let p, p != MAP_FAILED else { return .failure(HostCallError("mmap", lastErrno())) }
        return .success(p)
    }

    static func unmap(_ p: UnsafeMutableRawPointer, size: Int) {
        _ = munmap(p, size)
    }

    static func protect(_ p: UnsafeMutableRawPointer, size: Int, protection: Int32) -> Result<Void, HostCallError> {
        mprotect(p, size, protection) == 0 ? .success(()) : .failure(HostCallError("mprotect", lastErrno()))
    }

    static func makeEventFD() -> Result<Int32, HostCallError> {
        retrying("eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
    }

    static func makeEpoll() -> Result<Int32, HostCallError> {
        retrying("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
    }

    static func epollAdd(_ epfd: Int32, fd: Int32, token: UInt64) -> Result<Void, HostCallError> {
        var ev = epoll_event()
        ev.events = EPOLLIN.rawValue
        ev.data.u64 = token
        return retrying("epoll_ctl(ADD)") { epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) }.map { _ in () }
    }

    static func epollRemove(_ epfd: Int32, fd: Int32) {
        _ = epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil)
    }

    /// Rings an eventfd doorbell. A full counter (EAGAIN) still leaves it readable.
    @inline(__always)
    static func ring(_ fd: Int32) {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    /// Drains an eventfd doorbell (non-blocking).
    static func drain(_ fd: Int32) {
        var value: UInt64 = 0
        _ = read(fd, &value, 8)
    }

    static func closeFD(_ fd: Int32) {
        if fd >= 0 { _ = close(fd) }
    }

    static var pageSize: Int { Int(sysconf(Int32(_SC_PAGESIZE))) }
}
