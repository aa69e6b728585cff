// MessageCalls.swift: the socket data calls: sendto/recvfrom, sendmsg/recvmsg,
// sendmmsg/recvmmsg, and readv/writev on sockets: msghdr and iovecs read from user
// memory (iovec arrays in temporary allocations), MSG_DONTWAIT folded into the
// non-blocking choice, SIGPIPE unless MSG_NOSIGNAL, timeouts that end in EINTR.
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// struct user_msghdr, as read from the caller (56 bytes).
struct MessageHeader {
    var name: UInt64
    var nameLength: Int32
    var iov: UInt64
    var iovCount: UInt64
    var control: UInt64
    var controlLength: UInt64

    static let size = 56
    /// UIO_MAXIOV.
    static let maxIOVectors: UInt64 = 1024

    init(at address: UInt64) throws(LinuxError) {
        let p = try UserMemory.pointer(address, Self.size, for: .read)
        name = p.loadUnaligned(as: UInt64.self)
        nameLength = p.loadUnaligned(fromByteOffset: 8, as: Int32.self)
        iov = p.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
        iovCount = p.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
        control = p.loadUnaligned(fromByteOffset: 32, as: UInt64.self)
        controlLength = p.loadUnaligned(fromByteOffset: 40, as: UInt64.self)
        // A NULL name has no length; a negative one is refused (copy_msghdr_from_user).
        if name == 0 { nameLength = 0 }
        guard nameLength >= 0 else { throw LinuxError(.EINVAL) }
        guard iovCount <= Self.maxIOVectors else { throw LinuxError(.EMSGSIZE) }
    }
}

extension Handlers {
    static let msgBatch: Int32 = 0x40000

    static func registerSocketMessages(_ d: Dispatcher) {
        d.register(.sendto) { f, p throws(LinuxError) in
            let (file, s) = try socket(p, f.a0)
            let buf = UnsafeRawBufferPointer(try dataBuffer(s, f.a1, f.a2, for: .read))
            let to: SocketAddress? = f.a4 != 0 ? try loadAddress(f.a4, length: f.a5) : nil
            return Int64(try withUnsafePointer(to: buf) { b throws(LinuxError) in
                try send(p, file, s, UnsafeBufferPointer(start: b, count: 1), to: to, control: [], flags: f.a3)
            })
        }
        d.register(.recvfrom) { f, p throws(LinuxError) in
            let (file, s) = try socket(p, f.a0)
            let buf = try dataBuffer(s, f.a1, f.a2, for: .write)
            let m = try withUnsafePointer(to: buf) { b throws(LinuxError) in
                try receive(p, file, s, UnsafeBufferPointer(start: b, count: 1), flags: f.a3, wantAddress: f.a4 != 0, controlCapacity: 0)
            }
            // Only a family that reports a sender touches the address (TCP leaves it alone);
            // AF_UNIX reports an unnamed sender with length 0, as Linux does.
            if f.a4 != 0, let a = m.address {
                try storeAddress(a, at: f.a4, length: f.a5, room: try loadAddressLength(f.a5))
            }
            return Int64(m.count)
        }
        d.register(.sendmsg) { f, p throws(LinuxError) in
            let (file, s) = try socket(p, f.a0)
            return Int64(try sendMessage(p, file, s, header: f.a1, flags: f.a2))
        }
        d.register(.recvmsg) { f, p throws(LinuxError) in
            let (file, s) = try socket(p, f.a0)
            return Int64(try receiveMessage(p, file, s, header: f.a1, flags: f.a2))
        }
        d.register(.sendmmsg) { f, p throws(LinuxError) in
            let (file, s) = try socket(p, f.a0)
            let count = min(UInt64(UInt32(truncatingIfNeeded: f.a2)), MessageHeader.maxIOVectors)
            var sent: Int64 = 0
            for i in 0..<count {
                let entry = f.a1 + 64 * i  // struct mmsghdr { msghdr; unsigned msg_len; }
                do throws(LinuxError) {
                    let batch = i + 1 < count ? UInt64(msgBatch) : 0
                    let n = try sendMessage(p, file, s, header: entry, flags: f.a3 | batch)
                    try UserMemory.store(UInt32(truncatingIfNeeded: n), at: entry + 56)
                } catch {
                    // An error is reported only when nothing was sent.
                    if sent > 0 { return sent }
                    throw error
                }
                sent += 1
            }
            return sent
        }
        d.register(.recvmmsg) { f, p throws(LinuxError) in try receiveMany(p, f) }
    }

    /// A send or receive buffer: unprobed when the host kernel copies it (it answers
    /// EFAULT itself), probed otherwise.
    @inline(__always)
    static func dataBuffer(_ s: any SocketHandle, _ address: UInt64, _ length: UInt64, for access: UserMemory.Access) throws(LinuxError) -> UnsafeMutableRawBufferPointer {
        let n = Int(clamping: min(length, 0x7fff_f000))  // MAX_RW_COUNT
        return s.copiesInKernel ? try UserMemory.kernelBuffer(address, n) : try UserMemory.buffer(address, n, for: access)
    }

    /// Runs `body` over the iovec array at `iov` as buffers, in a temporary allocation.
    @inline(__always)
    static func withIOVectors<B, R>(_ s: any SocketHandle, _ iov: UInt64, count: Int, access: UserMemory.Access,
                                    _ make: (UnsafeMutableRawBufferPointer) -> B,
                                    _ body: (UnsafeBufferPointer<B>) throws(LinuxError) -> R) throws(LinuxError) -> R {
        if count > 0 { _ = try UserMemory.pointer(iov, 16 * count, for: .read) }
        return try withUnsafeTemporaryAllocation(of: B.self, capacity: max(count, 1)) { (tmp: UnsafeMutableBufferPointer<B>) throws(LinuxError) -> R in
            var filled = 0
            defer { _ = tmp[0..<filled].deinitialize() }
            let vectors = UnsafeRawPointer(bitPattern: UInt(iov))
            for i in 0..<count {
                let base = vectors!.loadUnaligned(fromByteOffset: 16 * i, as: UInt64.self)
                let len = vectors!.loadUnaligned(fromByteOffset: 16 * i + 8, as: UInt64.self)
                guard Int64(bitPattern: len) >= 0 else { throw LinuxError(.EINVAL) }
                tmp.initializeElement(at: i, to: make(try dataBuffer(s, base, len, for: access)))
                filled += 1
            }
            return try body(UnsafeBufferPointer(rebasing: tmp[0..<count]))
        }
    }

    /// One send: MSG_DONTWAIT or O_NONBLOCK make it non-blocking; EPIPE raises SIGPIPE
    /// unless MSG_NOSIGNAL.
    static func send(_ p: LinuxProcess, _ file: OpenFile, _ s: any SocketHandle, _ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>,
                     to address: SocketAddress?, control: [ControlMessage], flags: UInt64) throws(LinuxError) -> Int {
        let f = MessageFlags(rawValue: Int32(truncatingIfNeeded: flags))
        let nonBlocking = f.contains(.dontWait) || file.flags.contains(.nonBlocking)
        let passed = f.subtracting([.dontWait, .noSignal])
        do {
            return try socketCall(restartable: s.common.sendTimeout == nil) { () throws(Errno) in
                try s.send(buffers, to: address, control: control, flags: passed, nonBlocking: nonBlocking)
            }
        } catch {
            if error.code == LinuxError.Code.EPIPE.rawValue && !f.contains(.noSignal) {
                p.signals.send(SIGPIPE, SignalInfo(code: SignalInfo.user, pid: p.pid, uid: getuid()), to: AppThread.current)
            }
            throw error
        }
    }

    /// One receive; MSG_CMSG_CLOEXEC stays with the layer (it installs received files).
    static func receive(_ p: LinuxProcess, _ file: OpenFile, _ s: any SocketHandle, _ buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>,
                        flags: UInt64, wantAddress: Bool, controlCapacity: Int) throws(LinuxError) -> ReceivedMessage {
        let f = MessageFlags(rawValue: Int32(truncatingIfNeeded: flags))
        let nonBlocking = f.contains(.dontWait) || file.flags.contains(.nonBlocking)
        let passed = f.subtracting([.dontWait, .controlCloseOnExec])
        return try socketCall(restartable: s.common.receiveTimeout == nil) { () throws(Errno) in
            try s.receive(into: buffers, flags: passed, nonBlocking: nonBlocking, wantAddress: wantAddress, controlCapacity: controlCapacity)
        }
    }

    static func sendMessage(_ p: LinuxProcess, _ file: OpenFile, _ s: any SocketHandle, header: UInt64, flags: UInt64) throws(LinuxError) -> Int {
        let h = try MessageHeader(at: header)
        let to: SocketAddress? = h.nameLength > 0
            ? try loadAddress(h.name, length: UInt64(min(Int(h.nameLength), SocketConstants.maxAddressLength))) : nil
        return try withIOVectors(s, h.iov, count: Int(h.iovCount), access: .read, { UnsafeRawBufferPointer($0) }) {
            (buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>) throws(LinuxError) -> Int in
            let control = h.controlLength > 0 ? try decodeControl(p, h.control, length: h.controlLength) : []
            return try send(p, file, s, buffers, to: to, control: control, flags: flags)
        }
    }

    static func receiveMessage(_ p: LinuxProcess, _ file: OpenFile, _ s: any SocketHandle, header: UInt64, flags: UInt64) throws(LinuxError) -> Int {
        let h = try MessageHeader(at: header)
        let m = try withIOVectors(s, h.iov, count: Int(h.iovCount), access: .write, { $0 }) {
            (buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>) throws(LinuxError) -> ReceivedMessage in
            try receive(p, file, s, buffers, flags: flags, wantAddress: h.name != 0,
                        controlCapacity: h.control == 0 ? 0 : Int(clamping: h.controlLength))
        }
        if h.name != 0 {
            try storeAddress(m.address ?? SocketAddress(), at: h.name, length: header + 8, room: Int(h.nameLength))
        }
        var outFlags = m.flags
        let cloexec = MessageFlags(rawValue: Int32(truncatingIfNeeded: flags)).contains(.controlCloseOnExec)
        let used = try encodeControl(p, m.control, into: h.control, capacity: Int(clamping: h.controlLength),
                                     closeOnExec: cloexec, flags: &outFlags)
        try UserMemory.store(outFlags.rawValue, at: header + 48)
        try UserMemory.store(UInt64(used), at: header + 40)
        return m.count
    }

    /// recvmmsg(fd, msgvec, vlen, flags, timeout): the timeout is checked after each
    /// datagram (as Linux does), MSG_WAITFORONE makes the rest non-blocking, and the time
    /// left is written back when something arrived.
    static func receiveMany(_ p: LinuxProcess, _ f: SyscallFrame) throws(LinuxError) -> Int64 {
        var deadline: MonotonicInstant?
        if f.a4 != 0 {
            deadline = try UserTimespec.loadValid(at: f.a4).deadlineFromNow
        }
        let (file, s) = try socket(p, f.a0)
        let count = min(UInt64(UInt32(truncatingIfNeeded: f.a2)), MessageHeader.maxIOVectors)
        var flags = f.a3 & ~UInt64(MessageFlags.waitForOne.rawValue)
        var received: Int64 = 0
        var failure: LinuxError?
        while UInt64(received) < count {
            let entry = f.a1 + 64 * UInt64(received)
            do throws(LinuxError) {
                let n = try receiveMessage(p, file, s, header: entry, flags: flags)
                try UserMemory.store(UInt32(truncatingIfNeeded: n), at: entry + 56)
            } catch {
                failure = error
                break
            }
            received += 1
            if f.a3 & UInt64(MessageFlags.waitForOne.rawValue) != 0 { flags |= UInt64(MessageFlags.dontWait.rawValue) }
            if let deadline, MonotonicInstant.now >= deadline { break }
        }
        if received == 0, let failure { throw failure }
        if let deadline, received > 0 {
            let left = max(0, deadline.nanoseconds - MonotonicInstant.now.nanoseconds)
            try UserMemory.store(left / 1_000_000_000, at: f.a4)
            try UserMemory.store(left % 1_000_000_000, at: f.a4 + 8)
        }
        return received
    }

    /// readv/writev on a socket: one message over all the buffers (a datagram stays whole).
    static func socketVectored(_ p: LinuxProcess, _ file: OpenFile, _ s: any SocketHandle, iov: UInt64, count: UInt64, write: Bool) throws(LinuxError) -> Int64 {
        guard Int64(bitPattern: count) >= 0, count <= MessageHeader.maxIOVectors else { throw LinuxError(.EINVAL) }
        if write {
            return Int64(try withIOVectors(s, iov, count: Int(count), access: .read, { UnsafeRawBufferPointer($0) }) {
                (buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>) throws(LinuxError) -> Int in
                try send(p, file, s, buffers, to: nil, control: [], flags: 0)
            })
        }
        return Int64(try withIOVectors(s, iov, count: Int(count), access: .write, { $0 }) {
            (buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>) throws(LinuxError) -> Int in
            try receive(p, file, s, buffers, flags: 0, wantAddress: false, controlCapacity: 0).count
        })
    }
}
