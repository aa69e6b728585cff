// SocketCalls.swift: the socket system calls that are not data transfer: socket,
// socketpair, bind, listen, accept/accept4, connect, names, shutdown, socket options and
// socket ioctls, speaking only to SocketHandle (the family's provider makes the socket).
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

extension Handlers {
    static let sockNonBlock: UInt64 = 0o4000, sockCloexec: UInt64 = 0o2000000
    /// SOCK_MAX: types at or past it are EINVAL before the family is asked.
    static let socketTypeLimit: UInt64 = 11
    /// AF_MAX (NPROTO): families at or past it are EAFNOSUPPORT.
    static let familyLimit: UInt64 = 46
    // SOL_SOCKET options the layer answers itself.
    static let soType: Int32 = 3, soDomain: Int32 = 39, soProtocol: Int32 = 38
    static let soRcvTimeo: Int32 = 20, soSndTimeo: Int32 = 21, soRcvTimeoNew: Int32 = 66, soSndTimeoNew: Int32 = 67

    static func registerSockets(_ d: Dispatcher) {
        d.register(.socket) { f, p throws(LinuxError) in
            let (type, flags) = try socketType(f.a1)
            guard f.a0 < familyLimit else { throw LinuxError(.EAFNOSUPPORT) }
            guard type < socketTypeLimit else { throw LinuxError(.EINVAL) }
            let family = Int32(f.a0), proto = Int32(truncatingIfNeeded: f.a2)
            let s = try socketCall { () throws(Errno) in
                try p.sockets.provider(for: family).makeSocket(family: family, type: Int32(type), protocol: proto)
            }
            return Int64(try install(p, s, flags: flags))
        }
        d.register(.socketpair) { f, p throws(LinuxError) in
            let (type, flags) = try socketType(f.a1)
            guard f.a0 < familyLimit else { throw LinuxError(.EAFNOSUPPORT) }
            guard type < socketTypeLimit else { throw LinuxError(.EINVAL) }
            let family = Int32(f.a0), proto = Int32(truncatingIfNeeded: f.a2)
            let (a, b) = try socketCall { () throws(Errno) in
                try p.sockets.provider(for: family).makePair(family: family, type: Int32(type), protocol: proto)
            }
            _ = try UserMemory.pointer(f.a3, 8, for: .write)
            let x = try install(p, a, flags: flags)
            let y: Int32
            do throws(LinuxError) { y = try install(p, b, flags: flags) } catch {
                try? p.descriptors.close(x)
                throw error
            }
            try UserMemory.store(x, at: f.a3)
            try UserMemory.store(y, at: f.a3 + 4)
            return 0
        }
        d.register(.bind) { f, p throws(LinuxError) in
            let (_, s) = try socket(p, f.a0)
            let address = try loadAddress(f.a1, length: f.a2)
            try socketCall { () throws(Errno) in try s.bind(address) }
            return 0
        }
        d.register(.listen) { f, p throws(LinuxError) in
            let (_, s) = try socket(p, f.a0)
            try socketCall { () throws(Errno) in try s.listen(backlog: Int32(truncatingIfNeeded: f.a1)) }
            return 0
        }
        d.register(.accept) { f, p throws(LinuxError) in try accept(p, f.a0, address: f.a1, length: f.a2, flags: 0) }
        d.register(.accept4) { f, p throws(LinuxError) in try accept(p, f.a0, address: f.a1, length: f.a2, flags: f.a3) }
        d.register(.connect) { f, p throws(LinuxError) in
            let (file, s) = try socket(p, f.a0)
            let address = try loadAddress(f.a1, length: f.a2)
            let nonBlocking = file.flags.contains(.nonBlocking)
            try socketCall(restartable: s.common.sendTimeout == nil) { () throws(Errno) in
                try s.connect(address, nonBlocking: nonBlocking)
            }
            return 0
        }
        d.register(.getsockname) { f, p throws(LinuxError) in
            let (_, s) = try socket(p, f.a0)
            let len = try loadAddressLength(f.a2)
            try storeAddress(try socketCall { () throws(Errno) in try s.localAddress() }, at: f.a1, length: f.a2, room: len)
            return 0
        }
        d.register(.getpeername) { f, p throws(LinuxError) in
            let (_, s) = try socket(p, f.a0)
            let len = try loadAddressLength(f.a2)
            try storeAddress(try socketCall { () throws(Errno) in try s.peerAddress() }, at: f.a1, length: f.a2, room: len)
            return 0
        }
        d.register(.shutdown) { f, p throws(LinuxError) in
            let (_, s) = try socket(p, f.a0)
            try socketCall { () throws(Errno) in try s.shutdown(Int32(truncatingIfNeeded: f.a1)) }
            return 0
        }
        d.register(.setsockopt) { f, p throws(LinuxError) in
            try setOption(p, fd: f.a0, level: Int32(truncatingIfNeeded: f.a1), name: Int32(truncatingIfNeeded: f.a2),
                          value: f.a3, length: Int32(truncatingIfNeeded: f.a4))
        }
        d.register(.getsockopt) { f, p throws(LinuxError) in
            try getOption(p, fd: f.a0, level: Int32(truncatingIfNeeded: f.a1), name: Int32(truncatingIfNeeded: f.a2),
                          value: f.a3, length: f.a4)
        }
        registerSocketMessages(d)
        d.register(.eventfd2) { f, p throws(LinuxError) in try eventfd(p, initial: f.a0, flags: f.a1) }
        d.register(.eventfd) { f, p throws(LinuxError) in try eventfd(p, initial: f.a0, flags: 0) }
    }

    /// socket(2)'s type argument: the SOCK_* type and the SOCK_NONBLOCK/SOCK_CLOEXEC flags.
    static func socketType(_ v: UInt64) throws(LinuxError) -> (UInt64, UInt64) {
        let raw = UInt64(UInt32(truncatingIfNeeded: v))
        let type = raw & 0xf, flags = raw & ~0xf
        guard flags & ~(sockNonBlock | sockCloexec) == 0 else { throw LinuxError(.EINVAL) }
        return (type, flags)
    }

    /// A new descriptor for `s`, with SOCK_NONBLOCK and SOCK_CLOEXEC from `flags`.
    static func install(_ p: LinuxProcess, _ s: any SocketHandle, flags: UInt64) throws(LinuxError) -> Int32 {
        var status: OpenFlags = .readWrite
        if flags & sockNonBlock != 0 { status.insert(.nonBlocking) }
        let node = (s as? UnixSocket)?.node ?? AnonymousNode.socket()  // AF_UNIX: /proc/net/unix's inode
        let inode = (try? node.status().inode) ?? 0
        let file = OpenFile(location: Location(node: node, path: "socket:[\(inode)]"), handle: s, flags: status)
        return try p.descriptors.install(file, closeOnExec: flags & sockCloexec != 0)
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

    /// The socket behind `fd` and its open file (EBADF, or ENOTSOCK for other files).
    @inline(__always)
    static func socket(_ p: LinuxProcess, _ fd: UInt64) throws(LinuxError) -> (OpenFile, any SocketHandle) {
        let file = try p.fd(fd)
        guard let s = file.handle as? any SocketHandle else { throw LinuxError(.ENOTSOCK) }
        return (file, s)
    }

    /// Runs a socket call. A signal ends a wait with ERESTARTSYS (EINTR, or a restart with
    /// SA_RESTART), or with EINTR alone when the socket has a timeout for this direction
    /// (as Linux's sock_intr_errno); a stale interruption runs the call again.
    @inline(__always)
    static func socketCall<T>(restartable: Bool = true, _ body: () throws(Errno) -> T) throws(LinuxError) -> T {
        while true {
            do { return try body() } catch {
                guard error == .interrupted else { throw LinuxError(error) }
                guard let p = Dispatcher.active?.process else { throw LinuxError(.EINTR) }
                try p.checkInterrupted(restartable ? .restartSys : LinuxError(.EINTR))
            }
        }
    }

    // MARK: addresses

    /// move_addr_to_kernel: EINVAL past sockaddr_storage, EFAULT for an unreadable buffer.
    static func loadAddress(_ address: UInt64, length: UInt64) throws(LinuxError) -> SocketAddress {
        let n = Int32(truncatingIfNeeded: length)
        guard n >= 0, Int(n) <= SocketConstants.maxAddressLength else { throw LinuxError(.EINVAL) }
        let bytes = try UserMemory.buffer(address, Int(n), for: .read)
        do { return try SocketAddress(bytes: UnsafeRawBufferPointer(bytes)) } catch { throw LinuxError(error) }
    }

    /// The caller's *addrlen (EFAULT; EINVAL when negative).
    static func loadAddressLength(_ pointer: UInt64) throws(LinuxError) -> Int {
        let len = try UserMemory.load(Int32.self, at: pointer)
        guard len >= 0 else { throw LinuxError(.EINVAL) }
        return Int(len)
    }

    /// move_addr_to_user: at most `room` bytes of `a`, and its real length in *length.
    static func storeAddress(_ a: SocketAddress, at address: UInt64, length: UInt64, room: Int) throws(LinuxError) {
        let n = min(room, a.length)
        if n > 0 {
            let dst = try UserMemory.buffer(address, n, for: .write)
            a.withUnsafeBytes { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        try UserMemory.store(Int32(a.length), at: length)
    }

    static func accept(_ p: LinuxProcess, _ fd: UInt64, address: UInt64, length: UInt64, flags: UInt64) throws(LinuxError) -> Int64 {
        guard flags & ~(sockNonBlock | sockCloexec) == 0 else { throw LinuxError(.EINVAL) }
        let (file, s) = try socket(p, fd)
        let nonBlocking = file.flags.contains(.nonBlocking)
        let (new, peer) = try socketCall(restartable: s.common.receiveTimeout == nil) { () throws(Errno) in
            try s.accept(nonBlocking: nonBlocking)
        }
        // The connection is taken: a bad address buffer drops it (its descriptor never exists).
        let newFD = try install(p, new, flags: flags)
        if address != 0 {
            do throws(LinuxError) {
                let room = try loadAddressLength(length)
                try storeAddress(peer, at: address, length: length, room: room)
            } catch {
                try? p.descriptors.close(newFD)
                throw error
            }
        }
        return Int64(newFD)
    }

    // MARK: options

    static func setOption(_ p: LinuxProcess, fd: UInt64, level: Int32, name: Int32, value: UInt64, length: Int32) throws(LinuxError) -> Int64 {
        let (_, s) = try socket(p, fd)
        guard length >= 0 else { throw LinuxError(.EINVAL) }
        if level == SocketConstants.SOL_SOCKET {
            switch name {
            case soRcvTimeo, soSndTimeo, soRcvTimeoNew, soSndTimeoNew:
                // struct timeval (old_timeval and __kernel_sock_timeval are both 16 bytes here).
                guard length >= 16 else { throw LinuxError(.EINVAL) }
                let sec = try UserMemory.load(Int64.self, at: value), usec = try UserMemory.load(Int64.self, at: value + 8)
                guard usec >= 0, usec < 1_000_000 else { throw LinuxError(Errno(rawValue: 33)) }  // EDOM
                // Negative: no waiting at all; zero: wait forever (sock_set_timeout).
                let timeout: Duration? = sec < 0 ? .zero : (sec == 0 && usec == 0 ? nil : .seconds(sec) + .microseconds(usec))
                if name == soRcvTimeo || name == soRcvTimeoNew { s.common.receiveTimeout = timeout } else { s.common.sendTimeout = timeout }
                return 0
            case soType, soDomain, soProtocol:
                throw LinuxError(.ENOPROTOOPT)  // read-only: sock_setsockopt's default
            default: break
            }
        }
        let buffer = s.copiesInKernel ? try UserMemory.kernelBuffer(value, Int(length)) : try UserMemory.buffer(value, Int(length), for: .read)
        try socketCall { () throws(Errno) in try s.setOption(level: level, name: name, value: UnsafeRawBufferPointer(buffer)) }
        return 0
    }

    static func getOption(_ p: LinuxProcess, fd: UInt64, level: Int32, name: Int32, value: UInt64, length: UInt64) throws(LinuxError) -> Int64 {
        let (_, s) = try socket(p, fd)
        let room = Int(try UserMemory.load(Int32.self, at: length))
        guard room >= 0 else { throw LinuxError(.EINVAL) }
        if level == SocketConstants.SOL_SOCKET {
            var int: Int32?
            var timeout: Duration??
            switch name {
            case soType: int = s.socketType
            case soDomain: int = s.family
            case soProtocol: int = s.protocolNumber
            case soRcvTimeo, soRcvTimeoNew: timeout = .some(s.common.receiveTimeout)
            case soSndTimeo, soSndTimeoNew: timeout = .some(s.common.sendTimeout)
            default: break
            }
            if let int {
                try storeOption(int, at: value, room: room, length: length)
                return 0
            }
            if let timeout {
                let d = timeout ?? .zero
                let (sec, atto) = d.components
                try storeOption((sec, atto / 1_000_000_000_000), at: value, room: room, length: length)
                return 0
            }
        }
        let buffer = s.copiesInKernel ? try UserMemory.kernelBuffer(value, room) : try UserMemory.buffer(value, room, for: .write)
        let full = try socketCall { () throws(Errno) in try s.getOption(level: level, name: name, into: buffer) }
        try UserMemory.store(Int32(min(room, full)), at: length)
        return 0
    }

    /// Stores the first `room` bytes of `v` and that count (sk_getsockopt's truncation).
    static func storeOption<T>(_ v: T, at value: UInt64, room: Int, length: UInt64) throws(LinuxError) {
        let n = min(room, MemoryLayout<T>.size)
        if n > 0 {
            let dst = try UserMemory.buffer(value, n, for: .write)
            withUnsafeBytes(of: v) { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        try UserMemory.store(Int32(n), at: length)
    }

    /// ioctl on a socket: FIONREAD/SIOCINQ, SIOCOUTQ, FIONBIO; the rest to the backend
    /// (interface queries and the like), ENOTTY when it knows none.
    static func socketIoctl(_ p: LinuxProcess, _ file: OpenFile, _ s: any SocketHandle, request: UInt64, argument: UInt64) throws(LinuxError) -> Int64 {
        switch request {
        case SocketConstants.interfaceRequests where s.family != SocketConstants.AF_INET && s.family != SocketConstants.AF_INET6:
            // Interface ioctls are the network namespace's, answered on a socket of any
            // family (Linux's sock_do_ioctl falls to dev_ioctl): glibc's if_nametoindex
            // asks on an AF_UNIX socket. The instance's network is its AF_INET provider's.
            // The address ones (SIOCGIFADDR, DSTADDR, BRDADDR, NETMASK and their SET
            // twins, 0x8915-0x891c) are inet_ioctl's: ENOTTY elsewhere, as Linux says.
            if (0x8915...0x891C).contains(request) { throw LinuxError(.ENOTTY) }
            let provider = try socketCall { () throws(Errno) in try p.sockets.provider(for: SocketConstants.AF_INET) }
            return try socketCall { () throws(Errno) in try provider.interfaceControl(request: request, argument: argument) }
        case 0x541B, 0x5411:  // FIONREAD (SIOCINQ), TIOCOUTQ (SIOCOUTQ)
            _ = try UserMemory.pointer(argument, 4, for: .write)
            let n = try socketCall { () throws(Errno) in request == 0x541B ? try s.bytesReadable() : try s.bytesUnsent() }
            try UserMemory.store(Int32(clamping: n), at: argument)
            return 0
        case 0x5421:  // FIONBIO
            let on = try UserMemory.load(Int32.self, at: argument) != 0
            var flags = file.flags
            if on { flags.insert(.nonBlocking) } else { flags.remove(.nonBlocking) }
            file.flags = flags
            return 0
        default:
            return try socketCall { () throws(Errno) in try s.deviceControl(request: request, argument: argument) }
        }
    }
}
