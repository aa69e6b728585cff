// VerbsDevice.swift: ibverbs raw-packet queues for mlx5 (ConnectX) NICs, as Junction
// drives them: the pool registered as one memory region, a raw-packet QP with its CQs,
// a flow steering rule for our MAC/IPv4, receives and sends posted in batches.
import CNICQueues
import CVerbs
import NICQueuesCore
import Glibc

/// Tunables of an ibverbs device.
public struct VerbsConfiguration: Sendable {
    /// 1-based port of the device.
    public var port: Int = 1
    /// The instance's MAC: frames to it are steered to our QP. Read from the device's
    /// network interface when nil.
    public var mac: MACAddress? = nil
    /// Also match this IPv4 destination (network byte order value of a.b.c.d), when set.
    public var ipv4: UInt32? = nil
    public var bufferSize: Int = 2048
    public var buffers: Int = 8192
    public var receiveDepth: Int = 1024
    public var sendDepth: Int = 1024
    public var mtu: Int = 1500
    public init() {}
}

/// A raw-packet QP on an RDMA device (`verbs:mlx5_0`).
public struct VerbsDevice: ~Copyable, NetworkDevice {
    public let info: DeviceInfo
    public let pool: PacketPool
    let verbs: OpaquePointer
    let inDevice: UnsafeMutablePointer<UInt8>
    let addrs: UnsafeMutablePointer<UInt64>
    let lens: UnsafeMutablePointer<UInt32>
    let posted: UnsafeMutablePointer<Int>   // receives outstanding
    let receiveDepth: Int
    let counters: QueueCounters
    let maxFrame: Int

    /// RDMA devices present, by name.
    public static func deviceNames() -> [String] {
        var buf = [CChar](repeating: 0, count: 1024)
        let n = cnq_verbs_device_list(&buf, buf.count)
        if n <= 0 { return [] }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(separator: ",").map(String.init)
    }

    public init(device: String, configuration c: VerbsConfiguration = VerbsConfiguration()) throws(NICError) {
        let names = VerbsDevice.deviceNames()
        if names.isEmpty {
            throw .noRDMADevice(detail: "no RDMA device found (ibv_get_device_list lists none; verbs:\(device) needs a ConnectX NIC with the mlx5 driver)",
                                available: [])  // DeviceSpec.open fills in the backends
        }
        if !device.isEmpty && !names.contains(device) {
            throw .noSuchDevice("verbs:\(device)", detail: "RDMA devices here: \(names.joined(separator: ", "))")
        }
        guard c.receiveDepth >= 32, c.sendDepth >= 32, c.buffers >= c.receiveDepth + c.sendDepth + 64,
              c.mtu >= 68, c.mtu + ethernetHeaderLength <= c.bufferSize - 128, c.port >= 1, c.port <= 255 else {
            throw .invalidConfiguration("verbs: \(c)")
        }
        guard let mac = c.mac ?? VerbsDevice.interfaceMAC(device: device.isEmpty ? names[0] : device) else {
            throw .invalidConfiguration("verbs:\(device): no MAC address given and none found under /sys/class/infiniband")
        }
        let pool = try PacketPool(name: "verbs:\(device)", bufferSize: c.bufferSize, count: c.buffers, headroom: 128)
        var cfg = cnq_verbs_config()
        cfg.port = UInt8(c.port)
        cfg.region = pool.regionBase
        cfg.region_size = UInt64(pool.regionSize)
        cfg.rx_depth = UInt32(c.receiveDepth)
        cfg.tx_depth = UInt32(c.sendDepth)
        cfg.ipv4 = c.ipv4 ?? 0
        withUnsafeMutableBytes(of: &cfg.mac) { p in for (k, b) in mac.bytes.enumerated() { p[k] = b } }
        var msg = [CChar](repeating: 0, count: 512)
        var handle: OpaquePointer? = nil
        let r = device.withCString { name -> Int32 in
            cfg.device = name
            return cnq_verbs_open(&cfg, &handle, &msg, msg.count)
        }
        guard r == 0, let handle else {
            let text = String(decoding: msg.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw NICError.from(call: "ibverbs set-up", errno: -r, subject: "verbs:\(device)", detail: text)
        }
        self.pool = pool
        verbs = handle
        inDevice = .allocate(capacity: c.buffers)
        inDevice.initialize(repeating: 0, count: c.buffers)
        addrs = .allocate(capacity: 64)
        lens = .allocate(capacity: 64)
        posted = .allocate(capacity: 1)
        posted.initialize(to: 0)
        receiveDepth = c.receiveDepth
        counters = QueueCounters(queues: 1)
        maxFrame = c.mtu + ethernetHeaderLength
        // ConnectX verifies checksums (IBV_WC_IP_CSUM_OK) and can fill them in
        // (IBV_SEND_IP_CSUM), but buffers carry no per-frame flags yet: claim neither.
        info = DeviceInfo(name: "verbs:\(device)", backend: "verbs", mtu: c.mtu, mac: mac, queueCount: 1,
                          offloads: [])
        postReceives()
    }

    deinit {
        cnq_verbs_close(verbs)
        for i in 0..<pool.count where inDevice[i] != 0 { PoolCore.free(pool.core, UInt32(i)) }
        inDevice.deallocate(); addrs.deallocate(); lens.deallocate(); posted.deallocate()
    }

    static func interfaceMAC(device: String) -> MACAddress? {
        let dir = "/sys/class/infiniband/\(device)/device/net"
        guard let d = opendir(dir) else { return nil }
        defer { closedir(d) }
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix(".") { continue }
            guard let f = fopen("\(dir)/\(name)/address", "r") else { continue }
            defer { fclose(f) }
            var line = [CChar](repeating: 0, count: 64)
            if fgets(&line, 64, f) != nil {
                let text = String(decoding: line.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                return MACAddress(text)
            }
        }
        return nil
    }

    public var statistics: DeviceStatistics { counters.total }

    /// Keeps the receive queue full of empty buffers, posted 64 at a time.
    func postReceives() {
        let core = pool.core
        while posted.pointee < receiveDepth {
            var n = 0
            while n < min(64, receiveDepth - posted.pointee) {
                let i = PoolCore.allocate(core)
                if i == noBuffer { break }
                addrs[n] = UInt64(i) * UInt64(core.pointee.bufferSize) + UInt64(core.pointee.headroom)
                lens[n] = core.pointee.bufferSize - core.pointee.headroom
                n += 1
            }
            if n == 0 { return }
            let r = Int(cnq_verbs_post_recv(verbs, addrs, lens, UInt32(n)))
            let ok = max(0, r)
            for k in 0..<n {
                let i = UInt32(addrs[k] / UInt64(core.pointee.bufferSize))
                if k < ok { inDevice[Int(i)] = 1 } else { PoolCore.free(core, i) }
            }
            posted.pointee += ok
            if ok < n { return }
        }
    }

    public func receive(queue q: Int, into batch: inout PacketBatch, limit: Int) throws(NICError) -> Int {
        try checkQueue(q)
        let core = pool.core
        let want = min(limit, batch.freeSpace, 64)
        if want <= 0 { return 0 }
        let n = Int(cnq_verbs_poll_rx(verbs, addrs, lens, UInt32(want)))
        if n < 0 { throw .system(call: "ibv_poll_cq", errno: -Int32(n), detail: info.name) }
        var got = 0, bytes = 0
        let bs = UInt64(core.pointee.bufferSize)
        for k in 0..<n {
            let i = UInt32(addrs[k] / bs), start = UInt32(addrs[k] % bs)
            inDevice[Int(i)] = 0
            if lens[k] < UInt32(ethernetHeaderLength) {   // failed completion or runt
                PoolCore.free(core, i)
                counters.rxDropped(q)
                continue
            }
            batch.appendRaw(core, i, start, lens[k])
            got += 1
            bytes += Int(lens[k])
        }
        posted.pointee -= n
        postReceives()
        counters.rx(q, packets: got, bytes: bytes)
        return got
    }

    public func transmit(queue q: Int, from batch: inout PacketBatch) throws(NICError) -> Int {
        try checkQueue(q)
        let core = pool.core
        var n = 0, bytes = 0
        let bs = UInt64(core.pointee.bufferSize)
        while n < 64, n < batch.count {
            var e = batch.entry(n)
            if e.length < ethernetHeaderLength || Int(e.length) > maxFrame {
                counters.txInvalid(q)
                if n == 0 { batch.removeFirstAndFree(); continue }
                break
            }
            if e.core != core {
                let i = PoolCore.allocate(core)
                if i == noBuffer { break }
                (PoolCore.address(core, i) + Int(core.pointee.headroom)).copyMemory(from: e.data, byteCount: Int(e.length))
                PoolCore.free(e.core, e.index)
                e = BatchEntry(core: core, index: i, start: core.pointee.headroom, length: e.length)
                batch.setEntry(n, e)
            }
            addrs[n] = UInt64(e.index) * bs + UInt64(e.start)
            lens[n] = e.length
            bytes += Int(e.length)
            n += 1
        }
        if n == 0 { return 0 }
        let put = Int(cnq_verbs_post_send(verbs, addrs, lens, UInt32(n)))
        if put < 0 { throw .system(call: "ibv_post_send", errno: -Int32(put), detail: info.name) }
        for k in 0..<put { inDevice[Int(addrs[k] / bs)] = 1 }
        batch.dropFirst(handedOver: put)
        counters.tx(q, packets: put, bytes: put == n ? bytes : 0)
        return put
    }

    public func reclaim(queue q: Int) throws(NICError) -> Int {
        try checkQueue(q)
        let bs = UInt64(pool.core.pointee.bufferSize)
        var total = 0
        while true {
            let n = Int(cnq_verbs_poll_tx(verbs, addrs, 64))
            if n < 0 { throw .system(call: "ibv_poll_cq", errno: -Int32(n), detail: info.name) }
            for k in 0..<n {
                let i = UInt32(addrs[k] / bs)
                inDevice[Int(i)] = 0
                PoolCore.free(pool.core, i)
            }
            total += n
            if n == 0 { return total }
        }
    }

    public func notificationFD(queue: Int) -> Int32 { cnq_verbs_channel_fd(verbs) }

    public func armNotification(queue q: Int) throws(NICError) -> Bool {
        try checkQueue(q)
        let r = cnq_verbs_arm(verbs)
        if r < 0 { throw .system(call: "ibv_req_notify_cq", errno: -r, detail: info.name) }
        return r == 1
    }
}
