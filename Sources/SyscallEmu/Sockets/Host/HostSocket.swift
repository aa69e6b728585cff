// HostSocket.swift: the default backend: AF_INET, AF_INET6 and AF_NETLINK sockets are
// the host kernel's, opened non-blocking; a call that would block parks the uthread
// until the socket's reactor reports an event (HostReactor.swift). Options, addresses
// and errors are the host's.
import CJunction
import FileSystem
import SystemPackage
import UThreads

#if canImport(Glibc)
import Glibc
#endif

/// Host-kernel sockets for the families LibOS gives it when no `--net` is asked for.
public final class HostSocketProvider: SocketProvider, @unchecked Sendable {
    let reactors: HostReactors

    /// - Parameter runtime: whose kthreads drain the readiness (nil: waits use poll(2)).
    public init(runtime: Runtime?) {
        reactors = HostReactors(runtime: runtime)
    }

    /// In a forked child, on its one thread before the program's threads run: new
    /// reactors on the child's runtime, and the host sockets of `files` join them.
    public func afterFork(runtime: Runtime, files: [OpenFile]) {
        reactors.rebuild(runtime: runtime)
        for f in files { (f.handle as? HostSocket)?.adoptAfterFork() }
    }

    /// Interface ioctls asked on a socket of another family: the host's answer, on a
    /// throwaway host AF_INET datagram socket (the kernel reads and writes the caller's
    /// ifreq or ifconf itself).
    public func interfaceControl(request: UInt64, argument: UInt64) throws(Errno) -> Int64 {
        let fd = cj_host_syscall(41, UInt64(SocketConstants.AF_INET), UInt64(SocketConstants.SOCK_DGRAM | SocketConstants.SOCK_CLOEXEC), 0, 0, 0, 0)
        guard fd >= 0 else { throw Errno(rawValue: Int32(-fd)) }
        defer { _ = cj_host_syscall(3, UInt64(fd), 0, 0, 0, 0, 0) }
        return try HostCall.check(cj_host_syscall(16, UInt64(fd), request, argument, 0, 0, 0))
    }

    public func makeSocket(family: Int32, type: Int32, protocol: Int32) throws(Errno) -> any SocketHandle {
        let flags = Int32(SocketConstants.SOCK_NONBLOCK | SocketConstants.SOCK_CLOEXEC)
        let fd = try HostCall.check(cj_host_syscall(41, UInt64(family), UInt64(UInt32(type | flags)), UInt64(UInt32(bitPattern: `protocol`)), 0, 0, 0))
        return try HostSocket(fd: Int32(fd), family: family, type: type, provider: self)
    }
}

/// Raw host calls: results or -errno, never the C library's errno.
enum HostCall {
    @inline(__always)
    static func check(_ r: Int64) throws(Errno) -> Int64 {
        try SystemCall.result(raw: r).get()
    }

    @inline(__always)
    static func address<T>(_ p: UnsafePointer<T>) -> UInt64 { UInt64(UInt(bitPattern: p)) }
    @inline(__always)
    static func address(_ p: UnsafeRawPointer?) -> UInt64 { UInt64(UInt(bitPattern: p)) }

    static let EAGAIN: Int64 = -11, EINPROGRESS: Int64 = -115, EALREADY: Int64 = -114
    static let msgDontWait: UInt64 = 0x40, msgNoSignal: UInt64 = 0x4000
    static let pollIn: Int16 = 0x001, pollOut: Int16 = 0x004, pollRdHup: Int16 = 0x2000
}

/// One host socket.
final class HostSocket: SocketHandle, @unchecked Sendable {
    let fd: Int32
    let family: Int32
    let socketType: Int32
    let protocolNumber: Int32
    let common = SocketCommon()
    private let provider: HostSocketProvider
    private let state: HostReadiness
    // Set once, and once more in a forked child before its threads run (adoptAfterFork).
    @exclusivity(unchecked) private var reactor: HostReactor?
    private let closed = SpinLock()
    private var isClosed = false

    init(fd: Int32, family: Int32, type: Int32, provider: HostSocketProvider) throws(Errno) {
        self.fd = fd
        self.family = family
        socketType = type
        self.provider = provider
        // SO_PROTOCOL as the kernel resolved it (0 asked for TCP gives 6).
        var proto: Int32 = 0
        var len: UInt32 = 4
        let r = withUnsafeMutablePointer(to: &proto) { pp in
            withUnsafeMutablePointer(to: &len) { lp in
                cj_host_syscall(55, UInt64(fd), 1, 38, HostCall.address(pp), HostCall.address(lp), 0)
            }
        }
        protocolNumber = r == 0 ? proto : 0
        state = provider.reactors.makeReadiness()
        reactor = provider.reactors.reactorForCaller()
        if let reactor {
            do { try reactor.register(fd: fd, state) } catch {
                _ = cj_host_syscall(3, UInt64(fd), 0, 0, 0, 0, 0)
                throw error
            }
        }
    }

    deinit { close() }

    var copiesInKernel: Bool { true }

    /// In a forked child, before its threads run: the socket joins a reactor of the
    /// child's runtime (the one it had is the parent's, on an epoll both share).
    func adoptAfterFork() {
        guard let r = provider.reactors.reactor(forIndex: Int(fd)) else { reactor = nil; return }
        reactor = (try? r.register(fd: fd, state)) != nil ? r : nil
    }

    func close() {
        let first = closed.withLock { () -> Bool in
            defer { isClosed = true }
            return !isClosed
        }
        guard first else { return }
        reactor?.unregister(fd: fd, state)
        _ = cj_host_syscall(3, UInt64(fd), 0, 0, 0, 0, 0)
    }

    // MARK: waiting

    /// Runs `call` (non-blocking on the host) until it does not say EAGAIN; between
    /// tries, parks until the reactor reports an event for the socket. EAGAIN when
    /// `nonBlocking` or the timeout passes; `.interrupted` for a signal.
    @inline(__always)
    private func retrying(_ events: Int16, nonBlocking: Bool, timeout: Duration?, _ call: () -> Int64) throws(Errno) -> Int64 {
        var deadline: MonotonicInstant?
        while true {
            let seen = state.snapshot.generation
            let r = call()
            if r != HostCall.EAGAIN { return try HostCall.check(r) }
            state.update(clearing: UInt32(UInt16(bitPattern: events)), ifGeneration: seen)
            if nonBlocking { throw .wouldBlock }
            if deadline == nil, let timeout { deadline = MonotonicInstant.now.advanced(by: timeout) }
            try wait(events, since: seen, deadline: deadline)
        }
    }

    private func wait(_ events: Int16, since seen: UInt64, deadline: MonotonicInstant?) throws(Errno) {
        if let reactor, reactor.isThisProcess, UThread.isInUThread {
            switch state.wait(since: seen, deadline: deadline) {
            case .woken: return
            case .timedOut: throw .wouldBlock
            case .interrupted: throw .interrupted
            }
        }
        // Outside the runtime: the calling OS thread waits in poll(2).
        var p = pollfd(fd: fd, events: events, revents: 0)
        let ms = deadline.map { Int64(max(0, ($0.nanoseconds - MonotonicInstant.now.nanoseconds + 999_999) / 1_000_000)) } ?? -1
        let r = withUnsafeMutablePointer(to: &p) { cj_host_syscall(7, HostCall.address($0), 1, UInt64(bitPattern: ms), 0, 0, 0) }
        if r == 0, deadline != nil { throw .wouldBlock }
        if r == -4 { throw .interrupted }
    }

    /// poll(2) with no wait: what the socket is ready for now.
    /// The reactor that reports this socket's events (nil: waits use poll(2)).
    var eventReactor: HostReactor? { reactor }

    private func pollNow(_ events: Int16) -> UInt32 {
        var p = pollfd(fd: fd, events: events, revents: 0)
        let r = withUnsafeMutablePointer(to: &p) { cj_host_syscall(7, HostCall.address($0), 1, 0, 0, 0, 0) }
        return r > 0 ? UInt32(UInt16(bitPattern: p.revents)) : 0
    }

    // MARK: FileHandle

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        let r = try retrying(HostCall.pollIn, nonBlocking: nonBlocking, timeout: common.receiveTimeout) {
            cj_host_syscall(45, UInt64(fd), HostCall.address(buffer.baseAddress), UInt64(buffer.count), HostCall.msgDontWait, 0, 0)
        }
        return Int(r)
    }

    func size() throws(Errno) -> Int64 { 0 }

    var readiness: Readiness {
        // Asked of the host each time (one poll(2)): the reactor's events arrive when its
        // kthread next polls, and a program that writes to itself and then selects expects
        // to see the data at once, as on Linux. (Edge-triggered epoll asks only after an event.)
        let seen = state.snapshot.generation
        let now = pollNow(HostCall.pollIn | HostCall.pollOut | HostCall.pollRdHup)
        state.update(clearing: HostReadiness.everything, setting: now, ifGeneration: seen)
        return Readiness(rawValue: now)
    }

    func addReadinessObserver(_ o: @escaping @Sendable (Readiness) -> Void) -> Int { state.observers.add(o) }
    func removeReadinessObserver(_ t: Int) { state.observers.remove(t) }

    // MARK: connections

    func bind(_ address: SocketAddress) throws(Errno) {
        _ = try address.withUnsafeBytes { (a: UnsafeRawBufferPointer) throws(Errno) -> Int64 in
            try HostCall.check(cj_host_syscall(49, UInt64(fd), HostCall.address(a.baseAddress), UInt64(a.count), 0, 0, 0))
        }
    }

    func listen(backlog: Int32) throws(Errno) {
        _ = try HostCall.check(cj_host_syscall(50, UInt64(fd), UInt64(UInt32(bitPattern: backlog)), 0, 0, 0, 0))
    }

    func accept(nonBlocking: Bool) throws(Errno) -> (socket: any SocketHandle, peer: SocketAddress) {
        var storage = InlineArray<128, UInt8>(repeating: 0)
        var len: UInt32 = 128
        let flags = UInt64(SocketConstants.SOCK_NONBLOCK | SocketConstants.SOCK_CLOEXEC)
        let newFD = try withUnsafeMutableBytes(of: &storage) { (a: UnsafeMutableRawBufferPointer) throws(Errno) -> Int64 in
            try withUnsafeMutablePointer(to: &len) { (lp: UnsafeMutablePointer<UInt32>) throws(Errno) -> Int64 in
                try retrying(HostCall.pollIn, nonBlocking: nonBlocking, timeout: common.receiveTimeout) {
                    lp.pointee = 128
                    return cj_host_syscall(288, UInt64(fd), HostCall.address(a.baseAddress), HostCall.address(lp), flags, 0, 0)
                }
            }
        }
        let peer = try withUnsafeBytes(of: storage) { (a: UnsafeRawBufferPointer) throws(Errno) -> SocketAddress in
            try SocketAddress(bytes: UnsafeRawBufferPointer(rebasing: a[0..<min(Int(len), 128)]))
        }
        return (try HostSocket(fd: Int32(newFD), family: family, type: socketType, provider: provider), peer)
    }

    func connect(_ address: SocketAddress, nonBlocking: Bool) throws(Errno) {
        let r = address.withUnsafeBytes { a in
            cj_host_syscall(42, UInt64(fd), HostCall.address(a.baseAddress), UInt64(a.count), 0, 0, 0)
        }
        if r >= 0 { return }
        // A blocking connect waits for the handshake, also when restarted (EALREADY).
        guard !nonBlocking, r == HostCall.EINPROGRESS || r == HostCall.EALREADY else { throw Errno(rawValue: Int32(-r)) }
        var deadline: MonotonicInstant?
        while true {
            let seen = state.snapshot.generation
            if pollNow(HostCall.pollOut) != 0 { break }
            state.update(clearing: UInt32(HostCall.pollOut), ifGeneration: seen)
            if deadline == nil, let t = common.sendTimeout { deadline = MonotonicInstant.now.advanced(by: t) }
            do { try wait(HostCall.pollOut, since: seen, deadline: deadline) } catch {
                throw error == .wouldBlock ? .nowInProgress : error  // timed out: still connecting, as Linux says
            }
        }
        // Connect again, as the kernel's own blocking connect ends: 0 marks the socket
        // connected, a refused or reset handshake gives its error.
        let again = address.withUnsafeBytes { a in
            cj_host_syscall(42, UInt64(fd), HostCall.address(a.baseAddress), UInt64(a.count), 0, 0, 0)
        }
        if again < 0 && again != -106 { throw Errno(rawValue: Int32(-again)) }  // EISCONN: done
    }

    func shutdown(_ how: Int32) throws(Errno) {
        _ = try HostCall.check(cj_host_syscall(48, UInt64(fd), UInt64(UInt32(bitPattern: how)), 0, 0, 0, 0))
    }

    func localAddress() throws(Errno) -> SocketAddress { try name(51) }
    func peerAddress() throws(Errno) -> SocketAddress { try name(52) }

    private func name(_ call: Int64) throws(Errno) -> SocketAddress {
        var storage = InlineArray<128, UInt8>(repeating: 0)
        var len: UInt32 = 128
        _ = try withUnsafeMutableBytes(of: &storage) { (a: UnsafeMutableRawBufferPointer) throws(Errno) -> Int64 in
            try withUnsafeMutablePointer(to: &len) { (lp: UnsafeMutablePointer<UInt32>) throws(Errno) -> Int64 in
                try HostCall.check(cj_host_syscall(call, UInt64(fd), HostCall.address(a.baseAddress), HostCall.address(lp), 0, 0, 0))
            }
        }
        return try withUnsafeBytes(of: storage) { (a: UnsafeRawBufferPointer) throws(Errno) -> SocketAddress in
            try SocketAddress(bytes: UnsafeRawBufferPointer(rebasing: a[0..<min(Int(len), 128)]))
        }
    }

    // MARK: options and ioctls

    func setOption(level: Int32, name: Int32, value: UnsafeRawBufferPointer) throws(Errno) {
        _ = try HostCall.check(cj_host_syscall(54, UInt64(fd), UInt64(UInt32(bitPattern: level)), UInt64(UInt32(bitPattern: name)),
                                               HostCall.address(value.baseAddress), UInt64(value.count), 0))
    }

    func getOption(level: Int32, name: Int32, into: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        var len = UInt32(into.count)
        _ = try withUnsafeMutablePointer(to: &len) { (lp: UnsafeMutablePointer<UInt32>) throws(Errno) -> Int64 in
            try HostCall.check(cj_host_syscall(55, UInt64(fd), UInt64(UInt32(bitPattern: level)), UInt64(UInt32(bitPattern: name)),
                                               HostCall.address(into.baseAddress), HostCall.address(lp), 0))
        }
        return Int(len)
    }

    private func ioctlCount(_ request: UInt64) throws(Errno) -> Int {
        var n: Int32 = 0
        _ = try withUnsafeMutablePointer(to: &n) { (p: UnsafeMutablePointer<Int32>) throws(Errno) -> Int64 in
            try HostCall.check(cj_host_syscall(16, UInt64(fd), request, HostCall.address(p), 0, 0, 0))
        }
        return Int(n)
    }

    func bytesReadable() throws(Errno) -> Int { try ioctlCount(0x541B) }
    func bytesUnsent() throws(Errno) -> Int { try ioctlCount(0x5411) }

    /// Socket ioctls (0x89xx: SIOCGIF*, SIOCATMARK, SIOCGSTAMP...) go to the host as they
    /// are: its kernel reads and writes the caller's memory.
    func deviceControl(request: UInt64, argument: UInt64) throws(Errno) -> Int64 {
        guard request & ~0xff == 0x8900 else { throw .inappropriateIOCTLForDevice }
        return try HostCall.check(cj_host_syscall(16, UInt64(fd), request, argument, 0, 0, 0))
    }

    // MARK: data

    func send(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, to address: SocketAddress?,
              control: [ControlMessage], flags: MessageFlags, nonBlocking: Bool) throws(Errno) -> Int {
        var controlBytes: [UInt8] = []
        if !control.isEmpty { controlBytes = try HostControl.encode(control) }
        var name = address ?? SocketAddress()
        let nameLength = address?.length ?? 0
        let stream = socketType == SocketConstants.SOCK_STREAM
        let callFlags = UInt64(UInt32(bitPattern: flags.rawValue)) | HostCall.msgDontWait | HostCall.msgNoSignal
        return try withUnsafeTemporaryAllocation(of: iovec.self, capacity: max(buffers.count, 1)) { (iov: UnsafeMutableBufferPointer<iovec>) throws(Errno) -> Int in
            var total = 0
            for (i, b) in buffers.enumerated() {
                iov[i] = iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress), iov_len: b.count)
                total += b.count
            }
            return try withUnsafeMutableBytes(of: &name) { (nameBytes: UnsafeMutableRawBufferPointer) throws(Errno) -> Int in
                let r = controlBytes.withUnsafeMutableBytes { (c: UnsafeMutableRawBufferPointer) -> Result<Int, Errno> in
                    Result { () throws(Errno) -> Int in
                        try sendLoop(iov, buffers.count, total: total, name: nameLength > 0 ? nameBytes.baseAddress : nil,
                                     nameLength: nameLength, control: c, flags: callFlags, stream: stream, nonBlocking: nonBlocking)
                    }
                }
                return try r.get()
            }
        }
    }

    /// sendmsg until done: once for datagrams and non-blocking calls, until every byte is
    /// taken for a blocking stream send (a signal or error after some: the count so far).
    private func sendLoop(_ iov: UnsafeMutableBufferPointer<iovec>, _ count: Int, total: Int, name: UnsafeMutableRawPointer?, nameLength: Int,
                          control c: UnsafeMutableRawBufferPointer, flags: UInt64, stream: Bool, nonBlocking: Bool) throws(Errno) -> Int {
        var first = 0, sent = 0
        while true {
            var m = msghdr()
            m.msg_name = name
            m.msg_namelen = UInt32(nameLength)
            m.msg_iov = iov.baseAddress! + first
            m.msg_iovlen = count - first
            m.msg_control = c.count > 0 ? c.baseAddress : nil
            m.msg_controllen = c.count
            let n: Int64
            do throws(Errno) {
                n = try withUnsafePointer(to: &m) { (mp: UnsafePointer<msghdr>) throws(Errno) -> Int64 in
                    try retrying(HostCall.pollOut, nonBlocking: nonBlocking, timeout: common.sendTimeout) {
                        cj_host_syscall(46, UInt64(fd), HostCall.address(mp), flags, 0, 0, 0)
                    }
                }
            } catch {
                if sent > 0 { return sent }  // a partial count, as Linux returns it
                throw error
            }
            sent += Int(n)
            if !stream || nonBlocking || sent >= total { return sent }
            var skip = Int(n)
            while first < count && skip >= iov[first].iov_len {
                skip -= iov[first].iov_len
                first += 1
            }
            if first < count {
                iov[first].iov_base = iov[first].iov_base + skip
                iov[first].iov_len -= skip
            }
        }
    }

    func receive(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, flags: MessageFlags,
                 nonBlocking: Bool, wantAddress: Bool, controlCapacity: Int) throws(Errno) -> ReceivedMessage {
        let callFlags = UInt64(UInt32(bitPattern: flags.subtracting(.waitAll).rawValue)) | HostCall.msgDontWait
        let waitAll = flags.contains(.waitAll) && socketType == SocketConstants.SOCK_STREAM && !flags.contains(.peek)
        var storage = InlineArray<128, UInt8>(repeating: 0)
        let controlRoom = min(controlCapacity, 65536)
        return try withUnsafeTemporaryAllocation(of: iovec.self, capacity: max(buffers.count, 1)) { (iov: UnsafeMutableBufferPointer<iovec>) throws(Errno) -> ReceivedMessage in
            var total = 0
            for (i, b) in buffers.enumerated() {
                iov[i] = iovec(iov_base: b.baseAddress, iov_len: b.count)
                total += b.count
            }
            return try withUnsafeTemporaryAllocation(byteCount: max(controlRoom, 1), alignment: 8) { (c: UnsafeMutableRawBufferPointer) throws(Errno) -> ReceivedMessage in
                try withUnsafeMutableBytes(of: &storage) { (nameBytes: UnsafeMutableRawBufferPointer) throws(Errno) -> ReceivedMessage in
                    var m = msghdr()
                    m.msg_name = wantAddress ? nameBytes.baseAddress : nil
                    m.msg_namelen = wantAddress ? 128 : 0
                    m.msg_iov = iov.baseAddress
                    m.msg_iovlen = buffers.count
                    m.msg_control = controlRoom > 0 ? c.baseAddress : nil
                    m.msg_controllen = controlRoom
                    let n = try withUnsafeMutablePointer(to: &m) { (mp: UnsafeMutablePointer<msghdr>) throws(Errno) -> Int64 in
                        try retrying(HostCall.pollIn, nonBlocking: nonBlocking, timeout: common.receiveTimeout) {
                            cj_host_syscall(47, UInt64(fd), HostCall.address(UnsafePointer(mp)), callFlags, 0, 0, 0)
                        }
                    }
                    var count = Int(n)
                    if waitAll && !nonBlocking && count > 0 && count < total {
                        count += receiveRest(iov, buffers.count, after: count, flags: callFlags)
                    }
                    var result = ReceivedMessage(count: count, flags: MessageFlags(rawValue: m.msg_flags))
                    if wantAddress && m.msg_namelen > 0 {
                        result.address = try SocketAddress(bytes: UnsafeRawBufferPointer(rebasing: nameBytes[0..<min(Int(m.msg_namelen), 128)]))
                    }
                    if m.msg_controllen > 0 {
                        result.control = HostControl.decode(UnsafeRawBufferPointer(rebasing: c[0..<m.msg_controllen]))
                    }
                    return result
                }
            }
        }
    }

    /// MSG_WAITALL on a blocking stream: keeps reading after the first part until the
    /// buffers are full, the peer's end of file, an error or a signal (the count so far).
    private func receiveRest(_ iov: UnsafeMutableBufferPointer<iovec>, _ count: Int, after done: Int, flags: UInt64) -> Int {
        var first = 0, skip = done, extra = 0
        while true {
            while first < count && skip >= iov[first].iov_len {
                skip -= iov[first].iov_len
                first += 1
            }
            if first >= count { return extra }
            iov[first].iov_base = iov[first].iov_base + skip
            iov[first].iov_len -= skip
            var m = msghdr()
            m.msg_iov = iov.baseAddress! + first
            m.msg_iovlen = count - first
            let n = try? withUnsafePointer(to: &m) { (mp: UnsafePointer<msghdr>) throws(Errno) -> Int64 in
                try retrying(HostCall.pollIn, nonBlocking: false, timeout: common.receiveTimeout) {
                    cj_host_syscall(47, UInt64(fd), HostCall.address(mp), flags, 0, 0, 0)
                }
            }
            guard let n, n > 0 else { return extra }
            extra += Int(n)
            skip = Int(n)
        }
    }
}
