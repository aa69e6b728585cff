// LoopbackDevice.swift: an in-process device pair (or one device looped to itself):
// descriptor rings between the two ends, buffers passed by index with no copy.
import CNICQueues
import Glibc
import NUMA

/// Tunables of the loopback device.
public struct LoopbackConfiguration: Sendable {
    public var queues: Int = 1
    /// Ring entries per queue and direction (a power of two).
    public var ringSize: Int = 1024
    public var mtu: Int = 1500
    public var bufferSize: Int = 2048
    public var buffers: Int = 8192
    public var headroom: Int = 128
    /// The NUMA node of the packet pool's memory (nil: where first touched).
    public var numaNode: NUMANode? = nil
    public init() {}
}

/// What both ends share: the pool, the rings, the doorbells. Freed (and the frames still
/// on the rings returned to the pool) when the last end is dropped.
final class LoopLink: @unchecked Sendable {
    let pool: PacketPool
    let queues: Int
    let directions: Int
    let memory: UnsafeMutableRawPointer
    let rings: UnsafeMutablePointer<SPSCRing>   // [direction * queues + queue]
    let doorbells: UnsafeMutablePointer<Int32>  // eventfd of the consumer of each ring

    init(directions: Int, configuration c: LoopbackConfiguration) throws(NICError) {
        guard c.queues > 0, c.ringSize > 1, c.ringSize & (c.ringSize - 1) == 0, c.mtu >= 68,
              c.mtu + ethernetHeaderLength <= c.bufferSize - c.headroom, c.bufferSize <= 16384 else {
            throw .invalidConfiguration("loopback: \(c)")
        }
        pool = try PacketPool(name: "loopback", bufferSize: c.bufferSize, count: c.buffers, headroom: c.headroom, numaNode: c.numaNode)
        queues = c.queues
        self.directions = directions
        let n = directions * c.queues
        let bytes = SPSCRing.byteCount(capacity: c.ringSize)
        memory = .allocate(byteCount: bytes * n, alignment: 64)
        rings = .allocate(capacity: n)
        doorbells = .allocate(capacity: n)
        for i in 0..<n {
            rings[i] = SPSCRing.format(memory + i * bytes, capacity: c.ringSize)
            doorbells[i] = -1
        }
        for i in 0..<n {
            let fd = cnq_eventfd()
            if fd < 0 { cleanup(); throw .system(call: "eventfd", errno: -fd, detail: "loopback doorbell") }
            doorbells[i] = fd
        }
    }

    private func cleanup() {
        let n = directions * queues
        for i in 0..<n {
            let r = rings[i]
            var (c, k) = r.available()
            while k > 0 { PoolCore.free(pool.core, unpackDescriptor(r.read(c)).index); c &+= 1; k -= 1 }
            r.release(c)
            if doorbells[i] >= 0 { close(doorbells[i]) }
        }
    }

    deinit {
        cleanup()
        memory.deallocate()
        rings.deallocate()
        doorbells.deallocate()
    }
}

/// One end of an in-process link. What one end transmits, the other receives (the same
/// end, for a device made by ``init(configuration:)``), zero-copy: the buffer moves.
public struct LoopbackDevice: ~Copyable, NetworkDevice {
    let link: LoopLink
    let tx: UnsafeMutablePointer<SPSCRing>
    let rx: UnsafeMutablePointer<SPSCRing>
    let txBells: UnsafeMutablePointer<Int32>
    let rxBells: UnsafeMutablePointer<Int32>
    let counters: QueueCounters
    public let info: DeviceInfo
    let maxFrame: Int

    /// One device whose transmissions come back to its own receive queues (a single
    /// instance's loopback network).
    public init(configuration: LoopbackConfiguration = LoopbackConfiguration()) throws(NICError) {
        let link = try LoopLink(directions: 1, configuration: configuration)
        self.init(link: link, side: 0, peer: 0, mac: .randomLocal(), configuration: configuration, name: "loopback")
    }

    /// Two connected ends sharing one pool.
    public static func pair(configuration: LoopbackConfiguration = LoopbackConfiguration()) throws(NICError) -> LoopbackPair {
        let link = try LoopLink(directions: 2, configuration: configuration)
        return LoopbackPair(
            a: LoopbackDevice(link: link, side: 0, peer: 1, mac: .randomLocal(), configuration: configuration, name: "loopback-a"),
            b: LoopbackDevice(link: link, side: 1, peer: 0, mac: .randomLocal(), configuration: configuration, name: "loopback-b"))
    }

    init(link: LoopLink, side: Int, peer: Int, mac: MACAddress, configuration c: LoopbackConfiguration, name: String) {
        self.link = link
        let q = c.queues
        tx = link.rings + side * q
        txBells = link.doorbells + side * q
        rx = link.rings + peer * q
        rxBells = link.doorbells + peer * q
        counters = QueueCounters(queues: q)
        info = DeviceInfo(name: name, backend: "loopback", mtu: c.mtu, mac: mac, queueCount: q,
                          offloads: [.checksumNotNeeded])
        maxFrame = c.mtu + ethernetHeaderLength
    }

    public var pool: PacketPool { link.pool }
    public var statistics: DeviceStatistics { counters.total }

    public func receive(queue q: Int, into batch: inout PacketBatch, limit: Int) throws(NICError) -> Int {
        try checkQueue(q)
        let r = rx[q]
        var (c, n) = r.available()
        n = min(n, limit, batch.freeSpace)
        if n <= 0 { return 0 }
        let core = link.pool.core
        var bytes = 0
        for _ in 0..<n {
            let d = unpackDescriptor(r.read(c))
            batch.appendRaw(core, d.index, d.start, d.length)
            bytes &+= Int(d.length)
            c &+= 1
        }
        r.release(c)
        counters.rx(q, packets: n, bytes: bytes)
        return n
    }

    public func transmit(queue q: Int, from batch: inout PacketBatch) throws(NICError) -> Int {
        try checkQueue(q)
        let r = tx[q]
        var (p, free) = r.reserve()   // free: slots the consumer has released
        var sent = 0, bytes = 0
        let core = link.pool.core
        while sent < free, !batch.isEmpty {
            var e = batch.entry(0)
            if e.length < ethernetHeaderLength || Int(e.length) > maxFrame {
                counters.txInvalid(q)
                batch.removeFirstAndFree()
                continue
            }
            if e.core != core {
                // A buffer from another pool: copy it into ours.
                let i = PoolCore.allocate(core)
                if i == noBuffer { break }
                let dst = PoolCore.address(core, i) + Int(core.pointee.headroom)
                dst.copyMemory(from: e.data, byteCount: Int(e.length))
                batch.removeFirstAndFree()
                e = BatchEntry(core: core, index: i, start: core.pointee.headroom, length: e.length)
            } else {
                batch.dropFirst(handedOver: 1)
            }
            r.write(p, packDescriptor(index: e.index, start: e.start, length: e.length))
            p &+= 1
            sent += 1
            bytes &+= Int(e.length)
        }
        if sent > 0 {
            r.publish(p, doorbell: txBells[q])
            counters.tx(q, packets: sent, bytes: bytes)
        }
        return sent
    }

    public func reclaim(queue: Int) throws(NICError) -> Int { 0 }   // buffers move; nothing to reclaim

    public func notificationFD(queue: Int) -> Int32 { rxBells[queue] }

    public func armNotification(queue q: Int) throws(NICError) -> Bool {
        try checkQueue(q)
        return rx[q].arm(doorbell: rxBells[q])
    }
}

/// The two ends of a loopback link (`let a = pair.a, b = pair.b` takes them apart).
@frozen
public struct LoopbackPair: ~Copyable {
    public var a: LoopbackDevice
    public var b: LoopbackDevice
}
