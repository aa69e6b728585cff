// NetlinkSocket.swift: an AF_NETLINK/NETLINK_ROUTE socket answered by the instance
// (--net): RTM_GETLINK and RTM_GETADDR about `lo` and the device (what getifaddrs,
// if_nameindex and glibc's AI_ADDRCONFIG read), NLMSG_ERROR for the rest, port ids
// (nl_pid) bound and autobound as Linux's netlink_bind/netlink_autobind.
import FileSystem
import Glibc
import NetStack
import SyscallEmu
import SystemPackage
import UThreads

/// The port ids of the instance's netlink sockets (Linux: per network namespace).
final class NetlinkPorts: @unchecked Sendable {
    private let lock = SpinLock()
    private var taken: Set<UInt32> = []
    /// Linux's rover for autobind once the process id is taken: -4096, then down.
    private var rover: Int32 = -4096

    /// Reserves `pid`, or (0) the process id, else the next free negative id.
    func reserve(_ pid: UInt32) throws(Errno) -> UInt32 {
        try lock.withLock { () throws(Errno) -> UInt32 in
            if pid != 0 {
                guard taken.insert(pid).inserted else { throw .linux(EADDRINUSE) }
                return pid
            }
            var p = UInt32(bitPattern: getpid())
            while taken.contains(p) {
                p = UInt32(bitPattern: rover)
                rover = rover > -4096 || rover == Int32.min ? -4096 : rover - 1
            }
            taken.insert(p)
            return p
        }
    }

    func release(_ pid: UInt32) { _ = lock.withLock { taken.remove(pid) } }
}

final class NetlinkRouteSocket: SocketHandle, @unchecked Sendable {
    /// Replaced only in a forked child, before its program resumes (ForkRule.swift).
    var network: InstanceNetwork
    let ports: NetlinkPorts
    let socketType: Int32
    var family: Int32 { SocketConstants.AF_NETLINK }
    var protocolNumber: Int32 { Netlink.NETLINK_ROUTE }
    let common = SocketCommon()
    let events = SocketEvents()

    static let NETLINK_ADD_MEMBERSHIP: Int32 = 1, NETLINK_DROP_MEMBERSHIP: Int32 = 2, NETLINK_PKTINFO: Int32 = 3
    static let NETLINK_CAP_ACK: Int32 = 10, NETLINK_LIST_MEMBERSHIPS: Int32 = 9
    /// The int-valued flags of SOL_NETLINK kept and reported: BROADCAST_ERROR,
    /// NO_ENOBUFS, LISTEN_ALL_NSID, CAP_ACK, EXT_ACK, GET_STRICT_CHK (and PKTINFO).
    static let flagOptions: Set<Int32> = [3, 4, 5, 8, 10, 11, 12]
    static let SO_PASSCRED: Int32 = 16, SO_SNDBUFFORCE: Int32 = 32, SO_RCVBUFFORCE: Int32 = 33

    private let lock = SpinLock()
    // Guarded by `lock`.
    private var portID: UInt32 = 0
    private var groups: UInt32 = 0
    private var destination: (pid: UInt32, groups: UInt32) = (0, 0)
    private var queue: [[UInt8]] = []
    private var queued = 0
    private var overrun = false
    private var flags: [Int32: Int32] = [:]
    private var passCredentials = false
    private var sendBuffer = BufferLimits.maximum, receiveBuffer = BufferLimits.maximum
    private var closed = false

    init(network: InstanceNetwork, ports: NetlinkPorts, type: Int32) {
        self.network = network
        self.ports = ports
        socketType = type
    }

    deinit { close() }

    // MARK: names

    /// sockaddr_nl's pid and groups (EINVAL for a short address or another family).
    private func decode(_ a: SockAddr) throws(Errno) -> (pid: UInt32, groups: UInt32) {
        guard a.length >= 12, a.family == SocketConstants.AF_NETLINK else { throw .linux(EINVAL) }
        let word = { (o: Int) -> UInt32 in (0..<4).reduce(UInt32(0)) { $0 | UInt32(a[o + $1]) << (8 * UInt32($1)) } }
        return (word(4), word(8))
    }

    private static func encode(pid: UInt32, groups: UInt32) -> SockAddr {
        var a = SockAddr()
        a.setLength(12)
        a[0] = UInt8(SocketConstants.AF_NETLINK)
        for i in 0..<4 {
            a[4 + i] = UInt8(truncatingIfNeeded: pid >> (8 * UInt32(i)))
            a[8 + i] = UInt8(truncatingIfNeeded: groups >> (8 * UInt32(i)))
        }
        return a
    }

    /// netlink_autobind: a port id if the socket has none. Lock held.
    private func autobindLocked() throws(Errno) {
        if portID == 0 { portID = try ports.reserve(0) }
    }

    func bind(_ address: SockAddr) throws(Errno) {
        let (pid, g) = try decode(address)
        try lock.withLock { () throws(Errno) in
            if closed { throw .linux(EBADF) }
            if portID != 0 {
                if pid != 0 && pid != portID { throw .linux(EINVAL) }
            } else {
                portID = try ports.reserve(pid)
            }
            groups = g   // rtnetlink lets anyone listen; no notifications are sent here
        }
    }

    func connect(_ address: SockAddr, nonBlocking: Bool) throws(Errno) {
        if address.length >= 2 && address.family == SocketConstants.AF_UNSPEC {
            lock.withLock { destination = (0, 0) }
            return
        }
        let d = try decode(address)
        try lock.withLock { () throws(Errno) in
            try autobindLocked()
            destination = d
        }
    }

    func localAddress() throws(Errno) -> SockAddr {
        lock.withLock { Self.encode(pid: portID, groups: groups) }
    }

    func peerAddress() throws(Errno) -> SockAddr {
        lock.withLock { Self.encode(pid: destination.pid, groups: destination.groups) }
    }

    func listen(backlog: Int32) throws(Errno) { throw .linux(EOPNOTSUPP) }
    func accept(nonBlocking: Bool) throws(Errno) -> (socket: any SocketHandle, peer: SockAddr) { throw .linux(EOPNOTSUPP) }
    func shutdown(_ how: Int32) throws(Errno) { throw .linux(EOPNOTSUPP) }

    // MARK: requests and replies

    func send(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, to address: SockAddr?,
              control: [ControlMessage], flags: MessageFlags, nonBlocking: Bool) throws(Errno) -> Int {
        if flags.contains(.outOfBand) { throw .linux(EOPNOTSUPP) }
        var message: [UInt8] = []
        for b in buffers { message.append(contentsOf: b) }
        try lock.withLock { () throws(Errno) in
            if closed { throw .linux(EBADF) }
            let target = try address.map { a throws(Errno) in try decode(a) } ?? destination
            // Other sockets of the instance are not reachable: only the kernel (pid 0) answers.
            if target.pid != 0 { throw .linux(ECONNREFUSED) }
            if message.count > Int(sendBuffer) - 32 { throw .linux(EMSGSIZE) }
            try autobindLocked()
            message.withUnsafeBytes { answer($0) }
        }
        events.signal(readiness)
        return message.count
    }

    /// netlink_rcv_skb over the datagram: each request answered in turn. Lock held.
    private func answer(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while let h = NetlinkHeader(bytes, at: offset) {
            let length = Int(h.length)
            guard length >= Netlink.headerLength, length <= bytes.count - offset else { return }
            let request = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
            var err: Int32 = 0
            var dump = false
            if h.flags & Netlink.NLM_F_REQUEST != 0 && h.type >= Netlink.NLMSG_MIN_TYPE {
                (err, dump) = handle(h, request)
            }
            if !dump && (h.flags & Netlink.NLM_F_ACK != 0 || err != 0) {
                var w = NetlinkWriter()
                w.error(err, request: request, header: h, pid: portID, capped: (flags[Self.NETLINK_CAP_ACK] ?? 0) != 0)
                enqueue(w.bytes)
            }
            offset += NetlinkWriter.align(length)
        }
    }

    /// One request: its errno (0: answered) and whether it started a dump (no ack then).
    private func handle(_ h: NetlinkHeader, _ request: UnsafeRawBufferPointer) -> (Int32, Bool) {
        let payload = UnsafeRawBufferPointer(rebasing: request[Netlink.headerLength...])
        let entries = network.interfaceEntries
        let isDump = h.flags & Netlink.NLM_F_DUMP == Netlink.NLM_F_DUMP
        // rtnetlink_rcv_msg: types past RTM_MAX are EOPNOTSUPP; a message with no
        // payload at all is quietly accepted.
        if h.type > Netlink.RTM_MAX { return (EOPNOTSUPP, false) }
        if payload.isEmpty { return (0, false) }
        switch h.type {
        case Netlink.RTM_GETLINK where isDump:
            var w = NetlinkWriter()
            for e in entries { w.link(e, flags: Netlink.NLM_F_MULTI, sequence: h.sequence, pid: portID) }
            enqueue(w.bytes)
            enqueueDone(h)
            return (0, true)
        case Netlink.RTM_GETLINK:
            guard payload.count >= 16 else { return (EINVAL, false) }
            let index = payload.loadUnaligned(fromByteOffset: 4, as: Int32.self)
            let found: InterfaceEntry?
            if index > 0 {
                found = entries.first { $0.index == index }
            } else if let name = Self.stringAttribute(Netlink.IFLA_IFNAME, in: UnsafeRawBufferPointer(rebasing: payload[16...])) {
                found = entries.first { $0.name == name }
            } else {
                return (EINVAL, false)
            }
            guard let e = found else { return (ENODEV, false) }
            var w = NetlinkWriter()
            w.link(e, flags: 0, sequence: h.sequence, pid: portID)
            enqueue(w.bytes)
            return (0, false)
        case Netlink.RTM_GETADDR where isDump:
            // AF_INET6 has no address here (NetStack speaks no IPv6); any other family
            // dumps every family's, as rtnl_dump_all does.
            let wanted = payload.count >= 1 ? Int32(payload[0]) : 0
            var w = NetlinkWriter()
            if wanted != AF_INET6 {
                for e in entries { w.address(e, flags: Netlink.NLM_F_MULTI, sequence: h.sequence, pid: portID) }
            }
            if !w.bytes.isEmpty { enqueue(w.bytes) }
            enqueueDone(h)
            return (0, true)
        default:
            // Routes, neighbours, rules, changes of any kind: not answered by the instance.
            return (EOPNOTSUPP, false)
        }
    }

    private func enqueueDone(_ h: NetlinkHeader) {
        var w = NetlinkWriter()
        w.done(sequence: h.sequence, pid: portID)
        enqueue(w.bytes)
    }

    /// Queues a reply datagram; past SO_RCVBUF it is dropped and the next receive says
    /// ENOBUFS (netlink_overrun). Lock held.
    private func enqueue(_ datagram: [UInt8]) {
        if queued + datagram.count > Int(receiveBuffer) {
            if (flags[5] ?? 0) == 0 { overrun = true }   // NETLINK_NO_ENOBUFS
            return
        }
        queue.append(datagram)
        queued += datagram.count
    }

    /// The string attribute `type` among `attributes` (rtattrs), without its NUL.
    static func stringAttribute(_ type: UInt16, in attributes: UnsafeRawBufferPointer) -> String? {
        var o = 0
        while attributes.count - o >= 4 {
            let length = Int(attributes.loadUnaligned(fromByteOffset: o, as: UInt16.self))
            let t = attributes.loadUnaligned(fromByteOffset: o + 2, as: UInt16.self)
            guard length >= 4, length <= attributes.count - o else { return nil }
            if t & 0x3fff == type {
                return String(decoding: attributes[(o + 4)..<(o + length)].prefix { $0 != 0 }, as: UTF8.self)
            }
            o += NetlinkWriter.align(length)
        }
        return nil
    }

    func receive(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, flags: MessageFlags,
                 nonBlocking: Bool, wantAddress: Bool, controlCapacity: Int) throws(Errno) -> ReceivedMessage {
        if flags.contains(.outOfBand) { throw .linux(EOPNOTSUPP) }
        let peek = flags.contains(.peek)
        let (datagram, pktinfo) = try events.wait(nonBlocking: nonBlocking, timeout: common.receiveTimeout) {
            () throws(Errno) -> ([UInt8], Bool)? in
            try lock.withLock { () throws(Errno) -> ([UInt8], Bool)? in
                if overrun {
                    overrun = false
                    throw .linux(ENOBUFS)
                }
                guard let first = queue.first else { return nil }
                if !peek {
                    queue.removeFirst()
                    queued -= first.count
                }
                return (first, (self.flags[Self.NETLINK_PKTINFO] ?? 0) != 0)
            }
        }
        var copied = 0
        for b in buffers where copied < datagram.count {
            let n = min(b.count, datagram.count - copied)
            if n > 0 {
                datagram.withUnsafeBytes { b.baseAddress!.copyMemory(from: $0.baseAddress! + copied, byteCount: n) }
            }
            copied += n
        }
        var m = ReceivedMessage(count: flags.contains(.truncated) ? datagram.count : copied)
        if copied < datagram.count { m.flags.insert(.truncated) }
        if wantAddress { m.address = Self.encode(pid: 0, groups: 0) }
        if pktinfo && controlCapacity > 0 {   // struct nl_pktinfo: the group, 0 for a unicast reply
            m.control.append(.other(level: Netlink.SOL_NETLINK, type: Self.NETLINK_PKTINFO, data: [0, 0, 0, 0]))
        }
        return m
    }

    // MARK: options, readiness, close

    func setOption(level: Int32, name: Int32, value: UnsafeRawBufferPointer) throws(Errno) {
        guard value.count >= 4 else { throw .linux(EINVAL) }
        let v = value.loadUnaligned(as: Int32.self)
        try lock.withLock { () throws(Errno) in
            switch (level, name) {
            case (SocketConstants.SOL_SOCKET, OptionName.SO_SNDBUF), (SocketConstants.SOL_SOCKET, Self.SO_SNDBUFFORCE):
                sendBuffer = max(BufferLimits.minimumSend, min(max(v, 0), BufferLimits.maximum) &* 2)
            case (SocketConstants.SOL_SOCKET, OptionName.SO_RCVBUF), (SocketConstants.SOL_SOCKET, Self.SO_RCVBUFFORCE):
                receiveBuffer = max(BufferLimits.minimumReceive, min(max(v, 0), BufferLimits.maximum) &* 2)
            case (SocketConstants.SOL_SOCKET, Self.SO_PASSCRED):
                passCredentials = v != 0
            case (Netlink.SOL_NETLINK, Self.NETLINK_ADD_MEMBERSHIP), (Netlink.SOL_NETLINK, Self.NETLINK_DROP_MEMBERSHIP):
                // Groups 1...32 are the bitmap of nl_groups; the instance sends no notifications.
                guard v > 0 else { throw .linux(EINVAL) }
                try autobindLocked()
                if v <= 32 {
                    let bit = UInt32(1) << UInt32(v - 1)
                    if name == Self.NETLINK_ADD_MEMBERSHIP { groups |= bit } else { groups &= ~bit }
                }
            case (Netlink.SOL_NETLINK, let n) where Self.flagOptions.contains(n):
                flags[n] = v != 0 ? 1 : 0
            default:
                throw .linux(ENOPROTOOPT)
            }
        }
    }

    func getOption(level: Int32, name: Int32, into: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        let value: Int32 = try lock.withLock { () throws(Errno) -> Int32 in
            switch (level, name) {
            case (SocketConstants.SOL_SOCKET, OptionName.SO_SNDBUF): return sendBuffer
            case (SocketConstants.SOL_SOCKET, OptionName.SO_RCVBUF): return receiveBuffer
            case (SocketConstants.SOL_SOCKET, Self.SO_PASSCRED): return passCredentials ? 1 : 0
            case (SocketConstants.SOL_SOCKET, OptionName.SO_ERROR), (SocketConstants.SOL_SOCKET, OptionName.SO_ACCEPTCONN): return 0
            case (Netlink.SOL_NETLINK, Self.NETLINK_LIST_MEMBERSHIPS): return Int32(bitPattern: groups)
            case (Netlink.SOL_NETLINK, let n) where Self.flagOptions.contains(n):
                // netlink_getsockopt: EINVAL for a length under an int.
                guard into.count >= 4 else { throw .linux(EINVAL) }
                return flags[n] ?? 0
            default: throw .linux(ENOPROTOOPT)
            }
        }
        return InetOptions.put([value], into)
    }

    /// Netlink sockets answer no FIONREAD/SIOCOUTQ (netlink_ioctl: ENOIOCTLCMD → ENOTTY).
    func bytesReadable() throws(Errno) -> Int { throw .linux(ENOTTY) }
    func bytesUnsent() throws(Errno) -> Int { throw .linux(ENOTTY) }

    var readiness: Readiness {
        lock.withLock {
            if closed { return [.hangUp] }
            var r: Readiness = [.writable]
            if !queue.isEmpty || overrun { r.insert(.readable) }
            return r
        }
    }

    func close() {
        let pid = lock.withLock { () -> UInt32 in
            if closed { return 0 }
            closed = true
            queue = []
            queued = 0
            defer { portID = 0 }
            return portID
        }
        if pid != 0 { ports.release(pid) }
    }

    func addReadinessObserver(_ observer: @escaping @Sendable (Readiness) -> Void) -> Int { events.observers.add(observer) }
    func removeReadinessObserver(_ token: Int) { events.observers.remove(token) }
    func size() throws(Errno) -> Int64 { 0 }
}
