// UnixStream.swift: AF_UNIX connections: listen with a backlog, connect (an embryo
// socket queued on the listener at once, as Linux does), accept, and the byte stream of
// SOCK_STREAM: sends split to the send buffer, reads that join sends unless credentials
// differ and stop after a message carrying descriptors, MSG_PEEK, MSG_WAITALL.
import FileSystem
import SystemPackage
import UThreads

extension UnixSocket {
    func listen(backlog requested: Int32) throws(Errno) {
        guard isConnectionOriented else { throw .notSupported }
        try locked { (touched: inout [UnixSocket]) throws(Errno) in
            guard name != nil, state != .connected else { throw .invalidArgument }
            // Linux: (unsigned)backlog > somaxconn is somaxconn.
            let b = UInt32(bitPattern: requested)
            backlog = b > UInt32(UnixSocketProvider.maxBacklog) ? UnixSocketProvider.maxBacklog : Int(b)
            if state != .listening {
                state = .listening
                peerCredentials = provider.credentials
            }
            touched.append(self)
        }
        provider.host.listen(self, backlog: provider.lock.withLock { backlog })
    }

    func accept(nonBlocking: Bool) throws(Errno) -> (socket: any SocketHandle, peer: SocketAddress) {
        guard isConnectionOriented else { throw .notSupported }
        let deadline = UnixSocketProvider.deadline(common.receiveTimeout)
        while true {
            let got = try locked { (touched: inout [UnixSocket]) throws(Errno) -> (UnixSocket, SocketAddress)? in
                guard state == .listening else { throw .invalidArgument }
                if acceptQueue.isEmpty {
                    if nonBlocking { throw .wouldBlock }
                    enroll()
                    return nil
                }
                let s = acceptQueue.removeFirst()
                s.isEmbryo = false
                touched.append(self)  // a connect waiting for backlog room
                return (s, s.peer?.name?.address ?? .unixUnnamed)
            }
            if let got { return (got.0, got.1) }
            try waitOutcome(provider.park(until: deadline))
        }
    }

    /// After a park: EINTR for a signal, EAGAIN past SO_RCVTIMEO/SO_SNDTIMEO.
    func waitOutcome(_ o: WaitOutcome) throws(Errno) {
        if provider.lock.withLock({ withdraw(); return host }) != nil { throw UnixSocket.promoted }
        switch o {
        case .woken: return
        case .interrupted: throw .interrupted
        case .timedOut: throw .wouldBlock
        }
    }

    func connect(_ address: SocketAddress, nonBlocking: Bool) throws(Errno) {
        if isDatagram { return try connectDatagram(address) }
        guard let target = try UnixName.parse(address) else { throw .invalidArgument }
        provider.lock.withLock { autobindIfPassingCredentials() }
        let found = try provider.find(target, type: socketType)
        guard case .local(let listener) = found else {
            guard case .host(let hostPath) = found else { return }
            return try provider.host.connect(self, toHostPath: hostPath, nonBlocking: nonBlocking)
        }
        let deadline = UnixSocketProvider.deadline(common.sendTimeout)
        while true {
            let done = try locked { (touched: inout [UnixSocket]) throws(Errno) -> Bool in
                guard !listener.closed, listener.state == .listening, !listener.receiveShut else { throw .connectionRefused }
                if listener.acceptQueue.count > listener.backlog {
                    if nonBlocking { throw .wouldBlock }
                    listener.enroll()
                    return false
                }
                switch state {
                case .unconnected: break
                case .connected: throw .socketIsConnected
                case .listening: throw .invalidArgument
                }
                let embryo = UnixSocket(provider: provider, type: socketType, lockHeld: true)
                embryo.state = .connected
                embryo.isEmbryo = true
                embryo.peer = self
                embryo.name = listener.name
                embryo.peerCredentials = provider.credentials
                peer = embryo
                peerCredentials = listener.peerCredentials
                state = .connected
                listener.acceptQueue.append(embryo)
                touched.append(listener)
                touched.append(self)
                return true
            }
            if done { return }
            provider.lock.withLock { listener.waiters.append(UThread.current) }
            let o = provider.park(until: deadline)
            provider.lock.withLock {
                let me = UThread.current
                listener.waiters.removeAll { $0 == me }
            }
            switch o {
            case .woken: continue
            case .interrupted: throw .interrupted
            case .timedOut: throw .wouldBlock
            }
        }
    }

    // MARK: send and receive, by type

    func send(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, to address: SocketAddress?,
              control: [ControlMessage], flags: MessageFlags, nonBlocking: Bool) throws(Errno) -> Int {
        if let h = provider.lock.withLock({ host }) {
            return try h.send(buffers, to: address, control: control, flags: flags, nonBlocking: nonBlocking)
        }
        do {
            return try sendHere(buffers, to: address, control: control, flags: flags, nonBlocking: nonBlocking)
        } catch {
            // Moved to the host while this call waited: it goes on there.
            guard error == UnixSocket.promoted, let h = provider.lock.withLock({ host }) else { throw error }
            return try h.send(buffers, to: address, control: control, flags: flags, nonBlocking: nonBlocking)
        }
    }

    private func sendHere(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, to address: SocketAddress?,
                          control: [ControlMessage], flags: MessageFlags, nonBlocking: Bool) throws(Errno) -> Int {
        let extras = try provider.sendExtras(control)
        if flags.contains(.outOfBand) { throw .notSupported }
        if isStream { return try sendStream(buffers, to: address, extras: extras, nonBlocking: nonBlocking) }
        return try sendRecord(buffers, to: isDatagram ? address : nil, extras: extras, nonBlocking: nonBlocking)
    }

    func receive(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, flags: MessageFlags,
                 nonBlocking: Bool, wantAddress: Bool, controlCapacity: Int) throws(Errno) -> ReceivedMessage {
        if let h = provider.lock.withLock({ host }) {
            return try h.receive(into: buffers, flags: flags, nonBlocking: nonBlocking, wantAddress: wantAddress, controlCapacity: controlCapacity)
        }
        do {
            return try receiveHere(into: buffers, flags: flags, nonBlocking: nonBlocking)
        } catch {
            guard error == UnixSocket.promoted, let h = provider.lock.withLock({ host }) else { throw error }
            return try h.receive(into: buffers, flags: flags, nonBlocking: nonBlocking, wantAddress: wantAddress, controlCapacity: controlCapacity)
        }
    }

    private func receiveHere(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, flags: MessageFlags,
                             nonBlocking: Bool) throws(Errno) -> ReceivedMessage {
        if isStream { return try receiveStream(into: buffers, flags: flags, nonBlocking: nonBlocking) }
        return try receiveRecord(into: buffers, flags: flags, nonBlocking: nonBlocking)
    }

    // MARK: stream

    private func sendStream(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, to address: SocketAddress?,
                            extras: UnixSocketProvider.SendExtras, nonBlocking: Bool) throws(Errno) -> Int {
        let total = buffers.reduce(0) { $0 + $1.count }
        var gather = Gather(buffers)
        var sent = 0
        var rights = extras.rights
        let deadline = UnixSocketProvider.deadline(common.sendTimeout)
        try provider.lock.withLock { () throws(Errno) in
            if address != nil { throw state == .connected ? .socketIsConnected : .notSupported }
            guard state == .connected, peer != nil else { throw .socketNotConnected }
            if sendShut { throw .brokenPipe }
        }
        while sent < total {
            enum Step { case wrote(Int), wait, broken, wouldBlock }
            let step = locked { (touched: inout [UnixSocket]) -> Step in
                guard let other = peer, !sendShut, !other.closed, !other.receiveShut else { return .broken }
                if inFlight >= sendBuffer {
                    if nonBlocking { return .wouldBlock }
                    enroll()
                    return .wait
                }
                // Linux's skb limit: half the send buffer per piece.
                let n = min(total - sent, max(sendBuffer / 2 - 64, 1))
                let bytes = gather.take(n)
                let creds = extras.credentials ?? provider.credentials
                if rights.isEmpty, let last = other.queue.indices.last, other.queue[last].rights.isEmpty,
                   other.queue[last].owner === self, other.queue[last].credentials == creds, other.queue[last].consumed == 0 {
                    other.queue[last].bytes.append(contentsOf: bytes)
                    inFlight += n
                    other.queuedBytes += n
                } else {
                    other.enqueue(UnixSegment(bytes: bytes, rights: rights, credentials: creds, sender: name), from: self)
                    rights = []
                }
                touched.append(other)
                return .wrote(n)
            }
            switch step {
            case .wrote(let n): sent += n
            case .broken:
                if sent > 0 { return sent }
                throw .brokenPipe
            case .wouldBlock:
                if sent > 0 { return sent }
                throw .wouldBlock
            case .wait:
                do { try waitOutcome(provider.park(until: deadline)) } catch {
                    if sent > 0 { return sent }
                    throw error
                }
            }
        }
        return sent
    }

    private func receiveStream(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, flags: MessageFlags,
                               nonBlocking: Bool) throws(Errno) -> ReceivedMessage {
        let total = buffers.reduce(0) { $0 + $1.count }
        let target = flags.contains(.waitAll) ? total : min(1, total)
        let peek = flags.contains(.peek)
        var scatter = Scatter(buffers)
        // An unnamed sender (or none) is reported with length 0, as Linux's msg_namelen.
        var result = ReceivedMessage(count: 0, address: SocketAddress())
        var credentials: UnixCredentials?
        var addressTaken = false
        var rightsTaken = false
        var credentialsDiffer = false
        let deadline = UnixSocketProvider.deadline(common.receiveTimeout)
        while true {
            enum Step { case done, wait }
            let step = try locked { (touched: inout [UnixSocket]) throws(Errno) -> Step in
                guard state == .connected else { throw .invalidArgument }
                if flags.contains(.outOfBand) { throw .notSupported }
                var i = 0
                while scatter.copied < total, i < queue.count, !rightsTaken {
                    let seg = queue[i]
                    if passCredentials {
                        if let c = credentials, c != seg.credentials {
                            credentialsDiffer = true
                            break
                        }
                        credentials = seg.credentials
                    }
                    if !addressTaken {
                        result.address = seg.sender?.address ?? SocketAddress()
                        addressTaken = true
                    }
                    let n = min(seg.remaining, total - scatter.copied)
                    seg.bytes.withUnsafeBytes { scatter.put(UnsafeRawBufferPointer(rebasing: $0[seg.consumed..<(seg.consumed + n)])) }
                    if !seg.rights.isEmpty {
                        result.control.append(.rights(seg.rights))
                        rightsTaken = true
                        if !peek { queue[i].rights = [] }
                    }
                    if peek {
                        i += 1
                        continue
                    }
                    queue[i].consumed += n
                    consumed(n, of: i, touched: &touched)
                    if queue[i].remaining > 0 { break }
                    queue.remove(at: i)
                }
                // Linux ends a read after a message with descriptors, and before bytes
                // of other credentials, even under MSG_WAITALL.
                if scatter.copied >= target || rightsTaken || credentialsDiffer || (scatter.copied > 0 && peek) { return .done }
                if let e = pendingError {
                    if scatter.copied > 0 { return .done }
                    pendingError = nil
                    throw e
                }
                if receiveShut { return .done }
                if nonBlocking {
                    if scatter.copied > 0 { return .done }
                    throw .wouldBlock
                }
                enroll()
                return .wait
            }
            if step == .done { break }
            do { try waitOutcome(provider.park(until: deadline)) } catch {
                if scatter.copied > 0 { break }
                throw error
            }
        }
        result.count = scatter.copied
        if let credentials { result.control.insert(.credentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid), at: 0) }
        return result
    }
}

/// Reads the caller's buffers in order, a piece at a time.
struct Gather {
    let buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>
    var index = 0, offset = 0
    init(_ b: UnsafeBufferPointer<UnsafeRawBufferPointer>) { buffers = b }

    mutating func take(_ n: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(n)
        while out.count < n, index < buffers.count {
            let b = buffers[index]
            let k = min(n - out.count, b.count - offset)
            if k > 0 { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[offset..<(offset + k)])) }
            offset += k
            if offset == b.count { index += 1; offset = 0 }
        }
        return out
    }
}

/// Fills the caller's buffers in order.
struct Scatter {
    let buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>
    var index = 0, offset = 0, copied = 0
    init(_ b: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>) { buffers = b }

    mutating func put(_ data: UnsafeRawBufferPointer) {
        var done = 0
        while done < data.count, index < buffers.count {
            let b = buffers[index]
            let k = min(data.count - done, b.count - offset)
            if k > 0 { (b.baseAddress! + offset).copyMemory(from: data.baseAddress! + done, byteCount: k) }
            offset += k
            done += k
            copied += k
            if offset == b.count { index += 1; offset = 0 }
        }
    }
}
