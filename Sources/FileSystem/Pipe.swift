// Pipe.swift: pipes: a 64 KiB ring, blocking and non-blocking ends, writes of up to
// PIPE_BUF bytes kept whole, EPIPE once the last reader closed, readiness for poll.
import Synchronization
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// A pipe: one buffer shared by its read and write ends.
public final class Pipe: @unchecked Sendable {
    // Tunables: Linux's defaults.
    public static let defaultCapacity = 65536
    /// Writes up to this size are atomic (never interleaved with other writers).
    public static let atomicWriteLimit = 4096

    private let lock = SpinLock()
    private var buffer: UnsafeMutableRawBufferPointer
    private var head = 0   // next byte to read
    private var count = 0
    private(set) var readers = 0
    private(set) var writers = 0
    private let readWaiters = WaitList()
    private let writeWaiters = WaitList()
    let readObservers = ReadinessObservers()
    let writeObservers = ReadinessObservers()
    /// Opened by pipe(2) or a socket pair (not a FIFO): a fork may promote it.
    var anonymous = false
    /// After promotion (a fork while it was open): the host pipe that replaced the
    /// buffer, shared with the other processes; -1 for an end this process closed.
    private var hostRead: Int32 = -1
    private var hostWrite: Int32 = -1
    private let hostMode = Atomic<Bool>(false)
    /// Whether the pipe lives in the host kernel now.
    public var isHost: Bool { hostMode.load(ordering: .acquiring) }

    public init(capacity: Int = Pipe.defaultCapacity) {
        buffer = .allocate(byteCount: capacity, alignment: 64)
    }

    deinit { buffer.deallocate() }

    public var capacity: Int { buffer.count }

    /// A new pipe's two ends (pipe(2)).
    public static func makePair() -> (read: PipeReadEnd, write: PipeWriteEnd) {
        let p = Pipe()
        p.anonymous = true
        return (p.makeReadEnd(), p.makeWriteEnd())
    }

    /// Counts one reader and one writer held by a socket pair's ends.
    func addEnds() { lock.withLock { readers += 1; writers += 1 } }

    func makeReadEnd() -> PipeReadEnd {
        lock.withLock { readers += 1 }
        return PipeReadEnd(pipe: self)
    }

    func makeWriteEnd() -> PipeWriteEnd {
        lock.withLock { writers += 1 }
        return PipeWriteEnd(pipe: self)
    }

    /// Opens since the pipe was made, by side (Linux's r_counter and w_counter): a FIFO
    /// open waits for the other side's counter to move.
    private var readOpens = 0
    private var writeOpens = 0
    private let openWaiters = WaitList()

    /// Opening a FIFO (fifo(7)): O_RDONLY waits for a writer and O_WRONLY for a reader,
    /// unless O_NONBLOCK (a writer then fails with ENXIO if there is no reader); O_RDWR
    /// never waits. A signal ends the wait (EINTR or a restart).
    func openEnd(_ flags: OpenFlags) throws(Errno) -> any FileHandle {
        let nonBlocking = flags.contains(.nonBlocking)
        enum Side { case read, write, both }
        let side: Side = flags.accessMode == 2 ? .both : (flags.canWrite ? .write : .read)
        let (waitFor, wake) = try lock.withLock { () throws(Errno) -> (Int?, [Waiter]) in
            switch side {
            case .both:
                readers += 1; writers += 1; readOpens += 1; writeOpens += 1
                return (nil, openWaiters.takeAll())
            case .read:
                readers += 1; readOpens += 1
                return (writers == 0 && !nonBlocking ? writeOpens : nil, openWaiters.takeAll())
            case .write:
                if readers == 0 && nonBlocking { throw .noSuchAddressOrDevice }
                writers += 1; writeOpens += 1
                return (readers == 0 ? readOpens : nil, openWaiters.takeAll())
            }
        }
        wake.wakeAll()
        readObservers.notify(readReadiness)
        writeObservers.notify(writeReadiness)
        let handle: any FileHandle = switch side {
        case .both: PipeBothEnds(pipe: self)
        case .read: PipeReadEnd(pipe: self)
        case .write: PipeWriteEnd(pipe: self)
        }
        guard let start = waitFor else { return handle }
        while true {
            let waiter = lock.withLock { () -> Waiter? in
                let moved = side == .read ? writeOpens != start : readOpens != start
                return moved ? nil : openWaiters.enroll()
            }
            guard let waiter else { return handle }
            WaitList.block(waiter)
            if WaitList.interrupted() {
                lock.withLock { openWaiters.withdraw(waiter) }
                handle.close()  // undoes the count
                throw .interrupted
            }
        }
    }

    var readReadiness: Readiness {
        if isHost { return Self.hostReadiness(lock.withLock { hostRead }, read: true) }
        return lock.withLock { () -> Readiness in
            var r: Readiness = []
            if count > 0 { r.insert(.readable) }
            if writers == 0 { r.insert(.hangUp) }
            return r
        }
    }

    var writeReadiness: Readiness {
        if isHost { return Self.hostReadiness(lock.withLock { hostWrite }, read: false) }
        return lock.withLock { () -> Readiness in
            if readers == 0 { return [.error] }
            return buffer.count - count >= Pipe.atomicWriteLimit || count == 0 ? [.writable] : []
        }
    }

    /// tee(2)'s side: copies what is waiting without consuming it, waiting for data as a
    /// read would (0 when no writer is left).
    public func peek(into out: UnsafeMutableRawBufferPointer, nonBlocking: Bool) throws(Errno) -> Int {
        try read(into: out, nonBlocking: nonBlocking, consume: false)
    }

    func read(into out: UnsafeMutableRawBufferPointer, nonBlocking: Bool, consume: Bool = true) throws(Errno) -> Int {
        guard out.count > 0 else { return 0 }
        while true {
            if isHost { return try hostRead(into: out, nonBlocking: nonBlocking) }
            let (n, waiter, wake) = lock.withLock { () -> (Int, Waiter?, [Waiter]) in
                if count == 0 {
                    if writers == 0 || nonBlocking { return (writers == 0 ? 0 : -1, nil, []) }
                    return (0, readWaiters.enroll(), [])
                }
                let n = min(out.count, count)
                let first = min(n, buffer.count - head)
                (out.baseAddress!).copyMemory(from: buffer.baseAddress! + head, byteCount: first)
                if n > first { (out.baseAddress! + first).copyMemory(from: buffer.baseAddress!, byteCount: n - first) }
                if !consume { return (n, nil, []) }
                head = (head + n) % buffer.count
                count -= n
                return (n, nil, writeWaiters.takeAll())
            }
            if let waiter {
                WaitList.block(waiter)
                if WaitList.interrupted() {
                    lock.withLock { readWaiters.withdraw(waiter) }
                    throw .interrupted
                }
                continue
            }
            if n < 0 { throw .wouldBlock }
            wake.wakeAll()
            if n > 0 && consume { writeObservers.notify(writeReadiness) }
            return n
        }
    }

    func write(from data: UnsafeRawBufferPointer, nonBlocking: Bool) throws(Errno) -> Int {
        guard data.count > 0 else { return 0 }
        var written = 0
        let atomic = data.count <= Pipe.atomicWriteLimit
        while true {
            if isHost { return try hostWrite(from: data, done: written, nonBlocking: nonBlocking) }
            enum Step { case wrote(Int, [Waiter]), wait(Waiter), broken, wouldBlock }
            let step = lock.withLock { () -> Step in
                if readers == 0 { return .broken }
                let free = buffer.count - count
                let remaining = data.count - written
                if free == 0 || (atomic && free < remaining) {
                    return nonBlocking ? .wouldBlock : .wait(writeWaiters.enroll())
                }
                let n = min(free, remaining)
                let tail = (head + count) % buffer.count
                let first = min(n, buffer.count - tail)
                (buffer.baseAddress! + tail).copyMemory(from: data.baseAddress! + written, byteCount: first)
                if n > first { buffer.baseAddress!.copyMemory(from: data.baseAddress! + written + first, byteCount: n - first) }
                count += n
                return .wrote(n, readWaiters.takeAll())
            }
            switch step {
            case .broken:
                if written > 0 { return written }
                throw .brokenPipe
            case .wouldBlock:
                if written > 0 { return written }
                throw .wouldBlock
            case .wait(let w):
                WaitList.block(w)
                if WaitList.interrupted() {
                    lock.withLock { writeWaiters.withdraw(w) }
                    if written > 0 { return written }
                    throw .interrupted
                }
            case .wrote(let n, let wake):
                written += n
                wake.wakeAll()
                readObservers.notify(readReadiness)
                if written == data.count || nonBlocking { return written }
            }
        }
    }

    func closeReader() {
        if isHost { return closeHost(read: true) }
        let wake = lock.withLock { () -> [Waiter] in
            readers -= 1
            if readers == 0 && writers == 0 { head = 0; count = 0 }  // a FIFO's data goes with its last end
            return readers == 0 ? writeWaiters.takeAll() : []
        }
        wake.wakeAll()
        writeObservers.notify(writeReadiness)
    }

    func closeWriter() {
        if isHost { return closeHost(read: false) }
        let wake = lock.withLock { () -> [Waiter] in
            writers -= 1
            if readers == 0 && writers == 0 { head = 0; count = 0 }
            return writers == 0 ? readWaiters.takeAll() : []
        }
        wake.wakeAll()
        readObservers.notify(readReadiness)
    }

    /// F_SETPIPE_SZ: a power of two of pages, at least one page; EBUSY when the bytes
    /// waiting do not fit. Returns the new capacity.
    public func resize(to requested: Int) throws(Errno) -> Int {
        var size = 4096
        while size < requested { size <<= 1 }
        return try lock.withLock { () throws(Errno) -> Int in
            guard count <= size else { throw .resourceBusy }
            let new = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
            let first = min(count, buffer.count - head)
            new.baseAddress!.copyMemory(from: buffer.baseAddress! + head, byteCount: first)
            if count > first { (new.baseAddress! + first).copyMemory(from: buffer.baseAddress!, byteCount: count - first) }
            buffer.deallocate()
            buffer = new
            head = 0
            return size
        }
    }

    /// Bytes waiting to be read (FIONREAD).
    public var available: Int {
        if isHost {
            var n: Int32 = 0
            _ = ioctl(lock.withLock { hostRead }, UInt(FIONREAD), &n)
            return Int(n)
        }
        return lock.withLock { count }
    }
}

// MARK: promotion to a host pipe (fork)

extension Pipe {
    /// Before a fork: moves the pipe into a host pipe (its buffered bytes first) so the
    /// processes that share its ends share one kernel object. Returns false when it
    /// cannot be moved (a FIFO's pipe, more than 64 KiB that would not fit).
    @discardableResult
    public func promoteToHost() -> Bool {
        if isHost { return true }
        guard anonymous else { return false }
        let woken = lock.withLock { () -> [Waiter]? in
            if hostMode.load(ordering: .relaxed) { return [] }
            var fds: [Int32] = [-1, -1]
            guard Glibc.pipe(&fds) == 0 else { return nil }
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
            if count > 0 {
                // The host pipe holds 64 KiB by default, as this buffer does.
                if count > Self.defaultCapacity { _ = fcntl(fds[1], 1031 /* F_SETPIPE_SZ */, Int32(count)) }
                let first = min(count, buffer.count - head)
                var ok = Glibc.write(fds[1], buffer.baseAddress! + head, first) == first
                if ok && count > first { ok = Glibc.write(fds[1], buffer.baseAddress!, count - first) == count - first }
                if !ok { Glibc.close(fds[0]); Glibc.close(fds[1]); return nil }
                head = 0
                count = 0
            }
            hostRead = fds[0]
            hostWrite = fds[1]
            // Ends this process already closed are closed on the host too.
            if readers == 0 { Glibc.close(hostRead); hostRead = -1 }
            if writers == 0 { Glibc.close(hostWrite); hostWrite = -1 }
            hostMode.store(true, ordering: .releasing)
            return readWaiters.takeAll() + writeWaiters.takeAll()
        }
        guard let woken else { return false }
        let (r, w) = lock.withLock { (hostRead, hostWrite) }
        if r >= 0 { HostWatcher.shared.watch(r) { [weak self] in self.map { $0.readObservers.notify($0.readReadiness) } } }
        if w >= 0 { HostWatcher.shared.watch(w) { [weak self] in self.map { $0.writeObservers.notify($0.writeReadiness) } } }
        woken.wakeAll()  // they retry on the host pipe
        return true
    }

    /// Opening /proc/self/fd/N of one of the pipe's ends: a new end by `flags`, as Linux's
    /// fifo_open on the pipe's inode. A pipe in the host kernel is opened again there
    /// (never waiting), as a pipe of its own in host mode.
    func reopenEnd(_ flags: OpenFlags) throws(Errno) -> any FileHandle {
        guard isHost else { return try openEnd(flags) }
        let fd = lock.withLock { hostRead >= 0 ? hostRead : hostWrite }
        guard fd >= 0 else { throw .noSuchAddressOrDevice }
        let opened = Glibc.open("/proc/self/fd/\(fd)", flags.accessMode | O_NONBLOCK | O_CLOEXEC)
        guard opened >= 0 else { throw Errno(rawValue: errno) }
        let p = Pipe(capacity: 4096)
        p.anonymous = true
        let both = flags.accessMode == 2
        p.lock.withLock {
            if flags.canRead { p.readers = 1; p.hostRead = opened }
            if flags.canWrite { p.writers = 1; p.hostWrite = both ? fcntl(opened, F_DUPFD_CLOEXEC, 0) : opened }
            p.hostMode.store(true, ordering: .releasing)
        }
        if p.hostRead >= 0 { HostWatcher.shared.watch(p.hostRead) { [weak p] in p.map { $0.readObservers.notify($0.readReadiness) } } }
        if p.hostWrite >= 0 { HostWatcher.shared.watch(p.hostWrite) { [weak p] in p.map { $0.writeObservers.notify($0.writeReadiness) } } }
        if both { return PipeBothEnds(pipe: p) }
        return flags.canRead ? PipeReadEnd(pipe: p) as any FileHandle : PipeWriteEnd(pipe: p)
    }

    static func hostReadiness(_ fd: Int32, read: Bool) -> Readiness {
        guard fd >= 0 else { return [] }
        var p = pollfd(fd: fd, events: Int16(read ? POLLIN : POLLOUT), revents: 0)
        guard Glibc.poll(&p, 1, 0) > 0 else { return [] }
        var r: Readiness = []
        if p.revents & Int16(POLLIN) != 0 { r.insert(.readable) }
        if p.revents & Int16(POLLOUT) != 0 { r.insert(.writable) }
        if p.revents & Int16(POLLHUP) != 0 { r.insert(read ? .hangUp : .error) }
        if p.revents & Int16(POLLERR) != 0 { r.insert(.error) }
        return r
    }

    func hostRead(into out: UnsafeMutableRawBufferPointer, nonBlocking: Bool) throws(Errno) -> Int {
        let fd = lock.withLock { hostRead }
        guard fd >= 0 else { throw .badFileDescriptor }
        while true {
            let n = Glibc.read(fd, out.baseAddress, out.count)
            if n >= 0 { return n }
            let e = errno
            if e == EINTR { continue }
            guard e == EAGAIN else { throw Errno(rawValue: e) }
            if nonBlocking { throw .wouldBlock }
            try HostWatcher.shared.wait(fd, for: Int16(POLLIN))
        }
    }

    func hostWrite(from data: UnsafeRawBufferPointer, done: Int, nonBlocking: Bool) throws(Errno) -> Int {
        let fd = lock.withLock { hostWrite }
        guard fd >= 0 else { throw .badFileDescriptor }
        var written = done
        while written < data.count {
            let n = Glibc.write(fd, data.baseAddress! + written, data.count - written)
            if n > 0 { written += n; if nonBlocking { break }; continue }
            let e = errno
            if n == 0 || e == EINTR { continue }
            if e == EPIPE {
                if written > 0 { return written }
                throw .brokenPipe
            }
            guard e == EAGAIN else { throw Errno(rawValue: e) }
            if nonBlocking {
                if written > 0 { return written }
                throw .wouldBlock
            }
            do { try HostWatcher.shared.wait(fd, for: Int16(POLLOUT)) } catch {
                if written > 0 { return written }
                throw error
            }
        }
        return written
    }

    func closeHost(read: Bool) {
        let fd = lock.withLock { () -> Int32 in
            let fd = read ? hostRead : hostWrite
            if read { hostRead = -1 } else { hostWrite = -1 }
            return fd
        }
        guard fd >= 0 else { return }
        HostWatcher.shared.unwatch(fd)
        Glibc.close(fd)
    }
}

/// The read end of a pipe.
public final class PipeReadEnd: FileHandle, @unchecked Sendable {
    public let pipe: Pipe
    private let closed = Atomic<Bool>(false)
    init(pipe: Pipe) { self.pipe = pipe }
    /// Dropping the last reference closes the end too.
    deinit { close() }
    public func reopen(_ flags: OpenFlags) throws(Errno) -> (any FileHandle)? { try pipe.reopenEnd(flags) }
    public var isSeekable: Bool { false }
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        try pipe.read(into: buffer, nonBlocking: nonBlocking)
    }
    public func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        throw .badFileDescriptor
    }
    public func size() throws(Errno) -> Int64 { 0 }
    public func close() { if !closed.exchange(true, ordering: .acquiringAndReleasing) { pipe.closeReader() } }
    public var readiness: Readiness { pipe.readReadiness }
    public func addReadinessObserver(_ o: @escaping @Sendable (Readiness) -> Void) -> Int { pipe.readObservers.add(o) }
    public func removeReadinessObserver(_ t: Int) { pipe.readObservers.remove(t) }
}

/// The write end of a pipe.
public final class PipeWriteEnd: FileHandle, @unchecked Sendable {
    public let pipe: Pipe
    private let closed = Atomic<Bool>(false)
    init(pipe: Pipe) { self.pipe = pipe }
    /// Dropping the last reference closes the end too.
    deinit { close() }
    public func reopen(_ flags: OpenFlags) throws(Errno) -> (any FileHandle)? { try pipe.reopenEnd(flags) }
    public var isSeekable: Bool { false }
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        throw .badFileDescriptor
    }
    public func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        try pipe.write(from: buffer, nonBlocking: nonBlocking)
    }
    public func size() throws(Errno) -> Int64 { 0 }
    public func close() { if !closed.exchange(true, ordering: .acquiringAndReleasing) { pipe.closeWriter() } }
    public var readiness: Readiness { pipe.writeReadiness }
    public func addReadinessObserver(_ o: @escaping @Sendable (Readiness) -> Void) -> Int { pipe.writeObservers.add(o) }
    public func removeReadinessObserver(_ t: Int) { pipe.writeObservers.remove(t) }
}

/// A FIFO opened O_RDWR: reads and writes the one pipe, counted on both sides.
public final class PipeBothEnds: FileHandle, @unchecked Sendable {
    public let pipe: Pipe
    private let closed = Atomic<Bool>(false)
    init(pipe: Pipe) { self.pipe = pipe }
    deinit { close() }
    public func reopen(_ flags: OpenFlags) throws(Errno) -> (any FileHandle)? { try pipe.reopenEnd(flags) }
    public var isSeekable: Bool { false }
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        try pipe.read(into: buffer, nonBlocking: nonBlocking)
    }
    public func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        try pipe.write(from: buffer, nonBlocking: nonBlocking)
    }
    public func size() throws(Errno) -> Int64 { 0 }
    public func close() {
        if !closed.exchange(true, ordering: .acquiringAndReleasing) {
            pipe.closeReader()
            pipe.closeWriter()
        }
    }
    public var readiness: Readiness { pipe.readReadiness.union(pipe.writeReadiness.subtracting(.error)) }
    public func addReadinessObserver(_ o: @escaping @Sendable (Readiness) -> Void) -> Int {
        let a = pipe.readObservers.add(o), b = pipe.writeObservers.add(o)
        return a << 32 | b
    }
    public func removeReadinessObserver(_ t: Int) {
        pipe.readObservers.remove(t >> 32)
        pipe.writeObservers.remove(t & 0xFFFF_FFFF)
    }
}
