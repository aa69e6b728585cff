// Host.swift: the host calls NICQueues makes outside the C shim: owners of descriptors
// and mappings, and one wrapper per call with EINTR retried in one place.
import CNICQueues
import Glibc
import NUMA
import UThreads

/// Owns an open descriptor; closes it when dropped.
public struct FileDescriptor: ~Copyable {
    public let raw: Int32
    public init(owning raw: Int32) { self.raw = raw }
    deinit { if raw >= 0 { _ = Glibc.close(raw) } }
}

/// Owns a memory mapping; unmaps it when dropped.
struct Mapping: ~Copyable {
    let base: UnsafeMutableRawPointer
    let size: Int
    deinit { munmap(base, size) }

    /// Gives up ownership: the caller unmaps.
    consuming func release() -> UnsafeMutableRawPointer {
        let b = base
        discard self
        return b
    }

    /// Anonymous, private, prefaulted memory (a pool's region).
    /// On `node`: prefaulted under that node's preference, and the range bound to it.
    static func anonymous(size: Int, what: String, node: NUMANode? = nil) throws(NICError) -> Mapping {
        let p = NUMA.withPreferred(node) { mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0) }
        guard let p, p != MAP_FAILED else { throw .system(call: "mmap", errno: errno, detail: "\(size) bytes for \(what)") }
        if let node {
            do { try NUMA.bind(p, size: size, to: node) } catch {
                munmap(p, size)
                throw .system(call: "mbind", errno: EINVAL, detail: "\(what): \(error)")
            }
        }
        return Mapping(base: p, size: size)
    }

    /// A shared mapping of `fd` (a shared-memory link file).
    static func shared(fd: Int32, size: Int, what: String) throws(NICError) -> Mapping {
        let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw .system(call: "mmap", errno: errno, detail: what) }
        return Mapping(base: p, size: size)
    }
}

enum Host {
    /// A C-shim result: >= 0, or -errno.
    static func shim(_ r: Int32, call: String, subject: String) throws(NICError) -> Int32 {
        switch SystemCall.result(raw: r) {
        case .success(let n): return n
        case .failure(let e): throw NICError.from(call: call, errno: e.rawValue, subject: subject)
        }
    }

    static func eventfd(what: String) throws(NICError) -> FileDescriptor {
        FileDescriptor(owning: try shim(cnq_eventfd(), call: "eventfd", subject: what))
    }

    /// Adds one to an eventfd (a doorbell).
    @inline(__always)
    static func ring(_ fd: Int32) {
        var one: UInt64 = 1
        _ = Glibc.write(fd, &one, 8)
    }

    /// Empties an eventfd without blocking; returns the count it held (0 when empty).
    @inline(__always)
    static func drainCount(_ fd: Int32) -> UInt64 {
        var v: UInt64 = 0
        return Glibc.read(fd, &v, 8) == 8 ? v : 0
    }

    static func epoll(_ fds: [Int32], what: String) throws(NICError) -> FileDescriptor {
        let ep = epoll_create1(Int32(EPOLL_CLOEXEC))
        if ep < 0 { throw .system(call: "epoll_create1", errno: errno, detail: what) }
        let owner = FileDescriptor(owning: ep)
        for fd in fds {
            var ev = epoll_event()
            ev.events = EPOLLIN.rawValue
            ev.data.fd = fd
            if epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 { throw .system(call: "epoll_ctl", errno: errno, detail: what) }
        }
        return owner
    }

    /// Waits until `fd` is readable or `timeoutMs` passes; true if readable.
    static func waitReadable(_ fd: Int32, timeoutMs: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = SystemCall.retrying { poll(&p, 1, timeoutMs) }
        if case .success(let n) = r { return n > 0 }
        return false
    }

    /// Whole milliseconds from now to `deadline` (0 once it passed), for poll(2).
    static func millisecondsLeft(until deadline: MonotonicInstant) -> Int32 {
        Int32(clamping: max(0, MonotonicInstant.now.duration(to: deadline).nanosecondsSaturated) / 1_000_000)
    }

    static func realtime() -> timespec {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ts
    }
}
