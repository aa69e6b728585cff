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
                let fd = path.withCString { openat(root, $0, passed) }
                if fd >= 0 { return fd }
                if errno != EINTR { return -errno }
            }
        }
        let fd = waits ? HostHelperThread.run(open) : open()
        try HostFS.check(fd)
        return HostStreamHandle(fs: fs, fd: fd)
    }
}

/// Runs a call that may block in the host kernel on a helper OS thread while the
/// calling uthread parks (its kthread runs others). Not interrupted by signals.
enum HostHelperThread {
    private final class Job: @unchecked Sendable {
        let body: @Sendable () -> Int32
        let lock = FSLock()
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

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        let r = fs.io.perform({ cju_prep_read($0, fd, buffer.baseAddress, UInt32(clamping: buffer.count), UInt64.max, $1) },
                              direct: { let n = Glibc.read(fd, buffer.baseAddress, buffer.count); return n >= 0 ? Int32(n) : -errno })
        try HostFS.check(r)
        return Int(r)
    }

    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        let r = fs.io.perform({ cju_prep_write($0, fd, buffer.baseAddress, UInt32(clamping: buffer.count), UInt64.max, $1) },
                              direct: { let n = Glibc.write(fd, buffer.baseAddress, buffer.count); return n >= 0 ? Int32(n) : -errno })
        try HostFS.check(r)
        return Int(r)
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
