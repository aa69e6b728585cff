// UnixPromotion.swift: before a fork, a connected AF_UNIX pair of the instance (socketpair,
// or connect+accept inside it) moves into a host socketpair, as pipes move into host pipes,
// so that the processes holding its ends share one kernel object. Bytes waiting in either
// queue go first; afterwards every data call, shutdown, FIONREAD/SIOCOUTQ and readiness go
// to the host socket. Descriptors cannot cross the host edge: a pair with SCM_RIGHTS in
// flight stays the instance's (each process keeps its copy), and SCM_RIGHTS sent on a
// promoted socket fails with EINVAL (HostControl); names and options stay as they were.
import CJunction
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

extension UnixSocket {
    /// What a call that waited on a socket promoted meanwhile throws to its entry point,
    /// which goes on with the host socket (ERESTARTSYS: never seen by the program).
    static let promoted = Errno(rawValue: 512)

    /// Moves `self` and its peer into a host socketpair. The world is stopped (no socket
    /// call runs). Returns false when the pair cannot move (see the header).
    func promotePair(hosts: HostSocketProvider) -> Bool {
        let moved = provider.lock.withLock { () -> (HostSocket, HostSocket)? in
            if host != nil { return nil }
            guard !closed, state == .connected, let other = peer, other.peer === self, !other.closed, other.host == nil,
                  !queue.contains(where: { !$0.rights.isEmpty }), !other.queue.contains(where: { !$0.rights.isEmpty })
            else { return nil }
            var fds: [Int32] = [-1, -1]
            let type = socketType | SocketConstants.SOCK_NONBLOCK | SocketConstants.SOCK_CLOEXEC
            guard fds.withUnsafeMutableBufferPointer({
                cj_host_syscall(53, UInt64(SocketConstants.AF_UNIX), UInt64(UInt32(type)), 0, UInt64(UInt(bitPattern: $0.baseAddress)), 0, 0)
            }) == 0 else { return nil }
            // What waits to be read at each end is sent from the other host end.
            guard Self.refill(queue, through: fds[1], stream: isStream),
                  Self.refill(other.queue, through: fds[0], stream: isStream) else {
                Glibc.close(fds[0]); Glibc.close(fds[1])
                return nil
            }
            guard let mine = try? HostSocket(fd: fds[0], family: SocketConstants.AF_UNIX, type: socketType, provider: hosts) else {
                Glibc.close(fds[0]); Glibc.close(fds[1])
                return nil
            }
            guard let theirs = try? HostSocket(fd: fds[1], family: SocketConstants.AF_UNIX, type: socketType, provider: hosts) else {
                mine.close(); Glibc.close(fds[1])
                return nil
            }
            // Shutdowns already made carry over.
            if sendShut { _ = Glibc.shutdown(fds[0], Int32(SHUT_WR)) }
            if other.sendShut { _ = Glibc.shutdown(fds[1], Int32(SHUT_WR)) }
            for s in [self, other] {
                s.queue.removeAll()
                s.queuedBytes = 0
                s.inFlight = 0
            }
            host = mine
            other.host = theirs
            return (mine, theirs)
        }
        guard let (mine, theirs) = moved, let other = provider.lock.withLock({ peer }) else { return false }
        // Readiness observers (poll, epoll) registered here hear the host socket's events.
        _ = mine.addReadinessObserver { [weak self] r in self?.observers.notify(r) }
        _ = theirs.addReadinessObserver { [weak other] r in other?.observers.notify(r) }
        provider.lock.withLock {
            wakeWaiters()  // they go on with the host socket
            other.wakeWaiters()
        }
        return true
    }

    /// Sends a queue's bytes (one message per record) through a host descriptor without
    /// blocking; false when they do not all fit.
    private static func refill(_ queue: [UnixSegment], through fd: Int32, stream: Bool) -> Bool {
        if stream, queue.reduce(0, { $0 + $1.remaining }) > 0 {
            // A stream's queue can exceed the host's default buffer: make room first.
            var size = Int32(clamping: queue.reduce(0, { $0 + $1.remaining }) * 2)
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, 4)
        }
        for seg in queue where seg.remaining > 0 || !stream {
            let n = seg.bytes.withUnsafeBytes { b in
                Glibc.send(fd, b.baseAddress! + seg.consumed, seg.remaining, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
            if n != seg.remaining { return false }
        }
        return true
    }
}

extension UnixSocketProvider {
    /// Before the world stops for a fork: the host provider promoted sockets are made by
    /// (the instance's own when it has one); nil when `files` hold no AF_UNIX socket.
    func promotionHosts(for files: [OpenFile], inetHosts: HostSocketProvider?) -> HostSocketProvider? {
        guard files.contains(where: { $0.handle is UnixSocket }) else { return nil }
        if let inetHosts { return inetHosts }
        if let own = lock.withLock({ promotedSockets }) { return own }
        let made = HostSocketProvider(runtime: Runtime.current)
        lock.withLock { promotedSockets = made }
        return made
    }

    /// With the world stopped for a fork: promotes every connected pair both of whose ends
    /// are among `files` (a pair with an end elsewhere, in flight or relayed to the host,
    /// stays). Returns whether some instance socket stays unshared.
    func promotePairs(in files: [OpenFile], hosts: HostSocketProvider) -> Bool {
        let sockets = files.compactMap { $0.handle as? UnixSocket }
        let ids = Set(sockets.map(ObjectIdentifier.init))
        var unshared = false
        for s in sockets {
            let (promoted, peer, state) = lock.withLock { (s.host != nil, s.peer, s.state) }
            if promoted { continue }
            if let peer, ids.contains(ObjectIdentifier(peer)), s.promotePair(hosts: hosts) { continue }
            if state == .connected || state == .listening || s.isDatagram { unshared = true }
        }
        return unshared
    }

    /// In a forked child: the reactors of this provider's own host sockets are rebuilt
    /// on the child's runtime, and every promoted socket joins its reactor again.
    func afterFork(runtime: Runtime, files: [OpenFile]) {
        if let own = lock.withLock({ promotedSockets }) { own.reactors.rebuild(runtime: runtime) }
        for f in files {
            if let h = (f.handle as? UnixSocket).flatMap({ s in lock.withLock { s.host } }) { h.adoptAfterFork() }
        }
    }
}
