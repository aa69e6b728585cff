// TapDevice.swift: a TAP interface (/dev/net/tun, IFF_TAP|IFF_NO_PI, multi-queue when
// asked): frames we transmit enter the Linux stack on that interface, and frames Linux
// sends out of it are ours to receive. One read or write per frame.
import CNICQueues
import Glibc
import NUMA

/// Tunables of a TAP device.
public struct TapConfiguration: Sendable {
    /// Queue pairs (IFF_MULTI_QUEUE when more than one): one descriptor each.
    public var queues: Int = 1
    /// IFF_MULTI_QUEUE even with one queue, so that another descriptor (a forked child's)
    /// can attach a queue later: TUNSETIFF with the same name and flags adds one.
    public var multiQueue = false
    /// This end's address; a random locally administered one when nil. (The interface's
    /// own address belongs to the Linux side.)
    public var mac: MACAddress? = nil
    public var bufferSize: Int = 2048
    public var buffers: Int = 4096
    public var headroom: Int = 128
    /// The NUMA node of the packet pool's memory (nil: where first touched).
    public var numaNode: NUMANode? = nil
    /// Descriptors of queues already attached (a forked child's queue of a steered TAP,
    /// TapSteering.swift), used for the first queues instead of opening new ones; the
    /// device owns (closes) them.
    public var adoptedQueues: [Int32] = []
    public init() {}
}

/// A TAP interface, created if it does not exist (needs CAP_NET_ADMIN), and removed by
/// the kernel when the last descriptor closes unless it was made persistent.
public struct TapDevice: ~Copyable, NetworkDevice {
    public let info: DeviceInfo
    public let pool: PacketPool
    /// The interface name the kernel gave us.
    public let interfaceName: String
    let fds: UnsafeMutablePointer<Int32>
    let counters: QueueCounters
    let maxFrame: Int

    public init(name: String, configuration c: TapConfiguration = TapConfiguration()) throws(NICError) {
        guard !name.isEmpty, name.utf8.count < 16, !name.contains("/"), !name.contains(" ") else {
            throw .badSpec("tap:\(name)", reason: "an interface name has 1 to 15 characters, no '/' or space")
        }
        guard c.queues >= 1, c.queues <= 64 else { throw .invalidConfiguration("tap: \(c.queues) queues") }
        guard access("/dev/net/tun", F_OK) == 0 else {
            throw .noSuchDevice("/dev/net/tun", detail: "the kernel has no TUN/TAP support (modprobe tun)")
        }
        let pool = try PacketPool(name: "tap:\(name)", bufferSize: c.bufferSize, count: c.buffers, headroom: c.headroom, numaNode: c.numaNode)
        let fds = UnsafeMutablePointer<Int32>.allocate(capacity: c.queues)
        var actual = name
        for q in 0..<c.queues {
            var buf = [CChar](repeating: 0, count: 16)
            _ = name.withCString { strncpy(&buf, $0, 15) }
            let fd = q < c.adoptedQueues.count ? c.adoptedQueues[q] : cnq_tap_open(&buf, c.queues > 1 || c.multiQueue)
            if fd < 0 {
                for i in 0..<q { close(fds[i]) }
                fds.deallocate()
                let e = -fd
                if e == EPERM || e == EACCES {
                    throw .permissionDenied("tap:\(name)", detail: "creating or attaching a TAP interface needs root or CAP_NET_ADMIN")
                }
                if e == EBUSY || e == EINVAL {
                    throw .system(call: "ioctl(TUNSETIFF)", errno: e, detail: "tap:\(name): the name is taken by another kind of interface, or its queue settings differ")
                }
                throw NICError.from(call: "ioctl(TUNSETIFF)", errno: e, subject: "tap:\(name)")
            }
            fds[q] = fd
            actual = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        self.pool = pool
        self.fds = fds
        interfaceName = actual
        let mtu = cnq_if_mtu(actual)
        counters = QueueCounters(queues: c.queues)
        let m = mtu > 0 ? Int(mtu) : 1500
        maxFrame = m + ethernetHeaderLength
        info = DeviceInfo(name: "tap:\(actual)", backend: "tap", mtu: m, mac: c.mac ?? .randomLocal(),
                          queueCount: c.queues, offloads: [])
    }

    deinit {
        for q in 0..<info.queueCount { close(fds[q]) }
        fds.deallocate()
    }

    public var statistics: DeviceStatistics { counters.total }

    public func receive(queue q: Int, into batch: inout PacketBatch, limit: Int) throws(NICError) -> Int {
        try checkQueue(q)
        let fd = fds[q]
        let core = pool.core
        let capacity = Int(core.pointee.bufferSize - core.pointee.headroom)
        var got = 0, bytes = 0
        while got < limit, !batch.isFull {
            let i = PoolCore.allocate(core)
            if i == noBuffer { break }
            let data = PoolCore.address(core, i) + Int(core.pointee.headroom)
            let r = read(fd, data, capacity)
            if r < 0 {
                let e = errno
                PoolCore.free(core, i)
                if e == EAGAIN || e == EINTR { break }
                throw .system(call: "read", errno: e, detail: info.name)
            }
            if r < ethernetHeaderLength || r >= capacity {   // a runt, or truncated to our buffer
                PoolCore.free(core, i)
                counters.rxDropped(q)
                continue
            }
            batch.appendRaw(core, i, core.pointee.headroom, UInt32(r))
            got += 1
            bytes += r
        }
        counters.rx(q, packets: got, bytes: bytes)
        return got
    }

    public func transmit(queue q: Int, from batch: inout PacketBatch) throws(NICError) -> Int {
        try checkQueue(q)
        let fd = fds[q]
        var sent = 0, bytes = 0
        while !batch.isEmpty {
            let e = batch.entry(0)
            if e.length < ethernetHeaderLength || Int(e.length) > maxFrame {
                counters.txInvalid(q)
                batch.removeFirstAndFree()
                continue
            }
            let r = write(fd, e.data, Int(e.length))
            if r < 0 {
                let err = errno
                if err == EAGAIN || err == EINTR { break }
                counters.tx(q, packets: sent, bytes: bytes)
                if err == EIO { throw .system(call: "write", errno: err, detail: "\(info.name) is down (ip link set \(interfaceName) up)") }
                throw .system(call: "write", errno: err, detail: info.name)
            }
            batch.removeFirstAndFree()   // the kernel copied it
            sent += 1
            bytes += Int(e.length)
        }
        counters.tx(q, packets: sent, bytes: bytes)
        return sent
    }

    public func reclaim(queue: Int) throws(NICError) -> Int { 0 }   // writes copy: nothing outstanding

    public func notificationFD(queue: Int) -> Int32 { fds[queue] }

    /// The TAP descriptor is readable while frames are queued (level-triggered): there is
    /// nothing to arm, and a sleeper with frames waiting wakes at once. No system call.
    public func armNotification(queue q: Int) throws(NICError) -> Bool {
        try checkQueue(q)
        return true
    }
}
