// SharedMemoryDevice.swift: a link between two processes through one shared-memory file:
// each side's buffers, and per queue and direction a descriptor ring and a completion
// ring (both single-producer/single-consumer); eventfd doorbells only when a side sleeps.
import CNICQueues
import Glibc
import UThreads

/// Tunables of a shared-memory link. The side that creates the file (the first to
/// arrive) decides the geometry; the other side adopts it.
public struct SharedMemoryConfiguration: Sendable {
    public var queues: Int = 1
    /// Ring entries per queue and direction (a power of two).
    public var ringSize: Int = 1024
    public var mtu: Int = 1500
    public var bufferSize: Int = 2048
    /// Buffers each side owns in the file.
    public var buffersPerSide: Int = 8192
    public var headroom: Int = 128
    /// How long `open` waits for the other side.
    public var connectTimeout: Duration = .seconds(30)
    public init() {}
}

// File layout: a 4 KiB header, the rings, then side 0's and side 1's buffers.
let shmMagic: UInt64 = 0x3130_4D48_5351_4E4A   // "JNQSHM01"
let shmVersion: UInt32 = 1
let shmHeaderSize = 4096
/// Empty polls of receive between two checks that the peer is still there.
let peerCheckInterval: UInt32 = 4096

private enum HeaderField: Int {
    case magic = 0, version = 8, queues = 12, ringSize = 16, bufferSize = 20, buffersPerSide = 24
    case headroom = 28, mtu = 32, pid0 = 36, pid1 = 40, mac0 = 48, mac1 = 56, totalSize = 64
}

private struct Geometry {
    var queues, ringSize, bufferSize, buffersPerSide, headroom, mtu: Int
    var ringBytes: Int { (SPSCRing.byteCount(capacity: ringSize) + 63) & ~63 }
    var ringsOffset: Int { shmHeaderSize }
    var buffersOffset: Int { (ringsOffset + 4 * queues * ringBytes + 4095) & ~4095 }
    var regionBytes: Int { bufferSize * buffersPerSide }
    var totalSize: Int { buffersOffset + 2 * ((regionBytes + 4095) & ~4095) }
    func regionOffset(side: Int) -> Int { buffersOffset + side * ((regionBytes + 4095) & ~4095) }
    /// Ring `kind` (0 descriptors, 1 completions) for frames sent by `sender` on queue `q`.
    func ringOffset(sender: Int, queue q: Int, kind: Int) -> Int { ringsOffset + ((sender * queues + q) * 2 + kind) * ringBytes }
}

/// Per-side hot state, in memory this device owns.
struct ShmQueueState {
    var tx: SPSCRing          // our descriptors to the peer
    var txDone: SPSCRing      // the peer's completions of them
    var rx: SPSCRing          // the peer's descriptors to us
    var rxDone: SPSCRing      // our completions of them
    var peerBell: Int32       // the peer's eventfd for this queue
    var ownBell: Int32
    var notify: Int32         // epoll over ownBell and the socket
    var idlePolls: UInt32
    var arms: UInt32
}

/// One side of a shared-memory link (`shm:PATH`). The first process to open PATH
/// creates the file and waits for the second; they meet through a unix socket in the
/// abstract namespace that carries the file and the doorbell descriptors and tells
/// each side when the other exits.
public struct SharedMemoryDevice: ~Copyable, NetworkDevice {
    public let info: DeviceInfo
    public let pool: PacketPool
    /// 0 for the side that created the file, 1 for the other.
    public let side: Int
    let path: String
    let socket: FileDescriptor
    let fds: [Int32]                               // our eventfds and epoll fds, closed in deinit
    let queues: UnsafeMutablePointer<ShmQueueState>
    let peerBase: UnsafeMutableRawPointer          // the peer's buffers
    let peerBuffers: UInt32
    let bufferSize: UInt32
    let counters: QueueCounters
    let dead: UnsafeMutablePointer<Bool>
    let maxFrame: Int

    /// Opens (creating, or joining) the link at `path`; waits for the peer up to the
    /// configuration's `connectTimeout`.
    public init(path: String, configuration c: SharedMemoryConfiguration = SharedMemoryConfiguration()) throws(NICError) {
        guard !path.isEmpty else { throw .badSpec("shm:", reason: "shm needs a file path, e.g. shm:/dev/shm/junction-link") }
        guard c.queues > 0, c.queues <= 8, c.ringSize > 1, c.ringSize & (c.ringSize - 1) == 0, c.mtu >= 68,
              c.mtu + ethernetHeaderLength <= c.bufferSize - c.headroom, c.bufferSize <= 16384, c.buffersPerSide >= 64 else {
            throw .invalidConfiguration("shm: \(c)")
        }
        let name = SharedMemoryDevice.rendezvousName(path)
        let deadline = MonotonicInstant.now.advanced(by: max(.zero, c.connectTimeout))

        // Rendezvous: the first to listen is side 0.
        var side = 0
        var conn: Int32 = -1
        var fileFD: Int32 = -1
        var listenFD = cnq_unix_listen(name)
        if listenFD == -EADDRINUSE {
            side = 1
            conn = cnq_unix_connect(name)
            if conn < 0 { throw NICError.from(call: "connect", errno: -conn, subject: "shm:\(path)") }
        } else if listenFD < 0 {
            throw NICError.from(call: "bind", errno: -listenFD, subject: "shm:\(path)")
        }
        let g: Geometry
        var mapping: Mapping? = nil
        var ownBells: [Int32] = []
        var peerBells: [Int32] = []
        var renamed = false
        func closeAll() {
            if renamed { unlink(path) }
            for fd in ownBells + peerBells where fd >= 0 { close(fd) }
            if fileFD >= 0 { close(fileFD) }
            if listenFD >= 0 { close(listenFD) }
        }
        do throws(NICError) {
            if side == 0 {
                g = Geometry(queues: c.queues, ringSize: c.ringSize, bufferSize: c.bufferSize,
                             buffersPerSide: c.buffersPerSide, headroom: c.headroom, mtu: c.mtu)
                // A new file renamed over PATH: a previous link's mappings keep their own inode.
                let tmp = path + ".\(getpid()).tmp"
                fileFD = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
                if fileFD < 0 {
                    let e = errno
                    if e == EACCES || e == EPERM || e == EROFS { throw .permissionDenied("shm:\(path)", detail: "cannot create the link file \(tmp)") }
                    throw NICError.from(call: "open", errno: e, subject: path)
                }
                if ftruncate(fileFD, off_t(g.totalSize)) < 0 { let e = errno; unlink(tmp); throw NICError.from(call: "ftruncate", errno: e, subject: path) }
                let m: Mapping
                do throws(NICError) { m = try Mapping.shared(fd: fileFD, size: g.totalSize, what: path) } catch { unlink(tmp); throw error }
                SharedMemoryDevice.format(m.base, g)
                mapping = consume m
                if rename(tmp, path) < 0 { let e = errno; unlink(tmp); throw NICError.from(call: "rename", errno: e, subject: path) }
                renamed = true
                for _ in 0..<g.queues { ownBells.append(try Host.shim(cnq_eventfd(), call: "eventfd", subject: path)) }
                // Wait for the peer.
                let left = Host.millisecondsLeft(until: deadline)
                if !Host.waitReadable(listenFD, timeoutMs: left) { throw .timeout("shm:\(path): no peer joined within \(c.connectTimeout)") }
                conn = cnq_accept(listenFD)
                if conn < 0 { throw .system(call: "accept4", errno: -conn, detail: "shm:\(path)") }
                close(listenFD); listenFD = -1
                var hello = SharedMemoryDevice.hello(side: 0)
                let sent = cnq_send_fds(conn, [fileFD] + ownBells, Int32(1 + ownBells.count), &hello, 8)
                if sent < 0 { throw .peerGone("shm:\(path)") }
                peerBells = try SharedMemoryDevice.receiveHello(conn, expect: g.queues, deadline: deadline, path: path).bells
            } else {
                let r = try SharedMemoryDevice.receiveHello(conn, expect: nil, deadline: deadline, path: path)
                guard r.bells.count >= 2 else { throw .badFile(path, detail: "the creator sent no file") }
                fileFD = r.bells[0]
                peerBells = Array(r.bells.dropFirst())
                var st = stat()
                if fstat(fileFD, &st) < 0 { throw .system(call: "fstat", errno: errno, detail: path) }
                guard st.st_size >= shmHeaderSize else { throw .badFile(path, detail: "\(st.st_size) bytes is too short for a link file") }
                let header = try Mapping.shared(fd: fileFD, size: shmHeaderSize, what: path)
                g = try SharedMemoryDevice.readGeometry(header.base, fileSize: Int(st.st_size), path: path)
                guard peerBells.count == g.queues else { throw .badFile(path, detail: "\(peerBells.count) doorbells for \(g.queues) queues") }
                mapping = try Mapping.shared(fd: fileFD, size: g.totalSize, what: path)
                for _ in 0..<g.queues { ownBells.append(try Host.shim(cnq_eventfd(), call: "eventfd", subject: path)) }
                var hello = SharedMemoryDevice.hello(side: 1)
                if cnq_send_fds(conn, ownBells, Int32(ownBells.count), &hello, 8) < 0 { throw .peerGone("shm:\(path)") }
            }
        } catch {
            closeAll()
            if conn >= 0 { close(conn) }
            throw error
        }
        close(fileFD); fileFD = -1
        _ = fcntl(conn, F_SETFL, fcntl(conn, F_GETFL) | O_NONBLOCK)

        guard let mapped = mapping.take() else { fatalError("shm: mapping missing after set-up") }
        let base = mapped.base
        let header = base
        header.storeBytes(of: UInt32(getpid()), toByteOffset: side == 0 ? HeaderField.pid0.rawValue : HeaderField.pid1.rawValue, as: UInt32.self)
        let mac = MACAddress.randomLocal()
        header.storeBytes(of: mac.raw, toByteOffset: side == 0 ? HeaderField.mac0.rawValue : HeaderField.mac1.rawValue, as: UInt64.self)

        self.side = side
        self.path = path
        socket = FileDescriptor(owning: conn)
        let peer = 1 - side
        // The pool owns the whole mapping (unmapped when the pool goes); its buffers are ours.
        pool = PacketPool(name: "shm:\(path)", region: mapped.release(), regionSize: g.totalSize, owns: true,
                          buffers: base + g.regionOffset(side: side), bufferSize: g.bufferSize,
                          count: g.buffersPerSide, headroom: g.headroom)
        peerBase = base + g.regionOffset(side: peer)
        peerBuffers = UInt32(g.buffersPerSide)
        bufferSize = UInt32(g.bufferSize)
        queues = .allocate(capacity: g.queues)
        var owned: [Int32] = ownBells
        for q in 0..<g.queues {
            func ring(_ sender: Int, _ kind: Int) -> SPSCRing {
                SPSCRing(base: base + g.ringOffset(sender: sender, queue: q, kind: kind), capacity: UInt32(g.ringSize))
            }
            let ep = epoll_create1(Int32(EPOLL_CLOEXEC))
            for fd in [ownBells[q], conn] where ep >= 0 {
                var ev = epoll_event()
                ev.events = EPOLLIN.rawValue
                ev.data.fd = fd
                _ = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)
            }
            owned.append(ep)
            queues[q] = ShmQueueState(tx: ring(side, 0), txDone: ring(side, 1), rx: ring(peer, 0), rxDone: ring(peer, 1),
                                      peerBell: peerBells[q], ownBell: ownBells[q], notify: ep, idlePolls: 0, arms: 0)
        }
        fds = owned + peerBells
        counters = QueueCounters(queues: g.queues)
        dead = .allocate(capacity: 1)
        dead.initialize(to: false)
        maxFrame = g.mtu + ethernetHeaderLength
        info = DeviceInfo(name: "shm:\(path)", backend: "shm", mtu: g.mtu, mac: mac, queueCount: g.queues,
                          offloads: [.checksumNotNeeded])
    }

    deinit {
        // Our buffers still on the rings (never consumed, or completed but not reclaimed).
        for q in 0..<info.queueCount {
            let s = queues[q]
            var (c, n) = s.txDone.available()
            while n > 0 { freeOwn(UInt32(truncatingIfNeeded: s.txDone.read(c))); c &+= 1; n -= 1 }
            s.txDone.release(c)
            // Not yet taken by the peer: if it still reads them, its mapping of the file
            // keeps the bytes; nothing in this process uses them again.
            var (c2, n2) = s.tx.available()
            while n2 > 0 { freeOwn(unpackDescriptor(s.tx.read(c2)).index); c2 &+= 1; n2 -= 1 }
        }
        for fd in fds { close(fd) }
        if side == 0 { unlink(path) }
        queues.deallocate()
        dead.deallocate()
    }

    private func freeOwn(_ index: UInt32) {
        if index < UInt32(pool.count) { PoolCore.free(pool.core, index) }
    }

    public var statistics: DeviceStatistics { counters.total }
    /// False once the peer has been seen to exit or close the link.
    public var peerAlive: Bool { !dead.pointee && !checkPeerGone() }

    // MARK: data path

    public func receive(queue q: Int, into batch: inout PacketBatch, limit: Int) throws(NICError) -> Int {
        try checkQueue(q)
        let s = queues + q
        let rx = s.pointee.rx, done = s.pointee.rxDone
        var (c, n) = rx.available()
        if n == 0 {
            s.pointee.idlePolls &+= 1
            if s.pointee.idlePolls % peerCheckInterval == 0, checkPeerGone() { throw .peerGone(info.name) }
            return 0
        }
        var (dp, dfree) = done.reserve()
        n = min(n, limit, batch.freeSpace, dfree)
        let core = pool.core
        var got = 0, bytes = 0, k = 0
        while k < n {
            let d = unpackDescriptor(rx.read(c))
            // The peer's descriptor is checked before we touch its buffer.
            if d.index < peerBuffers, d.start &+ d.length <= bufferSize, Int(d.length) <= Int(core.pointee.bufferSize - core.pointee.headroom) {
                let i = PoolCore.allocate(core)
                if i == noBuffer { break }   // leave the rest on the ring
                let dst = PoolCore.address(core, i) + Int(core.pointee.headroom)
                dst.copyMemory(from: peerBase + Int(d.index) * Int(bufferSize) + Int(d.start), byteCount: Int(d.length))
                batch.appendRaw(core, i, core.pointee.headroom, d.length)
                got += 1
                bytes &+= Int(d.length)
            } else {
                counters.rxDropped(q)
            }
            if d.index < peerBuffers { done.write(dp, UInt64(d.index)); dp &+= 1; dfree -= 1 }
            c &+= 1
            k += 1
        }
        rx.release(c)
        done.publish(dp, doorbell: -1)   // completions wake nobody: the sender polls for them
        counters.rx(q, packets: got, bytes: bytes)
        return got
    }

    public func transmit(queue q: Int, from batch: inout PacketBatch) throws(NICError) -> Int {
        try checkQueue(q)
        let s = queues + q
        let tx = s.pointee.tx
        var (p, free) = tx.reserve()
        if free == 0 {
            // A full ring: the peer is slow, or dead. Ask the socket now and then.
            s.pointee.idlePolls &+= 1
            if s.pointee.idlePolls % 64 == 1, checkPeerGone() { throw .peerGone(info.name) }
            return 0
        }
        let core = pool.core
        var sent = 0, bytes = 0
        while sent < free, !batch.isEmpty {
            var e = batch.entry(0)
            if e.length < ethernetHeaderLength || Int(e.length) > maxFrame {
                counters.txInvalid(q)
                batch.removeFirstAndFree()
                continue
            }
            if e.core != core {
                let i = PoolCore.allocate(core)
                if i == noBuffer { break }
                (PoolCore.address(core, i) + Int(core.pointee.headroom)).copyMemory(from: e.data, byteCount: Int(e.length))
                batch.removeFirstAndFree()
                e = BatchEntry(core: core, index: i, start: core.pointee.headroom, length: e.length)
            } else {
                batch.dropFirst(handedOver: 1)
            }
            tx.write(p, packDescriptor(index: e.index, start: e.start, length: e.length))
            p &+= 1
            sent += 1
            bytes &+= Int(e.length)
        }
        if sent > 0 {
            tx.publish(p, doorbell: s.pointee.peerBell)
            counters.tx(q, packets: sent, bytes: bytes)
        }
        return sent
    }

    public func reclaim(queue q: Int) throws(NICError) -> Int {
        try checkQueue(q)
        let done = queues[q].txDone
        var (c, n) = done.available()
        let total = n
        while n > 0 {
            freeOwn(UInt32(truncatingIfNeeded: done.read(c)))
            c &+= 1
            n -= 1
        }
        if total > 0 { done.release(c) }
        return total
    }

    public func notificationFD(queue: Int) -> Int32 { queues[queue].notify }

    public func armNotification(queue q: Int) throws(NICError) -> Bool {
        try checkQueue(q)
        // A dead peer's socket wakes a sleeper (it is in the epoll set); ask it on the
        // first arm and every 64th after, not on every idle poll.
        let s = queues + q
        s.pointee.arms &+= 1
        if s.pointee.arms % 64 == 1, checkPeerGone() {
            if queues[q].rx.available().count > 0 { return false }   // deliver what it sent first
            throw .peerGone(info.name)
        }
        return queues[q].rx.arm(doorbell: queues[q].ownBell)
    }

    /// Polls the rendezvous socket: hang-up or end-of-file means the peer is gone.
    func checkPeerGone() -> Bool {
        if dead.pointee { return true }
        if cnq_peer_hung_up(socket.raw) { dead.pointee = true }
        return dead.pointee
    }

    // MARK: set-up

    /// The abstract socket name for `path`: the absolute path, or its FNV-1a hash when
    /// too long for `sun_path`.
    static func rendezvousName(_ path: String) -> String {
        var absolute = path
        if !path.hasPrefix("/") {
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX))
            if getcwd(&buf, buf.count) != nil {
                absolute = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + path
            }
        }
        if absolute.utf8.count <= 90 { return "junction-shm:" + absolute }
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in absolute.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return "junction-shm:#" + String(h, radix: 16)
    }

    private static func hello(side: Int) -> UInt64 { UInt64(getpid()) << 8 | UInt64(side) | 0x4A00_0000_0000_0000 }

    private static func receiveHello(_ conn: Int32, expect: Int?, deadline: MonotonicInstant, path: String) throws(NICError) -> (bells: [Int32], pid: Int32) {
        let left = Host.millisecondsLeft(until: deadline)
        if !Host.waitReadable(conn, timeoutMs: left) { throw .timeout("shm:\(path): the peer did not finish the handshake") }
        var fds = [Int32](repeating: -1, count: 9)
        var n: Int32 = 0
        var hello: UInt64 = 0
        let r = cnq_recv_fds(conn, &fds, 9, &n, &hello, 8)
        if r <= 0 { throw .peerGone("shm:\(path) (during the handshake)") }
        let got = Array(fds[0..<Int(n)])
        if r != 8 || hello >> 56 != 0x4A || (expect != nil && got.count != expect!) {
            for fd in got { close(fd) }
            throw .badFile(path, detail: "the peer is not a NICQueues shared-memory link (bad handshake)")
        }
        return (got, Int32(truncatingIfNeeded: (hello >> 8) & 0xFFFF_FFFF))
    }

    private static func format(_ base: UnsafeMutableRawPointer, _ g: Geometry) {
        base.initializeMemory(as: UInt8.self, repeating: 0, count: shmHeaderSize)
        func put32(_ f: HeaderField, _ v: Int) { base.storeBytes(of: UInt32(v), toByteOffset: f.rawValue, as: UInt32.self) }
        put32(.version, Int(shmVersion)); put32(.queues, g.queues); put32(.ringSize, g.ringSize)
        put32(.bufferSize, g.bufferSize); put32(.buffersPerSide, g.buffersPerSide); put32(.headroom, g.headroom)
        put32(.mtu, g.mtu)
        base.storeBytes(of: UInt64(g.totalSize), toByteOffset: HeaderField.totalSize.rawValue, as: UInt64.self)
        for s in 0..<2 { for q in 0..<g.queues { for k in 0..<2 {
            _ = SPSCRing.format(base + g.ringOffset(sender: s, queue: q, kind: k), capacity: g.ringSize)
        } } }
        cnq_fence()
        base.storeBytes(of: shmMagic, toByteOffset: HeaderField.magic.rawValue, as: UInt64.self)
    }

    private static func readGeometry(_ base: UnsafeMutableRawPointer, fileSize: Int, path: String) throws(NICError) -> Geometry {
        func get32(_ f: HeaderField) -> Int { Int(base.load(fromByteOffset: f.rawValue, as: UInt32.self)) }
        guard base.load(fromByteOffset: 0, as: UInt64.self) == shmMagic else { throw .badFile(path, detail: "not a NICQueues link file (bad magic)") }
        guard get32(.version) == Int(shmVersion) else { throw .badFile(path, detail: "link file version \(get32(.version)), expected \(shmVersion)") }
        let g = Geometry(queues: get32(.queues), ringSize: get32(.ringSize), bufferSize: get32(.bufferSize),
                         buffersPerSide: get32(.buffersPerSide), headroom: get32(.headroom), mtu: get32(.mtu))
        guard g.queues > 0, g.queues <= 8, g.ringSize > 1, g.ringSize & (g.ringSize - 1) == 0, g.bufferSize >= 256,
              g.bufferSize <= 16384, g.buffersPerSide > 0, g.headroom < g.bufferSize, g.mtu >= 68,
              g.mtu + ethernetHeaderLength <= g.bufferSize - g.headroom,
              Int(base.load(fromByteOffset: HeaderField.totalSize.rawValue, as: UInt64.self)) == g.totalSize,
              g.totalSize <= fileSize else {
            throw .badFile(path, detail: "inconsistent link file header (truncated or corrupt: \(fileSize) bytes)")
        }
        return g
    }
}
