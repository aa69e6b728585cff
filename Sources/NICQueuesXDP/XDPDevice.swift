// XDPDevice.swift: AF_XDP on one queue of a named interface: the pool is the UMEM; the
// fill, completion, RX and TX rings come from libxdp; frames move without a copy
// between the rings and the caller; zero-copy where the driver can, copy mode (veth) else.
import CNICQueues
import CXDP
import NICQueuesCore
import Glibc

/// Tunables of an AF_XDP device.
public struct XDPConfiguration: Sendable {
    /// The interface's queue to bind to.
    public var queue: Int = 0
    /// UMEM frames (AF_XDP wants a power of two of 2048 or 4096 bytes).
    public var frameSize: Int = 2048
    public var frames: Int = 8192
    /// Entries of each ring (the fill ring gets twice as many).
    public var ringSize: Int = 2048
    /// Zero-copy (XDP_ZEROCOPY) where the driver supports it, copy mode (XDP_COPY, the
    /// kernel copies each frame; every driver, veth included) where it does not.
    public var mode: XDPMode = .automatic
    /// Generic (skb) XDP instead of the driver's native hook.
    public var genericXDP: Bool = false
    /// Load our own redirect program even where libxdp's would load.
    public var ownProgram: Bool = false
    public init() {}
}

/// How frames move between the driver and the UMEM.
public enum XDPMode: Sendable, Equatable {
    /// Zero-copy if the driver can, copy mode otherwise.
    case automatic
    /// Copy mode only.
    case copy
    /// Zero-copy only (fails on drivers without it, veth among them).
    case zeroCopy
}

/// Frames per ring operation.
let xdpBatch = 64

/// An AF_XDP socket on `interface` queue `configuration.queue` (needs root).
public struct XDPDevice: ~Copyable, NetworkDevice {
    public let info: DeviceInfo
    public let pool: PacketPool
    let xsk: OpaquePointer
    /// 1 where the kernel holds the buffer (fill, RX, TX or completion ring).
    let inKernel: UnsafeMutablePointer<UInt8>
    let addrs: UnsafeMutablePointer<UInt64>
    let lens: UnsafeMutablePointer<UInt32>
    let counters: QueueCounters
    let frameSize: UInt64
    let maxFrame: Int
    /// Who loaded the XDP program: "libxdp" or "own" (NICQueues' hand-assembled one).
    public let programSource: String
    /// True when the socket is bound zero-copy; false in copy mode.
    public let zeroCopy: Bool

    public init(interface: String, configuration c: XDPConfiguration = XDPConfiguration()) throws(NICError) {
        guard !interface.isEmpty, interface.utf8.count < 16 else {
            throw .badSpec("xdp:\(interface)", reason: "an interface name has 1 to 15 characters")
        }
        guard c.frameSize == 2048 || c.frameSize == 4096, c.frames >= 2 * c.ringSize, c.ringSize >= 64,
              c.ringSize & (c.ringSize - 1) == 0, c.queue >= 0 else {
            throw .invalidConfiguration("xdp: \(c)")
        }
        let index = cnq_if_index(interface)
        if index < 0 { throw .noSuchDevice(interface, detail: "no such network interface") }
        // Received frames start XDP_PACKET_HEADROOM (256) into a frame; ours keep 256 too.
        let pool = try PacketPool(name: "xdp:\(interface)", bufferSize: c.frameSize, count: c.frames, headroom: 256)
        var cfg = cnq_xsk_config()
        var msg = [CChar](repeating: 0, count: 512)
        var handle: OpaquePointer? = nil
        let r = interface.withCString { name -> Int32 in
            cfg.ifname = name
            cfg.queue = UInt32(c.queue)
            cfg.umem_area = pool.regionBase
            cfg.umem_size = UInt64(pool.regionSize)
            cfg.frame_size = UInt32(c.frameSize)
            cfg.ring_size = UInt32(c.ringSize)
            cfg.mode = switch c.mode {
            case .automatic: Int32(CNQ_XDP_AUTO.rawValue)
            case .copy: Int32(CNQ_XDP_COPY.rawValue)
            case .zeroCopy: Int32(CNQ_XDP_ZERO_COPY.rawValue)
            }
            cfg.skb_mode = c.genericXDP
            cfg.own_program = c.ownProgram
            return cnq_xsk_create(&cfg, &handle, &msg, msg.count)
        }
        let text = String(decoding: msg.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard r == 0, let handle else {
            if -r == EPERM || -r == EACCES { throw .permissionDenied("xdp:\(interface)", detail: "AF_XDP and loading XDP programs need root (CAP_NET_ADMIN, CAP_BPF); \(text)") }
            throw .system(call: "AF_XDP set-up", errno: -r, detail: "xdp:\(interface): \(text)")
        }
        self.pool = pool
        xsk = handle
        programSource = cnq_xsk_prog_source(handle) == Int32(CNQ_XDP_PROG_LIBXDP.rawValue) ? "libxdp" : "own"
        zeroCopy = cnq_xsk_zero_copy(handle)
        inKernel = .allocate(capacity: c.frames)
        inKernel.initialize(repeating: 0, count: c.frames)
        addrs = .allocate(capacity: xdpBatch)
        lens = .allocate(capacity: xdpBatch)
        counters = QueueCounters(queues: 1)
        frameSize = UInt64(c.frameSize)
        var mac = [UInt8](repeating: 0, count: 6)
        _ = cnq_if_hwaddr(interface, &mac)
        // Frames must fit a UMEM frame after its 256 bytes of headroom.
        let mtu = min(Int(max(cnq_if_mtu(interface), 68)), c.frameSize - 256 - ethernetHeaderLength)
        maxFrame = mtu + ethernetHeaderLength
        info = DeviceInfo(name: "xdp:\(interface):\(c.queue)", backend: "xdp", mtu: mtu, mac: MACAddress(mac),
                          queueCount: 1, offloads: [])
        refill()
    }

    deinit {
        cnq_xsk_destroy(xsk)   // the kernel lets go of every ring
        for i in 0..<pool.count where inKernel[i] != 0 { PoolCore.free(pool.core, UInt32(i)) }
        inKernel.deallocate()
        addrs.deallocate()
        lens.deallocate()
    }

    public var statistics: DeviceStatistics { counters.total }

    /// Keeps the fill ring topped up with empty frames.
    func refill() {
        let core = pool.core
        var room = Int(cnq_xsk_fill_free(xsk))
        while room > 0 {
            var n = 0
            while n < min(room, xdpBatch) {
                let i = PoolCore.allocate(core)
                if i == noBuffer { break }
                addrs[n] = UInt64(i) * frameSize
                n += 1
            }
            if n == 0 { return }
            let put = Int(cnq_xsk_fill(xsk, addrs, UInt32(n)))
            for k in 0..<n {
                let i = UInt32(addrs[k] / frameSize)
                if k < put { inKernel[Int(i)] = 1 } else { PoolCore.free(core, i) }
            }
            if put < n { return }
            room -= n
        }
    }

    public func receive(queue q: Int, into batch: inout PacketBatch, limit: Int) throws(NICError) -> Int {
        try checkQueue(q)
        refill()
        let core = pool.core
        let want = min(limit, batch.freeSpace, xdpBatch)
        if want <= 0 { return 0 }
        let n = Int(cnq_xsk_rx(xsk, addrs, lens, UInt32(want)))
        var got = 0, bytes = 0
        for k in 0..<n {
            let i = UInt32(addrs[k] / frameSize), start = UInt32(addrs[k] % frameSize)
            inKernel[Int(i)] = 0
            if lens[k] < UInt32(ethernetHeaderLength) || UInt64(start) + UInt64(lens[k]) > frameSize {
                PoolCore.free(core, i)
                counters.rxDropped(q)
                continue
            }
            batch.appendRaw(core, i, start, lens[k])
            got += 1
            bytes += Int(lens[k])
        }
        if n > 0 { refill() }
        counters.rx(q, packets: got, bytes: bytes)
        return got
    }

    public func transmit(queue q: Int, from batch: inout PacketBatch) throws(NICError) -> Int {
        try checkQueue(q)
        let core = pool.core
        var n = 0, bytes = 0
        let room = min(Int(cnq_xsk_tx_free(xsk)), xdpBatch)
        while n < room, n < batch.count {
            var e = batch.entry(n)
            if e.length < ethernetHeaderLength || Int(e.length) > maxFrame {
                // Refuse it: move it out of the way by swapping it to the front later.
                counters.txInvalid(q)
                if n == 0 { batch.removeFirstAndFree(); continue }
                break   // send what is ready; the bad frame is dropped on the next call
            }
            if e.core != core {
                let i = PoolCore.allocate(core)
                if i == noBuffer { break }
                (PoolCore.address(core, i) + 256).copyMemory(from: e.data, byteCount: Int(e.length))
                PoolCore.free(e.core, e.index)
                e = BatchEntry(core: core, index: i, start: 256, length: e.length)
                batch.setEntry(n, e)
            }
            addrs[n] = UInt64(e.index) * frameSize + UInt64(e.start)
            lens[n] = e.length
            bytes += Int(e.length)
            n += 1
        }
        if n == 0 { return 0 }
        let put = Int(cnq_xsk_tx(xsk, addrs, lens, UInt32(n)))   // == n: room was checked
        for k in 0..<put { inKernel[Int(addrs[k] / frameSize)] = 1 }
        batch.dropFirst(handedOver: put)
        counters.tx(q, packets: put, bytes: put == n ? bytes : 0)
        return put
    }

    public func reclaim(queue q: Int) throws(NICError) -> Int {
        try checkQueue(q)
        var total = 0
        while true {
            let n = Int(cnq_xsk_complete(xsk, addrs, UInt32(xdpBatch)))
            for k in 0..<n {
                let i = UInt32(addrs[k] / frameSize)
                inKernel[Int(i)] = 0
                PoolCore.free(pool.core, i)
            }
            total += n
            if n < xdpBatch { return total }
        }
    }

    public func notificationFD(queue: Int) -> Int32 { cnq_xsk_fd(xsk) }

    public func armNotification(queue q: Int) throws(NICError) -> Bool {
        try checkQueue(q)
        refill()
        cnq_xsk_rx_wakeup(xsk)
        return !cnq_xsk_rx_ready(xsk)
    }
}
