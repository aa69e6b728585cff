// UnixDatagram.swift: AF_UNIX messages: SOCK_DGRAM (sendto a name, recvfrom reports the
// sender, connect and AF_UNSPEC disconnect, ECONNREFUSED once the peer is gone, a queue
// of net.unix.max_dgram_qlen) and SOCK_SEQPACKET records on a connection (EOF when the
// other end goes). Boundaries are kept; a short buffer truncates (MSG_TRUNC).
import FileSystem
import SystemPackage
import UThreads

extension UnixSocket {
    func connectDatagram(_ address: SocketAddress) throws(Errno) {
        if address.family == SocketConstants.AF_UNSPEC && address.length >= 2 {
            // POSIX: AF_UNSPEC dissolves the association.
            locked { touched in
                if let old = peer { touched.append(old) }
                peer = nil
                state = .unconnected
                touched.append(self)
            }
            return
        }
        guard let n = try UnixName.parse(address) else { throw .invalidArgument }
        provider.lock.withLock { autobindIfPassingCredentials() }
        guard case .local(let target) = try provider.find(n, type: socketType) else { throw .connectionRefused }
        try locked { (touched: inout [UnixSocket]) throws(Errno) in
            if target.closed { throw .connectionRefused }
            if let p = target.peer, p !== self { throw .notPermitted }
            if let old = peer { touched.append(old) }
            peer = target
            state = .connected
            touched.append(self)
        }
    }

    func sendRecord(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, to address: SocketAddress?,
                    extras: UnixSocketProvider.SendExtras, nonBlocking: Bool) throws(Errno) -> Int {
        let total = buffers.reduce(0) { $0 + $1.count }
        try provider.lock.withLock { () throws(Errno) in
            if !isDatagram {
                if let e = pendingError {
                    pendingError = nil
                    throw e
                }
                guard state == .connected else { throw .socketNotConnected }
            } else if address == nil, peer == nil {
                throw .socketNotConnected
            }
        }
        var explicit: UnixSocket?
        if let address {
            guard let n = try UnixName.parse(address) else { throw .invalidArgument }
            provider.lock.withLock { autobindIfPassingCredentials() }
            if total > provider.lock.withLock({ sendBuffer }) - 32 { throw .messageTooLong }
            guard case .local(let s) = try provider.find(n, type: socketType) else { throw .connectionRefused }
            explicit = s
        } else {
            provider.lock.withLock { autobindIfPassingCredentials() }
            if total > provider.lock.withLock({ sendBuffer }) - 32 { throw .messageTooLong }
        }
        var gather = Gather(buffers)
        let bytes = gather.take(total)
        let creds = extras.credentials ?? provider.credentials
        let deadline = UnixSocketProvider.deadline(common.sendTimeout)
        while true {
            let sent = try locked { (touched: inout [UnixSocket]) throws(Errno) -> Bool in
                guard let other = explicit ?? peer else { throw .socketNotConnected }
                if sendShut { throw .brokenPipe }
                if inFlight >= sendBuffer {
                    if nonBlocking { throw .wouldBlock }
                    enroll()
                    return false
                }
                if let p = other.peer, p !== self, !other.closed { throw .notPermitted }
                if other.closed {
                    touched.append(other)
                    if explicit == nil {
                        peer = nil
                        state = .unconnected
                    }
                    throw .connectionRefused
                }
                if other.receiveShut { throw .brokenPipe }
                if other.peer !== self && other.datagramQueueFull {
                    if nonBlocking { throw .wouldBlock }
                    other.blockedSenders.append(self)
                    enroll()
                    return false
                }
                other.enqueue(UnixSegment(bytes: bytes, rights: extras.rights, credentials: creds, sender: name), from: self)
                touched.append(other)
                return true
            }
            if sent { return total }
            try waitOutcome(provider.park(until: deadline))
        }
    }

    func receiveRecord(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, flags: MessageFlags,
                       nonBlocking: Bool) throws(Errno) -> ReceivedMessage {
        let total = buffers.reduce(0) { $0 + $1.count }
        let deadline = UnixSocketProvider.deadline(common.receiveTimeout)
        var released: [UnixSegment] = []
        defer { _ = released }  // descriptors of a consumed message close outside the lock
        while true {
            let got = try locked { (touched: inout [UnixSocket]) throws(Errno) -> ReceivedMessage? in
                if !isDatagram && state != .connected { throw .socketNotConnected }
                if flags.contains(.outOfBand) { throw .notSupported }
                if let seg = queue.first {
                    var scatter = Scatter(buffers)
                    seg.bytes.withUnsafeBytes { scatter.put($0) }
                    var r = ReceivedMessage(count: flags.contains(.truncated) ? seg.bytes.count : scatter.copied)
                    if seg.bytes.count > total { r.flags.insert(.truncated) }
                    r.address = seg.sender?.address ?? SocketAddress()
                    if passCredentials {
                        let c = seg.credentials
                        r.control.append(.credentials(pid: c.pid, uid: c.uid, gid: c.gid))
                    }
                    if !seg.rights.isEmpty { r.control.append(.rights(seg.rights)) }
                    if !flags.contains(.peek) {
                        consumed(seg.bytes.count, of: 0, touched: &touched)
                        released.append(queue.removeFirst())
                        touched.append(contentsOf: blockedSenders)
                        blockedSenders.removeAll()
                    }
                    return r
                }
                if let e = pendingError {
                    pendingError = nil
                    throw e
                }
                if receiveShut && (!isDatagram || !nonBlocking) { return ReceivedMessage(count: 0, address: SocketAddress()) }
                if nonBlocking { throw .wouldBlock }
                enroll()
                return nil
            }
            if let got { return got }
            try waitOutcome(provider.park(until: deadline))
        }
    }
}
