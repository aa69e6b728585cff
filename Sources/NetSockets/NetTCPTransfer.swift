// NetTCPTransfer.swift: a NetStack TCP socket's data path and options: send (all of it
// when blocking, what fits when not), receive with MSG_PEEK, MSG_WAITALL, MSG_TRUNC,
// read/write as recv/send, FIONREAD/SIOCOUTQ, setsockopt/getsockopt and TCP_INFO.
import FileSystem
import Glibc
import NetStack
import SyscallEmu
import SystemPackage

extension NetTCPSocket {
    // MARK: send

    func send(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, to address: SockAddr?,
              control: [ControlMessage], flags: MessageFlags, nonBlocking: Bool) throws(Errno) -> Int {
        if flags.contains(.outOfBand) { throw .linux(EOPNOTSUPP) }
        // Linux: sending on a socket that never connected (or a listener) is EPIPE.
        guard let s = connection else {
            if case .closed = lock.withLock({ mode }) { throw .linux(EBADF) }
            throw .linux(EPIPE)
        }
        // Several buffers are one message (as Linux's sendmsg builds one segment of them):
        // small ones are joined so Nagle does not hold the second back behind the first.
        // Counted without an array: a write or send of one buffer allocates nothing.
        var nonEmpty = 0, size = 0
        for b in buffers where b.count > 0 {
            nonEmpty += 1
            size += b.count
        }
        if nonEmpty > 1 && size <= 65536 {
            var joined: [UInt8] = []
            joined.reserveCapacity(size)
            for b in buffers where b.count > 0 { joined.append(contentsOf: b) }
            return try joined.withUnsafeBytes { raw in
                Result { () throws(Errno) -> Int in
                    var one = raw
                    return try withUnsafePointer(to: &one) { p throws(Errno) in
                        try send(UnsafeBufferPointer(start: p, count: 1), to: address, control: control, flags: flags,
                                 nonBlocking: nonBlocking)
                    }
                }
            }.get()
        }
        var total = 0
        for b in buffers where b.count > 0 {
            var offset = 0
            while offset < b.count {
                let n: Int
                do {
                    n = try events.wait(nonBlocking: nonBlocking, timeout: common.sendTimeout) { () throws(Errno) -> Int? in
                        do throws(NetStack.SocketError) { return try s.write(UnsafeRawBufferPointer(rebasing: b[offset...])) } catch {
                            if error == .wouldBlock { return nil }
                            throw Errno(error)
                        }
                    }
                } catch {
                    if total > 0 { return total }   // what was sent before the error, timeout or signal
                    throw error
                }
                total += n
                offset += n
                if nonBlocking && offset < b.count { return total }
            }
        }
        return total
    }

    // MARK: receive

    func receive(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, flags: MessageFlags,
                 nonBlocking: Bool, wantAddress: Bool, controlCapacity: Int) throws(Errno) -> ReceivedMessage {
        if flags.contains(.outOfBand) { throw .linux(EINVAL) }   // no urgent data, ever
        if flags.contains(.errorQueue) { throw .linux(EAGAIN) }  // no extended errors are queued
        guard let s = connection else {
            if case .closed = lock.withLock({ mode }) { throw .linux(EBADF) }
            throw .linux(ENOTCONN)
        }
        let capacity = buffers.reduce(0) { $0 + $1.count }
        if capacity == 0 { return ReceivedMessage(count: 0) }
        let timeout = common.receiveTimeout
        // One attempt: what is there now, into the buffers from `skip` bytes on.
        func once(_ skip: Int, nonBlocking: Bool) throws(Errno) -> Int {
            try events.wait(nonBlocking: nonBlocking, timeout: timeout) { () throws(Errno) -> Int? in
                do throws(NetStack.SocketError) { return try transfer(s, buffers, skip: skip, peek: flags.contains(.peek), discard: flags.contains(.truncated)) } catch {
                    if error == .wouldBlock { return nil }
                    throw Errno(error)
                }
            }
        }
        var total = try once(0, nonBlocking: nonBlocking)
        // MSG_WAITALL: until the buffers are full, the stream ends, an error or a signal.
        if flags.contains(.waitAll) && !flags.contains(.peek) && !nonBlocking {
            while total > 0 && total < capacity {
                let n: Int
                do { n = try once(total, nonBlocking: false) } catch { break }
                if n == 0 { break }
                total += n
            }
        }
        return ReceivedMessage(count: total)
    }

    /// One non-blocking read into `buffers` past `skip` bytes (peek: left in place; discard:
    /// MSG_TRUNC on a stream, consumed without copying).
    private func transfer(_ s: TCPSocket, _ buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, skip: Int,
                          peek: Bool, discard: Bool) throws(NetStack.SocketError) -> Int {
        var skip = skip
        var total = 0
        for b in buffers where b.count > 0 {
            if skip >= b.count { skip -= b.count; continue }
            let part = UnsafeMutableRawBufferPointer(rebasing: b[skip...])
            skip = 0
            let n: Int
            do throws(NetStack.SocketError) {
                if peek {
                    n = try s.peek(into: part)
                } else if discard {
                    var scratch = [UInt8](repeating: 0, count: min(part.count, 65536))
                    n = try scratch.withUnsafeMutableBytes { p in Result { () throws(NetStack.SocketError) in try s.read(into: p) } }.get()
                } else {
                    n = try s.read(into: part)
                }
            } catch {
                if total > 0 { return total }
                throw error
            }
            total += n
            if n < part.count || peek { break }
        }
        return total
    }

    // MARK: read and write

    func bytesReadable() throws(Errno) -> Int {
        switch lock.withLock({ mode }) {
        case .listening: throw .linux(EINVAL)
        case .connection(let s): return s.readableBytes
        default: return 0
        }
    }

    func bytesUnsent() throws(Errno) -> Int {
        switch lock.withLock({ mode }) {
        case .listening: throw .linux(EINVAL)
        case .connection(let s): return s.info.bytesInFlight
        default: return 0
        }
    }

    // MARK: options

    func setOption(level: Int32, name: Int32, value: UnsafeRawBufferPointer) throws(Errno) {
        let (s, o, wasCorked) = try lock.withLock { () throws(Errno) -> (TCPSocket?, InetOptions, Bool) in
            let corked = options.cork
            try options.set(level: level, name: name, value: value, family: family, stream: true, bound: bound != nil)
            if case .connection(let s) = mode { return (s, options, corked) }
            return (nil, options, corked)
        }
        // What a live connection takes at once.
        guard let s else { return }
        switch (level, name) {
        case (SocketConstants.IPPROTO_TCP, OptionName.TCP_NODELAY), (SocketConstants.IPPROTO_TCP, OptionName.TCP_CORK):
            // Corked: only full segments go out (nginx's tcp_nopush sends a response's
            // header and body in one segment). Uncorking, or setting TCP_NODELAY, pushes
            // what waits at once even under Nagle, as Linux's tcp_push_pending_frames with
            // TCP_NAGLE_PUSH (nginx ends each keep-alive response so; held back, it would
            // wait for the peer's delayed ACK).
            let push = wasCorked && !o.cork || name == OptionName.TCP_NODELAY && o.noDelay
            s.setNagle(noDelay: o.noDelay, cork: o.cork, push: push)
        case (SocketConstants.SOL_SOCKET, OptionName.SO_KEEPALIVE), (SocketConstants.IPPROTO_TCP, OptionName.TCP_KEEPIDLE),
             (SocketConstants.IPPROTO_TCP, OptionName.TCP_KEEPINTVL), (SocketConstants.IPPROTO_TCP, OptionName.TCP_KEEPCNT):
            s.keepalive = o.keepalive
        case (SocketConstants.SOL_SOCKET, OptionName.SO_LINGER): s.linger = o.tcpConfiguration.linger
        default: break
        }
    }

    func getOption(level: Int32, name: Int32, into: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        let (m, o) = lock.withLock { (mode, options) }
        switch (level, name) {
        case (SocketConstants.SOL_SOCKET, OptionName.SO_ERROR):
            var e: Int32 = 0
            if case .connection(let s) = m, let error = s.takeError() { e = error.errno }
            if e == 0 { e = lock.withLock { defer { pendingError = 0 }; return pendingError } }
            return InetOptions.put([e], into)
        case (SocketConstants.SOL_SOCKET, OptionName.SO_ACCEPTCONN):
            if case .listening = m { return InetOptions.put([1], into) }
            return InetOptions.put([0], into)
        case (SocketConstants.IPPROTO_TCP, OptionName.TCP_INFO):
            var info = TCPInfoLayout()
            switch m {
            case .connection(let s): info.fill(s.info)
            case .listening: info.state = 10   // TCP_LISTEN
            default: info.state = 7            // TCP_CLOSE
            }
            return info.copy(into)
        default:
            return try o.get(level: level, name: name, into: into, family: family, stream: true)
        }
    }
}

/// struct tcp_info as Linux lays it out (the first 232 bytes, through tcpi_snd_wnd).
struct TCPInfoLayout {
    static let size = 232
    var bytes = [UInt8](repeating: 0, count: TCPInfoLayout.size)

    var state: UInt8 {
        get { bytes[0] }
        set { bytes[0] = newValue }
    }

    mutating func u32(_ offset: Int, _ v: some BinaryInteger) {
        let x = UInt32(truncatingIfNeeded: v)
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: x >> (8 * UInt32(i))) }
    }

    mutating func u64(_ offset: Int, _ v: UInt64) {
        for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }

    static func linuxState(_ s: TCPState) -> UInt8 {
        switch s {
        case .established: 1
        case .synSent: 2
        case .synReceived: 3
        case .finWait1: 4
        case .finWait2: 5
        case .timeWait: 6
        case .closed: 7
        case .closeWait: 8
        case .lastAck: 9
        case .listen: 10
        case .closing: 11
        }
    }

    mutating func fill(_ i: TCPInfo) {
        func micros(_ d: Duration?) -> UInt64 {
            guard let d else { return 0 }
            let (s, a) = d.components
            return UInt64(max(0, s)) * 1_000_000 + UInt64(max(0, a)) / 1_000_000_000_000
        }
        bytes[0] = Self.linuxState(i.state)
        var options: UInt8 = 0
        if i.timestampsEnabled { options |= 1 }
        if i.sackEnabled { options |= 2 }
        if i.sendWindowScale > 0 || i.receiveWindowScale > 0 { options |= 4 }
        bytes[5] = options
        bytes[6] = UInt8(truncatingIfNeeded: (i.sendWindowScale & 0xf) | (i.receiveWindowScale & 0xf) << 4)
        u32(8, micros(i.rto))                                        // tcpi_rto
        u32(16, i.maximumSegmentSize)                                // tcpi_snd_mss
        u32(20, i.maximumSegmentSize)                                // tcpi_rcv_mss
        let mss = max(i.maximumSegmentSize, 1)
        u32(24, (i.bytesInFlight + mss - 1) / mss)                   // tcpi_unacked (segments)
        u32(60, i.maximumSegmentSize + 40)                           // tcpi_pmtu
        u32(68, micros(i.smoothedRTT))                               // tcpi_rtt
        u32(72, micros(i.rttVariance))                               // tcpi_rttvar
        u32(76, min(i.slowStartThreshold / mss, Int(UInt32.max)))    // tcpi_snd_ssthresh (segments)
        u32(80, i.congestionWindow / mss)                            // tcpi_snd_cwnd (segments)
        u32(84, i.maximumSegmentSize)                                // tcpi_advmss
        u32(100, i.statistics.retransmittedSegments)                 // tcpi_total_retrans
        u64(120, i.statistics.bytesSent)                             // tcpi_bytes_acked (approximately)
        u64(128, i.statistics.bytesReceived)                         // tcpi_bytes_received
        u32(136, i.statistics.segmentsSent)                          // tcpi_segs_out
        u32(140, i.statistics.segmentsReceived)                      // tcpi_segs_in
        u64(200, i.statistics.bytesSent)                             // tcpi_bytes_sent
        u32(228, i.peerWindow)                                       // tcpi_snd_wnd
    }

    func copy(_ into: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(into.count, bytes.count)
        bytes.withUnsafeBytes { if n > 0 { into.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) } }
        return bytes.count
    }
}
