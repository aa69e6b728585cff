// UnixSocket.swift: one AF_UNIX socket: its state (kept under the provider's lock), the
// FileHandle half (read/write as recv/send, readiness for poll/epoll/select, close),
// bind with filesystem, abstract and autobind names, getsockname/getpeername, shutdown,
// FIONREAD/SIOCOUTQ. Connections are in UnixStream.swift, datagrams in UnixDatagram.swift,
// socket options in UnixOptions.swift.
import FileSystem
import SystemPackage
import UThreads

/// One queued message (a datagram or seqpacket record) or stretch of stream bytes, with
/// what was sent along with it.
struct UnixSegment {
    var bytes: [UInt8]
    /// Bytes already read from a stream segment.
    var consumed = 0
    var rights: [OpenFile]
    var credentials: UnixCredentials
    /// The sender's name when it sent (recvfrom reports it); nil when unnamed.
    var sender: UnixName?
    /// The socket whose send buffer these bytes count against.
    weak var owner: UnixSocket?
    var remaining: Int { bytes.count - consumed }
}

final class UnixSocket: SocketHandle, @unchecked Sendable {
    enum State { case unconnected, listening, connected }
    enum BoundKey { case inode(UnixSocketProvider.InodeKey), abstract([UInt8]) }

    let provider: UnixSocketProvider
    let socketType: Int32
    var family: Int32 { SocketConstants.AF_UNIX }
    var protocolNumber: Int32 { 0 }
    let common = SocketCommon()
    /// The socket's inode (what /proc/self/fd/N and /proc/net/unix name).
    let node = AnonymousNode.socket()
    let observers = ReadinessObservers()

    // Guarded by provider.lock.
    var name: UnixName?
    var boundKey: BoundKey?
    var state = State.unconnected
    /// Stream/seqpacket: the other end. Datagram: the connected destination.
    var peer: UnixSocket?
    var peerCredentials: UnixCredentials?
    var backlog = 0
    var acceptQueue: [UnixSocket] = []
    var queue: [UnixSegment] = []
    var queuedBytes = 0
    /// Bytes this socket sent that wait in a receiver's queue (SIOCOUTQ, SO_SNDBUF).
    var inFlight = 0
    var sendShut = false
    var receiveShut = false
    var pendingError: Errno?
    var sendBuffer = UnixSocketProvider.defaultBuffer
    var receiveBuffer = UnixSocketProvider.defaultBuffer
    var passCredentials = false
    /// SOL_SOCKET flags stored and reported as given (SO_REUSEADDR, SO_KEEPALIVE...).
    var plainOptions: [Int32: Int32] = [:]
    var closed = false
    /// Queued on a listener, not yet accepted.
    var isEmbryo = false
    var waiters: [UThreadRef] = []
    /// Datagram senders waiting for room in this socket's queue.
    var blockedSenders: [UnixSocket] = []
    /// Set once, before a fork, with the world stopped: the host socket this one moved
    /// into (UnixPromotion.swift); every data call then goes there.
    var host: HostSocket?

    init(provider: UnixSocketProvider, type: Int32, lockHeld: Bool = false) {
        self.provider = provider
        socketType = type
        if lockHeld { provider.register(self) } else { provider.lock.withLock { provider.register(self) } }
    }

    // No close() in deinit: the last reference to a socket may go while the provider's
    // lock is held. Sockets close when their last descriptor does (OpenFile), or
    // explicitly (embryos, relay ends). References dropped under the lock are moved to
    // the `touched` list, released after it.

    var isStream: Bool { socketType == SocketConstants.SOCK_STREAM }
    var isDatagram: Bool { socketType == SocketConstants.SOCK_DGRAM }
    var isConnectionOriented: Bool { !isDatagram }

    /// socketpair: both ends connected (lock held).
    func connectPair(_ other: UnixSocket, credentials: UnixCredentials) {
        state = .connected
        peer = other
        peerCredentials = credentials
    }

    // MARK: waking (lock held)

    /// Wakes every parked caller of this socket; they re-check their condition.
    func wakeWaiters() {
        for w in waiters { w.unpark() }
        waiters.removeAll(keepingCapacity: true)
    }

    func enroll() { waiters.append(UThread.current) }

    func withdraw() {
        let me = UThread.current
        waiters.removeAll { $0 == me }
    }

    /// Runs `body` under the lock; afterwards wakes and notifies the sockets it touched.
    func locked<R, E: Error>(_ body: (inout [UnixSocket]) throws(E) -> R) throws(E) -> R {
        var touched: [UnixSocket] = []
        let r: R
        do {
            r = try provider.lock.withLock { () throws(E) -> R in
                let r = try body(&touched)
                for s in touched { s.wakeWaiters() }
                return r
            }
        } catch {
            UnixSocket.notify(touched)
            throw error
        }
        UnixSocket.notify(touched)
        return r
    }

    static func notify(_ touched: [UnixSocket]) {
        var seen = Set<ObjectIdentifier>()
        for s in touched where seen.insert(ObjectIdentifier(s)).inserted { s.observers.notify(s.readiness) }
    }

    // MARK: FileHandle

    var isSeekable: Bool { false }

    func size() throws(Errno) -> Int64 { 0 }

    var readiness: Readiness {
        if let h = provider.lock.withLock({ host }) { return h.readiness }
        return provider.lock.withLock { currentReadiness }
    }

    /// POLLRDHUP: the other end will send no more.
    static let readHangUp = Readiness(rawValue: 0x2000)

    /// Linux's unix_poll (stream) and unix_dgram_poll (datagram, seqpacket). Lock held.
    var currentReadiness: Readiness {
        var r: Readiness = []
        if pendingError != nil { r.insert(.error) }
        if sendShut && receiveShut { r.insert(.hangUp) }
        if receiveShut { r.insert(UnixSocket.readHangUp) }
        if receiveShut || !queue.isEmpty || (state == .listening && !acceptQueue.isEmpty) { r.insert(.readable) }
        if isConnectionOriented && state == .unconnected { r.insert(.hangUp) }
        var writable = state != .listening && inFlight * 4 <= sendBuffer
        if writable, isDatagram, let other = peer, other.peer !== self, other.datagramQueueFull { writable = false }
        if writable { r.insert(.writable) }
        return r
    }

    func addReadinessObserver(_ o: @escaping @Sendable (Readiness) -> Void) -> Int { observers.add(o) }
    func removeReadinessObserver(_ t: Int) { observers.remove(t) }

    /// The last descriptor went: the name is released (its file stays), the peer sees
    /// end of file (ECONNRESET when this end had unread data), queued connections and
    /// in-flight descriptors are dropped.
    func close() {
        provider.lock.withLock { host }?.close()
        var released: [UnixSegment] = []
        var embryos: [UnixSocket] = []
        locked { touched in
            if closed { return }
            closed = true
            provider.forget(self)
            let hadUnread = !queue.isEmpty || isEmbryo
            if let other = peer, isConnectionOriented {
                other.sendShut = true
                other.receiveShut = true
                if hadUnread { other.pendingError = .connectionReset }
                touched.append(other)
            }
            if let other = peer {
                releaseInFlight(to: other, touched: &touched)
                touched.append(other)
            }
            peer = nil
            for i in queue.indices { queue[i].owner.map { $0.inFlight -= queue[i].remaining; touched.append($0) } }
            released = queue
            queue.removeAll()
            queuedBytes = 0
            embryos = acceptQueue
            acceptQueue.removeAll()
            state = .unconnected
            sendShut = true
            receiveShut = true
            touched.append(self)
        }
        provider.host.closed(self)
        for e in embryos { e.close() }
        _ = released  // descriptors in flight close here, outside the lock
    }

    /// Drops the accounting of bytes this socket left in `other`'s queue (lock held):
    /// they stay readable, but no longer hold this socket's send buffer.
    private func releaseInFlight(to other: UnixSocket, touched: inout [UnixSocket]) {
        for i in other.queue.indices where other.queue[i].owner === self { other.queue[i].owner = nil }
        inFlight = 0
    }

    // MARK: names

    func bind(_ address: SocketAddress) throws(Errno) {
        // Linux's order: a filesystem name is made before the socket is checked (an
        // existing name is EADDRINUSE even for a bound socket); an abstract name on a
        // bound socket is EINVAL; autobind of a bound socket does nothing.
        let parsed = try UnixName.parse(address)
        switch parsed {
        case nil:
            locked { (_: inout [UnixSocket]) in
                guard name == nil else { return }
                let n = provider.autobindName(for: self)
                if case .abstract(let b) = n { boundKey = .abstract(b) }
                name = n
            }
        case .abstract(let bytes)?:
            try locked { (_: inout [UnixSocket]) throws(Errno) in
                guard name == nil else { throw .invalidArgument }
                try provider.claimAbstract(bytes, for: self)
                boundKey = .abstract(bytes)
                name = .abstract(bytes)
            }
        case .path(let path)?:
            // The socket inode: EADDRINUSE when the name exists (Linux turns mknod's
            // EEXIST into it); ENOENT, ENOTDIR, EACCES from the walk. Below an exported
            // host directory the host's own bind makes it.
            let key: UnixSocketProvider.InodeKey
            do {
                let node: any Node
                if let hostPath = provider.host.exportedHostPath(path, in: provider.fs) {
                    try provider.host.bindExported(self, hostPath: hostPath)
                    node = try provider.fs.resolve(path, followSymlinks: false).node
                } else {
                    node = try provider.fs.makeNode(path, kind: .socket, mode: 0o777)
                }
                let st = try node.status()
                key = .init(device: st.device, inode: st.inode)
            } catch .fileExists {
                throw .addressInUse
            }
            let ok = locked { (_: inout [UnixSocket]) -> Bool in
                guard name == nil else { return false }
                provider.claimInode(key, for: self)
                boundKey = .inode(key)
                name = .path(path)
                return true
            }
            guard ok else {
                // Bound meanwhile by another thread: the name made here goes again.
                provider.host.closed(self)
                try? provider.fs.unlink(path)
                throw .invalidArgument
            }
        }
    }

    func localAddress() throws(Errno) -> SocketAddress {
        provider.lock.withLock { name?.address ?? .unixUnnamed }
    }

    func peerAddress() throws(Errno) -> SocketAddress {
        try provider.lock.withLock { () throws(Errno) -> SocketAddress in
            guard let other = peer, state == .connected || isDatagram else { throw .socketNotConnected }
            return other.name?.address ?? .unixUnnamed
        }
    }

    /// Autobinds when SO_PASSCRED asks for it before a connect or send (lock held).
    func autobindIfPassingCredentials() {
        guard passCredentials, name == nil else { return }
        let n = provider.autobindName(for: self)
        if case .abstract(let b) = n { boundKey = .abstract(b) }
        name = n
    }

    // MARK: shutdown, queue sizes

    func shutdown(_ how: Int32) throws(Errno) {
        guard (SocketConstants.SHUT_RD...SocketConstants.SHUT_RDWR).contains(how) else { throw .invalidArgument }
        if let h = provider.lock.withLock({ host }) { try h.shutdown(how) }
        try locked { (touched: inout [UnixSocket]) throws(Errno) in
            let rd = how != SocketConstants.SHUT_WR, wr = how != SocketConstants.SHUT_RD
            if rd { receiveShut = true }
            if wr { sendShut = true }
            touched.append(self)
            // A connection's other end sees the mirror image (Linux's unix_shutdown).
            if isConnectionOriented, state == .connected, let other = peer {
                if rd { other.sendShut = true }
                if wr { other.receiveShut = true }
                touched.append(other)
            }
        }
    }

    func bytesReadable() throws(Errno) -> Int {
        if let h = provider.lock.withLock({ host }) { return try h.bytesReadable() }
        return try provider.lock.withLock { () throws(Errno) -> Int in
            if state == .listening { throw .invalidArgument }
            if isDatagram { return queue.first?.bytes.count ?? 0 }
            return queuedBytes
        }
    }

    func bytesUnsent() throws(Errno) -> Int {
        if let h = provider.lock.withLock({ host }) { return try h.bytesUnsent() }
        return try provider.lock.withLock { () throws(Errno) -> Int in
            if state == .listening { throw .invalidArgument }
            return inFlight
        }
    }

    // MARK: receive queue (lock held)

    func enqueue(_ s: UnixSegment, from sender: UnixSocket) {
        var seg = s
        seg.owner = sender
        sender.inFlight += seg.bytes.count
        queuedBytes += seg.bytes.count
        queue.append(seg)
    }

    /// Takes `n` bytes' accounting off the front segment's owner.
    func consumed(_ n: Int, of index: Int, touched: inout [UnixSocket]) {
        queuedBytes -= n
        if let owner = queue[index].owner {
            owner.inFlight -= n
            touched.append(owner)
        }
    }

    /// Whether a datagram receiver's queue is full (Linux's unix_recvq_full).
    var datagramQueueFull: Bool { queue.count > UnixSocketProvider.maxDatagramQueue }
}
