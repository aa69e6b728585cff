// SocketCalls.swift: socketpair(AF_UNIX, SOCK_STREAM) and the socket calls a connected
// pair answers (send/recv and their msg forms, shutdown, socket options, names), and
// eventfd. Network sockets come with NetStack; socket(2) still says EAFNOSUPPORT.
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

extension Handlers {
    static let sockNonBlock: UInt64 = 0o4000, sockCloexec: UInt64 = 0o2000000
    static let msgPeek: UInt64 = 0x2, msgOOB: UInt64 = 0x1, msgDontWait: UInt64 = 0x40
    static let msgWaitAll: UInt64 = 0x100, msgNoSignal: UInt64 = 0x4000

    static func registerSockets(_ d: Dispatcher) {
        d.register(53, "socketpair") { f, p throws(LinuxError) in
            let domain = f.a0, type = f.a1 & 0xf, flags = f.a1 & ~0xf
            guard flags & ~(sockNonBlock | sockCloexec) == 0 else { throw LinuxError(.EINVAL) }
            guard domain == 1 else { throw LinuxError(.EAFNOSUPPORT) }  // AF_UNIX only
            guard type == 1 else { throw LinuxError(.EOPNOTSUPP) }      // SOCK_STREAM; no DGRAM/SEQPACKET yet
            guard f.a2 == 0 else { throw LinuxError(.EPROTONOSUPPORT) }
            _ = try UserMemory.pointer(f.a3, 8, for: .write)
            let (a, b) = SocketPairEnd.makePair()
            var status: OpenFlags = .readWrite
            if flags & sockNonBlock != 0 { status.insert(.nonBlocking) }
            let fa = OpenFile(location: Location(node: AnonymousNode.socket(), path: "socket:"), handle: a, flags: status)
            let fb = OpenFile(location: Location(node: AnonymousNode.socket(), path: "socket:"), handle: b, flags: status)
            let cloexec = flags & sockCloexec != 0
            let x = try p.descriptors.install(fa, closeOnExec: cloexec)
            let y: Int32
            do throws(LinuxError) { y = try p.descriptors.install(fb, closeOnExec: cloexec) } catch {
                try? p.descriptors.close(x)
                throw error
            }
            try UserMemory.store(x, at: f.a3)
            try UserMemory.store(y, at: f.a3 + 4)
            return 0
        }
        d.register(44, "sendto") { f, p throws(LinuxError) in
            // A connected pair: a destination address is not allowed (EISCONN).
            if f.a4 != 0 { _ = try socket(p, f.a0); throw LinuxError(.EISCONN) }
            let buf = try UserMemory.buffer(f.a1, Int(clamping: f.a2), for: .read)
            return Int64(try transfer(p, fd: f.a0, flags: f.a3, write: true, [UnsafeMutableRawBufferPointer(mutating: UnsafeRawBufferPointer(buf))]))
        }
        d.register(45, "recvfrom") { f, p throws(LinuxError) in
            let buf = try UserMemory.buffer(f.a1, Int(clamping: f.a2), for: .write)
            let n = try transfer(p, fd: f.a0, flags: f.a3, write: false, [buf])
            if f.a4 != 0 && f.a5 != 0 { try UserMemory.store(UInt32(0), at: f.a5) }  // no peer address
            return Int64(n)
        }
        d.register(46, "sendmsg") { f, p throws(LinuxError) in try message(p, fd: f.a0, msghdr: f.a1, flags: f.a2, write: true) }
        d.register(47, "recvmsg") { f, p throws(LinuxError) in try message(p, fd: f.a0, msghdr: f.a1, flags: f.a2, write: false) }
        d.register(48, "shutdown") { f, p throws(LinuxError) in
            let s = try socket(p, f.a0)
            try fsCall { () throws(Errno) in try s.shutdown(Int32(truncatingIfNeeded: f.a1)) }
            return 0
        }
        d.register(55, "getsockopt") { f, p throws(LinuxError) in
            _ = try socket(p, f.a0)
            guard f.a1 == 1 else { throw LinuxError(.ENOPROTOOPT) }  // SOL_SOCKET
            let value: Int32
            switch f.a2 {
            case 3: value = 1          // SO_TYPE: SOCK_STREAM
            case 4: value = 0          // SO_ERROR
            case 39: value = 1         // SO_DOMAIN: AF_UNIX
            case 38: value = 0         // SO_PROTOCOL
            case 30: value = 0         // SO_ACCEPTCONN
            case 7, 8: value = 212_992 // SO_SNDBUF, SO_RCVBUF
            default: throw LinuxError(.ENOPROTOOPT)
            }
            let len = try UserMemory.load(UInt32.self, at: f.a4)
            guard Int32(bitPattern: len) >= 0 else { throw LinuxError(.EINVAL) }
            let bytes = withUnsafeBytes(of: value) { Array($0.prefix(Int(min(len, 4)))) }
            let dst = try UserMemory.buffer(f.a3, bytes.count, for: .write)
            bytes.withUnsafeBytes { dst.copyMemory(from: $0) }
            try UserMemory.store(UInt32(bytes.count), at: f.a4)
            return 0
        }
        d.register(54, "setsockopt") { f, p throws(LinuxError) in
            _ = try socket(p, f.a0)
            guard f.a1 == 1 else { throw LinuxError(.ENOPROTOOPT) }
            guard f.a4 >= 4 else { throw LinuxError(.EINVAL) }
            _ = try UserMemory.load(Int32.self, at: f.a3)
            switch f.a2 {
            case 2, 7, 8, 9, 32, 33: return 0  // SO_REUSEADDR, SO_SNDBUF, SO_RCVBUF, SO_KEEPALIVE, SO_SNDBUFFORCE, SO_RCVBUFFORCE
            default: throw LinuxError(.ENOPROTOOPT)
            }
        }
        let name: SyscallHandler = { f, p throws(LinuxError) in
            // An unnamed AF_UNIX socket: just the family.
            _ = try socket(p, f.a0)
            let len = try UserMemory.load(UInt32.self, at: f.a2)
            guard Int32(bitPattern: len) >= 0 else { throw LinuxError(.EINVAL) }
            if len >= 2 { try UserMemory.store(UInt16(1), at: f.a1) }
            try UserMemory.store(UInt32(2), at: f.a2)
            return 0
        }
        d.register(51, "getsockname", name)
        d.register(52, "getpeername", name)
        d.register(290, "eventfd2") { f, p throws(LinuxError) in try eventfd(p, initial: f.a0, flags: f.a1) }
        d.register(284, "eventfd") { f, p throws(LinuxError) in try eventfd(p, initial: f.a0, flags: 0) }
    }

    static func eventfd(_ p: LinuxProcess, initial: UInt64, flags: UInt64) throws(LinuxError) -> Int64 {
        let semaphore: UInt64 = 1
        guard flags & ~(sockNonBlock | sockCloexec | semaphore) == 0 else { throw LinuxError(.EINVAL) }
        let counter = EventCounter(initial: UInt32(truncatingIfNeeded: initial), semaphore: flags & semaphore != 0)
        var status: OpenFlags = .readWrite
        if flags & sockNonBlock != 0 { status.insert(.nonBlocking) }
        let file = OpenFile(location: Location(node: AnonymousNode.anonymousInode(), path: "anon_inode:[eventfd]"),
                            handle: counter, flags: status)
        return Int64(try p.descriptors.install(file, closeOnExec: flags & sockCloexec != 0))
    }

    /// The socket behind `fd` (ENOTSOCK for other files).
    static func socket(_ p: LinuxProcess, _ fd: UInt64) throws(LinuxError) -> SocketPairEnd {
        guard let s = try p.fd(fd).handle as? SocketPairEnd else { throw LinuxError(.ENOTSOCK) }
        return s
    }

    /// send/recv over the buffers in order, with MSG_DONTWAIT, MSG_NOSIGNAL and
    /// MSG_WAITALL; MSG_PEEK and MSG_OOB are not supported (EOPNOTSUPP).
    static func transfer(_ p: LinuxProcess, fd: UInt64, flags: UInt64, write: Bool,
                         _ buffers: [UnsafeMutableRawBufferPointer]) throws(LinuxError) -> Int {
        let file = try p.fd(fd)
        guard let s = file.handle as? SocketPairEnd else { throw LinuxError(.ENOTSOCK) }
        guard flags & (msgPeek | msgOOB) == 0 else { throw LinuxError(.EOPNOTSUPP) }
        let nonBlocking = flags & msgDontWait != 0 || file.flags.contains(.nonBlocking)
        var total = 0
        for buffer in buffers where buffer.count > 0 {
            var done = 0
            while done < buffer.count {
                let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[done...])
                let n: Int
                do {
                    n = try fsCall(raisingSIGPIPE: false) { () throws(Errno) -> Int in
                        write ? try s.write(from: UnsafeRawBufferPointer(slice), at: 0, nonBlocking: nonBlocking)
                              : try s.read(into: slice, at: 0, nonBlocking: nonBlocking)
                    }
                } catch {
                    // Bytes already moved are the result (as Linux returns a partial count),
                    // even when a signal or EPIPE ended the rest.
                    if total + done > 0 { return total + done }
                    if error.code == LinuxError.Code.EPIPE.rawValue && flags & msgNoSignal == 0 {
                        p.signals.send(SIGPIPE, SignalInfo(code: SignalInfo.user, pid: p.pid, uid: getuid()), to: AppThread.current)
                    }
                    throw error
                }
                done += n
                // A read returns what arrived unless MSG_WAITALL asks for all of it; EOF ends it.
                if !write && (n == 0 || flags & msgWaitAll == 0) { return total + done }
                // A blocking write that came back short was cut by a signal: report it.
                if write && !nonBlocking && n < slice.count { return total + done }
            }
            total += done
        }
        return total
    }

    /// struct msghdr { name, namelen, iov, iovlen, control, controllen, flags }.
    static func message(_ p: LinuxProcess, fd: UInt64, msghdr: UInt64, flags: UInt64, write: Bool) throws(LinuxError) -> Int64 {
        _ = try socket(p, fd)
        let name = try UserMemory.load(UInt64.self, at: msghdr)
        let iov = try UserMemory.load(UInt64.self, at: msghdr + 16)
        let iovlen = try UserMemory.load(UInt64.self, at: msghdr + 24)
        let controllen = try UserMemory.load(UInt64.self, at: msghdr + 40)
        guard iovlen <= 1024 else { throw LinuxError(.EMSGSIZE) }
        if write {
            if name != 0 { throw LinuxError(.EISCONN) }
            if controllen != 0 { throw LinuxError(.EOPNOTSUPP) }  // no SCM_RIGHTS passing yet
        }
        var buffers: [UnsafeMutableRawBufferPointer] = []
        for i in 0..<Int(iovlen) {
            let base = try UserMemory.load(UInt64.self, at: iov + UInt64(16 * i))
            let len = try UserMemory.load(UInt64.self, at: iov + UInt64(16 * i + 8))
            buffers.append(try UserMemory.buffer(base, Int(clamping: len), for: write ? .read : .write))
        }
        let n = try transfer(p, fd: fd, flags: flags, write: write, buffers)
        if !write {
            try UserMemory.store(UInt32(0), at: msghdr + 8)      // msg_namelen: no address
            try UserMemory.store(UInt64(0), at: msghdr + 40)     // msg_controllen
            try UserMemory.store(Int32(0), at: msghdr + 48)      // msg_flags
        }
        return Int64(n)
    }
}
