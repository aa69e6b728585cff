// TapDevice.swift: a TAP interface (/dev/net/tun, IFF_TAP|IFF_NO_PI, multi-queue when
// asked), by default with IFF_VNET_HDR and the kernel's offloads: frames we transmit
// enter the Linux stack on that interface (TCP ones with partial checksums, up to 64 KiB
// that the kernel segments), and frames Linux sends out of it are ours to receive (GRO'd
// up to 64 KiB, checksums partial or verified). Reads and writes loop until EAGAIN, so
// one wake-up takes a batch.
import CNICQueues
import Glibc
import NUMA
import NetProtocols

// Tunables.
/// Buffer size with offloads: a 64 KiB IP packet, its Ethernet and virtio-net headers and
/// the pool's headroom (a GRO'd frame is at most 14 + 65535 bytes).
let tapOffloadBufferSize = 69_632
/// Buffers with offloads: TCP copies frames into its byte rings at once, so few are out
/// at a time; 1024 x 68 KiB is 68 MiB of address space, touched as used.
let tapOffloadBuffers = 1024
/// Largest frame we hand the kernel for segmentation: the largest IPv4 packet.
let tapSegmentationLimit = ethernetHeaderLength + 65535

/// Tunables of a TAP device.
public struct TapConfiguration: Sendable {
    /// Queue pairs (IFF_MULTI_QUEUE when more than one): one descriptor each.
    public var queues: Int = 1
    /// IFF_MULTI_QUEUE even with one queue, so that another descriptor (a forked child's)
    /// can attach a queue later: TUNSETIFF with the same name and flags adds one.
    public var multiQueue = false
    /// IFF_VNET_HDR with checksum offload, and TSO/GRO when the buffers take 64 KiB
    /// frames. Every descriptor of one interface must agree (the kernel keeps one setting).
    public var offloads = true
    /// This end's address; a random locally administered one when nil. (The interface's
    /// own address belongs to the Linux side.)
    public var mac: MACAddress? = nil
    /// Bytes per buffer; nil: 68 KiB with offloads (64 KiB segments), else 2048.
    public var bufferSize: Int? = nil
    /// Buffers in the pool; nil: 1024 with offloads, else 4096.
    public var buffers: Int? = nil
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
    /// Frames carry a virtio_net_hdr (IFF_VNET_HDR).
    let vnet: Bool
    /// TUN_F_CSUM took: we send TCP checksums partial, and receive them partial too.
    let checksumOffload: Bool

    public init(name: String, configuration c: TapConfiguration = TapConfiguration()) throws(NICError) {
        guard !name.isEmpty, name.utf8.count < 16, !name.contains("/"), !name.contains(" ") else {
            throw .badSpec("tap:\(name)", reason: "an interface name has 1 to 15 characters, no '/' or space")
        }
        guard c.queues >= 1, c.queues <= 64 else { throw .invalidConfiguration("tap: \(c.queues) queues") }
        guard access("/dev/net/tun", F_OK) == 0 else {
            throw .noSuchDevice("/dev/net/tun", detail: "the kernel has no TUN/TAP support (modprobe tun)")
        }
        guard !c.offloads || c.headroom >= VirtioNetHeader.length else {
            throw .invalidConfiguration("tap: \(c.headroom) bytes of headroom leave no room for the virtio-net header")
        }
        let bufferSize = c.bufferSize ?? (c.offloads ? tapOffloadBufferSize : 2048)
        let pool = try PacketPool(name: "tap:\(name)", bufferSize: bufferSize, count: c.buffers ?? (c.offloads ? tapOffloadBuffers : 4096),
                                  headroom: c.headroom, numaNode: c.numaNode)
        let fds = UnsafeMutablePointer<Int32>.allocate(capacity: c.queues)
        var actual = name
        for q in 0..<c.queues {
            var buf = [CChar](repeating: 0, count: 16)
            _ = name.withCString { strncpy(&buf, $0, 15) }
            let fd = q < c.adoptedQueues.count ? c.adoptedQueues[q] : cnq_tap_open(&buf, c.queues > 1 || c.multiQueue, c.offloads)
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
        vnet = c.offloads
        // Segments both ways only when a buffer takes a 64 KiB frame after its header;
        // else checksums alone. The setting is the interface's: any descriptor sets it.
        let large = c.offloads && pool.frameCapacity >= tapSegmentationLimit + VirtioNetHeader.length
        var flags = UInt32(CNQ_TUN_F_CSUM)
        if large { flags |= UInt32(CNQ_TUN_F_TSO4 | CNQ_TUN_F_TSO6) }
        checksumOffload = c.offloads && cnq_tap_set_offload(fds[0], flags) == 0
        var offloads: Offloads = []
        if checksumOffload { offloads = [.rxChecksum, .txChecksum] }
        if checksumOffload && large { offloads.insert(.tcpSegmentation) }
        info = DeviceInfo(name: "tap:\(actual)", backend: "tap", mtu: m, mac: c.mac ?? .randomLocal(),
                          queueCount: c.queues, offloads: offloads,
                          segmentationLimit: offloads.contains(.tcpSegmentation) ? tapSegmentationLimit : 0)
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
        // With IFF_VNET_HDR the kernel writes the header into the headroom, the frame
        // where the stack expects it.
        let header = vnet ? VirtioNetHeader.length : 0
        let start = Int(core.pointee.headroom) - header
        let capacity = Int(core.pointee.bufferSize) - start
        var got = 0, bytes = 0
        while got < limit, !batch.isFull {
            let i = PoolCore.allocate(core)
            if i == noBuffer { break }
            let data = PoolCore.address(core, i) + start
            let r = read(fd, data, capacity)
            if r < 0 {
                let e = errno
                PoolCore.free(core, i)
                if e == EAGAIN || e == EINTR { break }
                throw .system(call: "read", errno: e, detail: info.name)
            }
            if r - header < ethernetHeaderLength || r >= capacity {   // a runt, or truncated to our buffer
                PoolCore.free(core, i)
                counters.rxDropped(q)
                continue
            }
            if vnet && !admit(UnsafeRawBufferPointer(start: data, count: r), queue: q) {
                PoolCore.free(core, i)
                continue
            }
            batch.appendRaw(core, i, UInt32(start + header), UInt32(r - header))
            got += 1
            bytes += r - header
        }
        counters.rx(q, packets: got, bytes: bytes)
        return got
    }

    /// Whether a received frame (virtio-net header first) goes to the stack; what is
    /// refused is counted (``DeviceStatistics/rxMalformed``, ``DeviceStatistics/rxChecksumErrors``).
    @inline(__always)
    package func admit(_ bytes: UnsafeRawBufferPointer, queue q: Int) -> Bool {
        switch Self.acceptReceived(bytes, checksumOffload: checksumOffload) {
        case .accept(let coalesced):
            if coalesced { counters.rxCoalesced(q) }
            return true
        case .malformed:
            counters.rxMalformed(q)
            return false
        case .badChecksum:
            counters.rxChecksumError(q)
            return false
        }
    }

    /// What becomes of a received frame (virtio-net header first).
    package enum Reception: Equatable {
        /// Deliver; `coalesced`: a GRO'd frame longer than the MTU.
        case accept(coalesced: Bool)
        case malformed(VirtioNetHeaderError)
        /// Checked in software (the kernel vouched for nothing) and wrong.
        case badChecksum
    }

    /// Checks a received frame's virtio-net header. With checksum offload the device
    /// promises the stack verified checksums (``Offloads/rxChecksum``): a partial
    /// (NEEDS_CSUM, from this host, never on a wire) or DATA_VALID frame is taken on the
    /// kernel's word, any other IPv4 frame is verified here.
    package static func acceptReceived(_ bytes: UnsafeRawBufferPointer, checksumOffload: Bool) -> Reception {
        let h: VirtioNetHeader
        do { h = try VirtioNetHeader(parsing: bytes) } catch { return .malformed(error) }
        let frame = UnsafeRawBufferPointer(rebasing: bytes[VirtioNetHeader.length...])
        if checksumOffload && h.flags & (VirtioNetHeader.needsChecksum | VirtioNetHeader.dataValid) == 0
            && !Self.checksumsVerify(frame) {
            return .badChecksum
        }
        return .accept(coalesced: h.segmentationType != VirtioNetHeader.gsoNone)
    }

    /// Whether an Ethernet frame's IPv4 header checksum, and its TCP, UDP or ICMP checksum
    /// when it is not a fragment, verify (a frame of another kind, or too short to be
    /// IPv4, passes: the stack's parsers refuse what is malformed).
    package static func checksumsVerify(_ frame: UnsafeRawBufferPointer) -> Bool {
        let ip = ethernetHeaderLength
        guard frame.count >= ip + 20, frame[12] == 0x08, frame[13] == 0x00 else { return true }
        let ihl = Int(frame[ip] & 0x0F) * 4
        let total = Int(frame[ip + 2]) << 8 | Int(frame[ip + 3])
        guard frame[ip] >> 4 == 4, ihl >= 20, total >= ihl, frame.count >= ip + total else { return true }
        if !InternetChecksum.verifies(UnsafeRawBufferPointer(rebasing: frame[ip..<(ip + ihl)])) { return false }
        if frame[ip + 6] & 0x3F != 0 || frame[ip + 7] != 0 { return true }   // a fragment
        let payload = UnsafeRawBufferPointer(rebasing: frame[(ip + ihl)..<(ip + total)])
        let proto = frame[ip + 9]
        switch proto {
        case 1:
            return InternetChecksum.verifies(payload)
        case 6, 17:
            if proto == 17 && payload.count >= 8 && payload[6] == 0 && payload[7] == 0 { return true }   // no UDP checksum
            let source = IPv4Address(rawValue: UInt32(frame[ip + 12]) << 24 | UInt32(frame[ip + 13]) << 16 | UInt32(frame[ip + 14]) << 8 | UInt32(frame[ip + 15]))
            let destination = IPv4Address(rawValue: UInt32(frame[ip + 16]) << 24 | UInt32(frame[ip + 17]) << 16 | UInt32(frame[ip + 18]) << 8 | UInt32(frame[ip + 19]))
            var sum = InternetChecksum.pseudoHeader(source: source, destination: destination,
                                                    protocol: proto == 6 ? .tcp : .udp, length: payload.count)
            sum.add(payload)
            return sum.folded == 0xFFFF
        default:
            return true
        }
    }

    public func transmit(queue q: Int, from batch: inout PacketBatch) throws(NICError) -> Int {
        try checkQueue(q)
        let fd = fds[q]
        let limit = info.offloads.contains(.tcpSegmentation) ? info.segmentationLimit : maxFrame
        var sent = 0, bytes = 0
        while !batch.isEmpty {
            let e = batch.entry(0)
            if e.length < ethernetHeaderLength || Int(e.length) > limit {
                counters.txInvalid(q)
                batch.removeFirstAndFree()
                continue
            }
            let r: Int
            var segmented = false
            if vnet {
                let frame = UnsafeRawBufferPointer(start: e.data, count: Int(e.length))
                let h = VirtioNetHeader.forTransmit(frame, mtu: info.mtu, checksumOffload: checksumOffload)
                if Int(e.length) > maxFrame && h.segmentationType == VirtioNetHeader.gsoNone {
                    counters.txInvalid(q)   // longer than the MTU and not TCP: nothing cuts it
                    batch.removeFirstAndFree()
                    continue
                }
                segmented = h.segmentationType != VirtioNetHeader.gsoNone
                r = Self.writeFrame(fd, header: h, frame: e)
            } else {
                r = Glibc.write(fd, e.data, Int(e.length))
            }
            if r < 0 {
                let err = errno
                if err == EAGAIN || err == EINTR { break }
                counters.tx(q, packets: sent, bytes: bytes)
                if err == EIO { throw .system(call: "write", errno: err, detail: "\(info.name) is down (ip link set \(interfaceName) up)") }
                throw .system(call: "write", errno: err, detail: info.name)
            }
            if segmented { counters.txSegmented(q) }
            batch.removeFirstAndFree()   // the kernel copied it
            sent += 1
            bytes += Int(e.length)
        }
        counters.tx(q, packets: sent, bytes: bytes)
        return sent
    }

    /// One write of the header and the frame: the header goes into the frame's headroom
    /// when there is room (one buffer), else beside it (writev). Returns write's result.
    @inline(__always)
    static func writeFrame(_ fd: Int32, header h: VirtioNetHeader, frame e: BatchEntry) -> Int {
        if e.start >= UInt32(VirtioNetHeader.length) {
            let p = e.data - VirtioNetHeader.length
            h.store(to: p)
            return Glibc.write(fd, p, Int(e.length) + VirtioNetHeader.length)
        }
        return withUnsafeTemporaryAllocation(byteCount: VirtioNetHeader.length, alignment: 8) { hb in
            h.store(to: hb.baseAddress!)
            var iov = (iovec(iov_base: hb.baseAddress, iov_len: VirtioNetHeader.length),
                       iovec(iov_base: e.data, iov_len: Int(e.length)))
            return withUnsafePointer(to: &iov) { $0.withMemoryRebound(to: iovec.self, capacity: 2) { writev(fd, $0, 2) } }
        }
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
