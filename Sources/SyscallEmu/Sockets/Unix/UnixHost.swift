// UnixHost.swift: AF_UNIX sockets across the instance's edge. A name on a HostFS path
// that no instance socket holds is a host socket file: connect makes a host socket
// connected to it and relays bytes between it and an instance socket pair. A socket
// bound below an exported host directory (junction --unix-export DIR) is bound on the
// host too: host programs connect to it, and each host connection arrives at accept as
// a relayed connection. One OS thread per instance relays, on epoll, never parking a
// kthread; descriptors do not cross the edge (the host's are closed, ours not sent).
import CJunction
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// The relay between instance sockets and host sockets of one provider.
final class UnixHostBridge: @unchecked Sendable {
    // Tunables: bytes moved per relay step and direction.
    static let chunk = 65536

    /// Host directory prefixes (resolved, no trailing slash) whose sockets are exported.
    let exports: [String]
    private let lock = SpinLock()
    private var epollFD: Int32 = -1
    private var wakeFD: Int32 = -1
    private var started = false
    /// Exported listeners by host descriptor, and relayed connections by host descriptor.
    private var listeners: [Int32: ExportedListener] = [:]
    private var exportedByOwner: [ObjectIdentifier: Int32] = [:]
    private var links: [Int32: Link] = [:]

    struct ExportedListener {
        weak var socket: UnixSocket?
    }

    /// One relayed connection: the host socket and the instance socket that stands for
    /// it (its peer is the program's socket), with the bytes in transit each way.
    final class Link {
        let hostFD: Int32
        let end: UnixSocket
        var observer = 0
        var toInstance: [UInt8] = []
        var toHost: [UInt8] = []
        var hostEOF = false, instanceEOF = false, hostWriteShut = false
        init(hostFD: Int32, end: UnixSocket) {
            self.hostFD = hostFD
            self.end = end
        }
    }

    init(exports: [String]) {
        self.exports = exports.map { e in
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let r = realpath(e, &buf) != nil ? String(cString: buf) : e
            return r.count > 1 && r.hasSuffix("/") ? String(r.dropLast()) : r
        }
    }

    // MARK: exports

    /// The host path of `path` when it lies in an exported directory.
    func exportedHostPath(_ path: String, in fs: FileSystemContext) -> String? {
        guard !exports.isEmpty, let hp = HostPaths.hostPath(of: path, in: fs) else { return nil }
        for e in exports where hp == e || hp.hasPrefix(e == "/" ? "/" : e + "/") { return hp }
        return nil
    }

    /// bind on an exported path: a host socket of the same type bound there (the host's
    /// bind makes the socket inode; EADDRINUSE when the name exists).
    func bindExported(_ s: UnixSocket, hostPath: String) throws(Errno) {
        let fd = try SystemCall.retrying { Glibc.socket(AF_UNIX, s.socketType | SocketConstants.SOCK_NONBLOCK | SocketConstants.SOCK_CLOEXEC, 0) }.get()
        var ok = false
        defer { if !ok { Glibc.close(fd) } }
        try Self.withAddress(hostPath) { (a, len) throws(Errno) in
            _ = try SystemCall.retrying { Glibc.bind(fd, a, len) }.get()
        }
        ok = true
        lock.withLock { exportedByOwner[ObjectIdentifier(s)] = fd }
    }

    /// listen on an exported socket: the host socket listens and the relay accepts.
    func listen(_ s: UnixSocket, backlog: Int) {
        guard let fd = lock.withLock({ exportedByOwner[ObjectIdentifier(s)] }) else { return }
        _ = Glibc.listen(fd, Int32(clamping: max(backlog, 1)))
        let first = lock.withLock { () -> Bool in
            let isNew = listeners[fd] == nil
            listeners[fd] = ExportedListener(socket: s)
            return isNew
        }
        if first, start() { watch(fd, events: UInt32(EPOLLIN.rawValue)) }
    }

    /// The instance socket closed: its host socket goes (the host file stays, as a
    /// closed Linux socket leaves its name).
    func closed(_ s: UnixSocket) {
        let fd: Int32? = lock.withLock {
            guard let fd = exportedByOwner.removeValue(forKey: ObjectIdentifier(s)) else { return nil }
            listeners[fd] = nil
            return fd
        }
        if let fd {
            if epollFD >= 0 { _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil) }
            Glibc.close(fd)
        }
    }

    // MARK: connecting out

    /// connect to a host socket file: the program's socket is connected to a relay end.
    func connect(_ s: UnixSocket, toHostPath hostPath: String, nonBlocking: Bool) throws(Errno) {
        let fd = try SystemCall.retrying { Glibc.socket(AF_UNIX, s.socketType | SocketConstants.SOCK_NONBLOCK | SocketConstants.SOCK_CLOEXEC, 0) }.get()
        var ok = false
        defer { if !ok { Glibc.close(fd) } }
        let deadline = UnixSocketProvider.deadline(s.common.sendTimeout)
        while true {
            // Not retried on EINTR (a connect in progress would then say EALREADY).
            let r = Self.withAddress(hostPath) { (a, len) -> Result<Int32, Errno> in SystemCall.result(raw: Glibc.connect(fd, a, len) == 0 ? 0 : -errno) }
            guard case .failure(let e) = r else { break }
            // A full host backlog: wait in small steps, as a blocking connect would.
            guard e == .wouldBlock, !nonBlocking, UThread.isInUThread else { throw e }
            if let deadline, MonotonicInstant.now >= deadline { throw .wouldBlock }
            if UThread.sleep(for: .milliseconds(1)) == .interrupted { throw .interrupted }
        }
        let end = UnixSocket(provider: s.provider, type: s.socketType)
        let creds = Self.peerCredentials(fd)
        try s.locked { (touched: inout [UnixSocket]) throws(Errno) in
            switch s.state {
            case .unconnected: break
            case .connected: throw .socketIsConnected
            case .listening: throw .invalidArgument
            }
            end.name = .path(hostPath)
            end.connectPair(s, credentials: s.provider.credentials)
            s.connectPair(end, credentials: creds)
            touched.append(s)
        }
        ok = true
        relay(hostFD: fd, end: end)
    }

    /// struct ucred of a host socket's peer.
    static func peerCredentials(_ fd: Int32) -> UnixCredentials {
        var c = (Int32(0), UInt32(0), UInt32(0))  // struct ucred
        var len = socklen_t(12)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) == 0 else { return .none }
        return UnixCredentials(pid: c.0, uid: c.1, gid: c.2)
    }

    static func withAddress<R, E: Error>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R) throws(E) -> R {
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8.prefix(107))
        withUnsafeMutableBytes(of: &a.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
        }
        let len = socklen_t(2 + bytes.count + 1)
        return try withUnsafePointer(to: &a) { p throws(E) -> R in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp throws(E) -> R in try body(sp, len) }
        }
    }

    // MARK: the relay thread

    /// Starts relaying `hostFD` against `end`.
    func relay(hostFD: Int32, end: UnixSocket) {
        guard start() else {
            Glibc.close(hostFD)
            end.close()
            return
        }
        let link = Link(hostFD: hostFD, end: end)
        let wake = wakeFD
        link.observer = end.addReadinessObserver { _ in var one: UInt64 = 1; _ = Glibc.write(wake, &one, 8) }
        lock.withLock { links[hostFD] = link }
        watch(hostFD, events: UInt32(EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue))
        kick()
    }

    private func watch(_ fd: Int32, events: UInt32) {
        var ev = epoll_event()
        ev.events = events
        ev.data.fd = fd
        _ = epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &ev)
    }

    private func kick() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    /// Starts the relay thread once; false when the host refuses epoll or a thread.
    private func start() -> Bool {
        lock.withLock { () -> Bool in
            if started { return epollFD >= 0 }
            started = true
            epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
            wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
            guard epollFD >= 0, wakeFD >= 0 else { return false }
            var ev = epoll_event()
            ev.events = UInt32(EPOLLIN.rawValue)
            ev.data.fd = wakeFD
            _ = epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &ev)
            var thread = pthread_t()
            let box = Unmanaged.passRetained(self).toOpaque()
            let rc = pthread_create(&thread, nil, { arg in
                let bridge = Unmanaged<UnixHostBridge>.fromOpaque(arg!).takeRetainedValue()
                var all = sigset_t()
                sigfillset(&all)
                pthread_sigmask(SIG_BLOCK, &all, nil)
                bridge.run()
                return nil
            }, box)
            if rc != 0 { Unmanaged<UnixHostBridge>.fromOpaque(box).release(); return false }
            pthread_detach(thread)
            return true
        }
    }

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        while true {
            guard case .success(let n) = SystemCall.retrying({ epoll_wait(epollFD, &events, Int32(events.count), -1) }) else { return }
            for i in 0..<Int(n) {
                let fd = events[i].data.fd
                if fd == wakeFD {
                    var v: UInt64 = 0
                    _ = Glibc.read(wakeFD, &v, 8)
                } else if let l = lock.withLock({ listeners[fd] }) {
                    acceptAll(fd, into: l)
                }
            }
            // Every relayed connection is stepped after any event: few, and cheap.
            for link in lock.withLock({ Array(links.values) }) { step(link) }
        }
    }

    private func acceptAll(_ fd: Int32, into l: ExportedListener) {
        while true {
            let c = Glibc.accept(fd, nil, nil)
            if c < 0 { return }
            _ = fcntl(c, F_SETFL, O_NONBLOCK)
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)
            guard let listener = l.socket, let end = listener.acceptRelayed(peer: Self.peerCredentials(c)) else {
                Glibc.close(c)
                continue
            }
            relay(hostFD: c, end: end)
        }
    }

    /// Moves what it can each way; closes the link when both directions are done.
    private func step(_ link: Link) {
        var buf = [UInt8](repeating: 0, count: Self.chunk)
        // Host to instance.
        while !link.hostEOF || !link.toInstance.isEmpty {
            if link.toInstance.isEmpty {
                let r = buf.withUnsafeMutableBytes { b in
                    SystemCall.retrying { Glibc.recv(link.hostFD, b.baseAddress, b.count, Int32(MSG_DONTWAIT)) }
                }
                if case .failure(.wouldBlock) = r { break }
                let n = (try? r.get()) ?? 0
                if n <= 0 {
                    link.hostEOF = true
                    try? link.end.shutdown(SocketConstants.SHUT_WR)
                    break
                }
                link.toInstance = Array(buf[0..<n])
            }
            let sent = link.toInstance.withUnsafeBytes { b -> Int? in
                try? link.end.write(from: b, at: 0, nonBlocking: true)
            }
            guard let sent else {
                if link.end.readiness.contains(.error) || link.end.peerGone { link.toInstance = []; link.hostEOF = true }
                break
            }
            link.toInstance.removeFirst(sent)
        }
        // Instance to host.
        while !link.instanceEOF || !link.toHost.isEmpty {
            if link.toHost.isEmpty {
                let n = buf.withUnsafeMutableBytes { b -> Int? in try? link.end.read(into: b, at: 0, nonBlocking: true) }
                guard let n else { break }
                if n == 0 {
                    link.instanceEOF = true
                    break
                }
                link.toHost = Array(buf[0..<n])
            }
            let r = link.toHost.withUnsafeBytes { b in
                SystemCall.retrying { Glibc.send(link.hostFD, b.baseAddress, b.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            }
            if case .failure(let e) = r {
                if e != .wouldBlock {
                    link.toHost = []
                    link.instanceEOF = true
                }
                break
            }
            link.toHost.removeFirst((try? r.get()) ?? 0)
        }
        if link.instanceEOF && link.toHost.isEmpty && !link.hostWriteShut {
            link.hostWriteShut = true
            Glibc.shutdown(link.hostFD, Int32(SHUT_WR))
        }
        if link.hostEOF && link.hostWriteShut {
            lock.withLock { _ = links.removeValue(forKey: link.hostFD) }
            link.end.removeReadinessObserver(link.observer)
            _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, link.hostFD, nil)
            Glibc.close(link.hostFD)
            link.end.close()
        }
    }
}

extension UnixSocket {
    /// The other end closed (lock taken).
    var peerGone: Bool { provider.lock.withLock { peer == nil || peer!.closed } }

    /// A host program connected to this exported listener: an embryo whose peer is a
    /// relay end, queued for accept (nil once the listener stopped listening).
    func acceptRelayed(peer hostCredentials: UnixCredentials) -> UnixSocket? {
        let end = UnixSocket(provider: provider, type: socketType)
        let ok = locked { (touched: inout [UnixSocket]) -> Bool in
            guard state == .listening, !closed else { return false }
            let embryo = UnixSocket(provider: provider, type: socketType, lockHeld: true)
            embryo.state = .connected
            embryo.isEmbryo = true
            embryo.name = name
            embryo.peer = end
            embryo.peerCredentials = hostCredentials
            end.state = .connected
            end.peer = embryo
            end.peerCredentials = provider.credentials
            acceptQueue.append(embryo)
            touched.append(self)
            return true
        }
        if !ok { end.close() }
        return ok ? end : nil
    }
}
