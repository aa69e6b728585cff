// HostFIFO.swift: FIFOs on HostFS: the host's own FIFO (so it works with processes
// outside the instance), opened on a helper thread when the open must wait for the
// other end (io_uring opens FIFOs without waiting), read and written through io_uring,
// which parks only the uthread.
import CURing
import Synchronization
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

extension HostNode {
    func openFIFO(_ flags: OpenFlags) throws(Errno) -> any FileHandle {
        let passed = flags.rawValue & (OpenFlags.readWrite.rawValue | OpenFlags.writeOnly.rawValue | OpenFlags.nonBlocking.rawValue)
            | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY
        let (root, path) = (fs.rootFD, self.path)
        // O_RDWR and O_NONBLOCK opens return at once (ENXIO for a writer with no reader).
        let waits = flags.accessMode != 2 && !flags.contains(.nonBlocking)
        let open = { @Sendable () -> Int32 in
            while true {
                let fd = path.withPathCString { openat(root, $0, passed) }
                if fd >= 0 { return fd }
                if errno != EINTR { return -errno }
            }
        }
        let fd = waits ? HostHelperThread.run(open) : open()
        try HostFS.check(fd)
        // The descriptor never blocks: a read or write that must wait polls through
        // io_uring (parking the uthread) and tries again.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        return HostStreamHandle(fs: fs, fd: fd)
    }
}

/// Runs a call that may block in the host kernel on a helper OS thread while the
/// calling uthread parks (its kthread runs others). Not interrupted by signals.
enum HostHelperThread {
    private final class Job: @unchecked Sendable {
        let body: @Sendable () -> Int32
        let lock = SpinLock()
        let waiters = WaitList()
        var result: Int32?
        init(_ body: @escaping @Sendable () -> Int32) { self.body = body }
    }

    static func run(_ body: @escaping @Sendable () -> Int32) -> Int32 {
        let job = Job(body)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(job).toOpaque()
        let rc = pthread_create(&thread, nil, { context in
            let job = Unmanaged<Job>.fromOpaque(context!).takeRetainedValue()
            let r = job.body()
            let wake = job.lock.withLock { () -> [Waiter] in
                job.result = r
                return job.waiters.takeAll()
            }
            wake.wakeAll()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<Job>.fromOpaque(context).release()
            return body()
        }
        pthread_detach(thread)
        while true {
            let (result, waiter) = job.lock.withLock { () -> (Int32?, Waiter?) in
                if let r = job.result { return (r, nil) }
                return (nil, job.waiters.enroll())
            }
            if let result { return result }
            WaitList.block(waiter!)
            _ = WaitList.interrupted()  // the signal stays pending; the wait goes on
        }
    }
}

/// A host descriptor read and written as a stream through HostIO (offset -1: the
/// file's position, which streams ignore).
final class HostStreamHandle: FileHandle, @unchecked Sendable {
    let fs: HostFS
    let fd: Int32

    init(fs: HostFS, fd: Int32) {
        self.fs = fs
        self.fd = fd
    }

    var isSeekable: Bool { false }

    /// Waits until the descriptor is ready for `events` (POLLIN, POLLOUT).
    private func wait(_ events: Int16) {
        _ = fs.io.perform({ cju_prep_poll_add($0, fd, UInt32(UInt16(bitPattern: events)), $1) }, direct: {
            var p = pollfd(fd: fd, events: events, revents: 0)
            return Glibc.poll(&p, 1, -1)
        })
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            guard errno == EAGAIN, !nonBlocking else { throw Errno(rawValue: errno) }
            wait(Int16(POLLIN))
        }
    }

    /// A blocking write writes everything (waiting for room), as on a pipe.
    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        if buffer.isEmpty { return 0 }
        var done = 0
        while true {
            let n = Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
            if n >= 0 {
                done += n
                if done == buffer.count || nonBlocking { return done }
                continue
            }
            if errno == EINTR { continue }
            guard errno == EAGAIN, !nonBlocking else {
                if done > 0 { return done }
                throw Errno(rawValue: errno)
            }
            if done > 0 && nonBlocking { return done }
            wait(Int16(POLLOUT))
        }
    }

    func size() throws(Errno) -> Int64 { 0 }
    func close() { fs.closeFD(fd) }
    var hostDescriptor: Int32? { fd }

    /// What the host says the descriptor is ready for (poll with no wait).
    var readiness: Readiness {
        var p = pollfd(fd: fd, events: Int16(POLLIN | POLLOUT), revents: 0)
        guard Glibc.poll(&p, 1, 0) == 1 else { return [] }
        return Readiness(rawValue: UInt32(UInt16(bitPattern: p.revents)))
    }
}
