// NetworkDevice.swift: the queue interface every backend offers (batched receive and
// transmit, completion reclaim, notification fd) and the values describing a device.
import Glibc
import NetProtocols

/// A 48-bit Ethernet address: the wire layer's type (one MAC address type for devices and
/// the stack), with what a device needs added below.
public typealias MACAddress = NetProtocols.MACAddress

extension NetProtocols.MACAddress {
    /// The six bytes, first byte in the most significant position of the low 48 bits
    /// (the same value as `rawValue`).
    @inlinable public var raw: UInt64 { rawValue }

    @inlinable public init(raw: UInt64) { self.init(rawValue: raw) }

    public init(_ b: [UInt8]) {
        precondition(b.count == 6, "a MAC address has six bytes")
        self.init(rawValue: b.reduce(0) { $0 << 8 | UInt64($1) })
    }

    public var bytes: [UInt8] { (0..<6).map { self[$0] } }

    /// A random locally administered unicast address (02:xx:...).
    public static func randomLocal() -> MACAddress {
        let v = UInt64.random(in: 0...0xFFFF_FFFF_FFFF)
        // Set the locally-administered bit, clear the multicast bit of the first byte.
        return MACAddress(rawValue: (v | (0x02 << 40)) & ~(0x01 << 40))
    }

    /// Writes the six bytes at `p`.
    @inlinable @inline(__always)
    public func store(to p: UnsafeMutableRawPointer) {
        for i in 0..<6 { p.storeBytes(of: UInt8(truncatingIfNeeded: rawValue >> (40 - 8 * UInt64(i))), toByteOffset: i, as: UInt8.self) }
    }
}

/// Work a device can take off the CPU.
public struct Offloads: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The device verifies IPv4/TCP/UDP checksums of received frames.
    public static let rxChecksum = Offloads(rawValue: 1 << 0)
    /// The device fills in IPv4/TCP/UDP checksums of transmitted frames.
    public static let txChecksum = Offloads(rawValue: 1 << 1)
    /// Frames never leave the machine's memory, so checksums need not be computed or
    /// checked (loopback, shared memory); a stack may skip them.
    public static let checksumNotNeeded = Offloads(rawValue: 1 << 2)
    /// The device cuts an IPv4 TCP frame longer than the MTU (up to
    /// ``DeviceInfo/segmentationLimit`` bytes) into MTU-sized frames, each TCP segment
    /// carrying as much payload as the MTU leaves beside the headers (TSO/GSO). Comes
    /// with ``txChecksum``: such a frame's TCP checksum field holds the pseudo-header sum.
    public static let tcpSegmentation = Offloads(rawValue: 1 << 3)
}

/// What a device is.
public struct DeviceInfo: Sendable, Equatable {
    /// The spec string it was opened from (`tap:jt0`), or a descriptive name.
    public var name: String
    /// The backend (`loopback`, `shm`, `tap`, `xdp`, `verbs`, or a wrapper around one).
    public var backend: String
    /// Largest IP packet (frame minus the 14-byte Ethernet header).
    public var mtu: Int
    /// This end's Ethernet address.
    public var mac: MACAddress
    /// Receive/transmit queue pairs.
    public var queueCount: Int
    public var offloads: Offloads
    /// With ``Offloads/tcpSegmentation``: the largest frame (Ethernet header included)
    /// transmit takes; 0 without it.
    public var segmentationLimit: Int

    public init(name: String, backend: String, mtu: Int, mac: MACAddress, queueCount: Int, offloads: Offloads,
                segmentationLimit: Int = 0) {
        self.name = name; self.backend = backend; self.mtu = mtu; self.mac = mac
        self.queueCount = queueCount; self.offloads = offloads; self.segmentationLimit = segmentationLimit
    }
}

/// Counters of one device (summed over its queues).
public struct DeviceStatistics: Sendable, Equatable {
    public var rxPackets: UInt64 = 0
    public var rxBytes: UInt64 = 0
    public var txPackets: UInt64 = 0
    public var txBytes: UInt64 = 0
    /// Received frames dropped for want of a buffer or because they were truncated.
    public var rxDropped: UInt64 = 0
    /// Frames refused by transmit: shorter than an Ethernet header or longer than the MTU.
    public var txInvalid: UInt64 = 0
    /// Received frames whose device header (TAP's virtio_net_hdr) was malformed: dropped.
    public var rxMalformed: UInt64 = 0
    /// Received frames the device checked in software and found with a bad checksum: dropped.
    public var rxChecksumErrors: UInt64 = 0
    /// Received frames longer than the MTU that the host coalesced (GRO/GSO).
    public var rxCoalesced: UInt64 = 0
    /// Transmitted frames longer than the MTU, segmented by the device (TSO/GSO).
    public var txSegmented: UInt64 = 0
    public init() {}

    static func + (a: DeviceStatistics, b: DeviceStatistics) -> DeviceStatistics {
        var r = a
        r.rxPackets += b.rxPackets; r.rxBytes += b.rxBytes
        r.txPackets += b.txPackets; r.txBytes += b.txBytes
        r.rxDropped += b.rxDropped; r.txInvalid += b.txInvalid
        r.rxMalformed += b.rxMalformed; r.rxChecksumErrors += b.rxChecksumErrors
        r.rxCoalesced += b.rxCoalesced; r.txSegmented += b.txSegmented
        return r
    }
}

/// Smallest frame a device transmits: a destination, a source and an EtherType.
public let ethernetHeaderLength = 14

/// A device's receive/transmit queue pairs.
///
/// Each queue is single-threaded: one thread (one kthread) at a time drives queue `q`'s
/// receive, transmit and reclaim. Nothing on this path allocates or takes a lock.
///
/// ```swift
/// var rx = PacketBatch(capacity: 32)
/// while try device.receive(queue: 0, into: &rx, limit: 32) > 0 {
///     while let frame = rx.popFirst() { handle(frame) }
/// }
/// ```
public protocol NetworkDevice: ~Copyable, SendableMetatype {
    var info: DeviceInfo { get }
    /// The pool transmit buffers should come from (a buffer from another pool is copied).
    var pool: PacketPool { get }
    /// Appends up to `limit` received frames (bounded by the batch's free space) to
    /// `batch`; returns how many.
    func receive(queue: Int, into batch: inout PacketBatch, limit: Int) throws(NICError) -> Int
    /// Transmits frames from the front of `batch`, removing those the device took;
    /// returns how many. Frames left in the batch did not fit the queue: retry later.
    func transmit(queue: Int, from batch: inout PacketBatch) throws(NICError) -> Int
    /// Returns the buffers of completed transmissions to the pool; returns how many.
    func reclaim(queue: Int) throws(NICError) -> Int
    /// An fd that polls readable when frames wait on `queue` (after
    /// ``armNotification(queue:)``), so an idle kthread can sleep in the kernel on it.
    func notificationFD(queue: Int) -> Int32
    /// Asks for a notification before sleeping; returns false when frames are already
    /// waiting (do not sleep). A device whose fd is level-triggered (TAP) may return true
    /// with frames waiting: its fd is readable then, so the sleeper wakes at once. Cheap
    /// to call again while armed. Throws ``NICError/peerGone(_:)`` when the link is dead.
    func armNotification(queue: Int) throws(NICError) -> Bool
    var statistics: DeviceStatistics { get }
}

extension NetworkDevice where Self: ~Copyable {
    @inline(__always)
    package func checkQueue(_ q: Int) throws(NICError) {
        if q < 0 || q >= info.queueCount { throw .invalidQueue(q, count: info.queueCount) }
    }

    /// Waits (in the kernel) up to `timeoutMs` for frames on `queue`: arms the
    /// notification and polls its fd. For callers that are not on a UThreads kthread.
    public func waitForFrames(queue: Int = 0, timeoutMs: Int32) throws(NICError) -> Bool {
        if try !armNotification(queue: queue) { return true }
        return Host.waitReadable(notificationFD(queue: queue), timeoutMs: timeoutMs)
    }
}

/// Per-queue counters in memory the device owns (one writer per queue).
@frozen @usableFromInline
package struct QueueCounters: ~Copyable {
    @usableFromInline let p: UnsafeMutablePointer<DeviceStatistics>
    @usableFromInline let n: Int
    package init(queues: Int) {
        n = queues
        p = .allocate(capacity: queues)
        p.initialize(repeating: DeviceStatistics(), count: queues)
    }
    @inlinable deinit { p.deallocate() }
    package var total: DeviceStatistics { (0..<n).reduce(DeviceStatistics()) { $0 + p[$1] } }
    @inline(__always) package func rx(_ q: Int, packets: Int, bytes: Int) {
        p[q].rxPackets &+= UInt64(packets); p[q].rxBytes &+= UInt64(bytes)
    }
    @inline(__always) package func tx(_ q: Int, packets: Int, bytes: Int) {
        p[q].txPackets &+= UInt64(packets); p[q].txBytes &+= UInt64(bytes)
    }
    @inline(__always) package func rxDropped(_ q: Int, _ n: Int = 1) { p[q].rxDropped &+= UInt64(n) }
    @inline(__always) package func txInvalid(_ q: Int, _ n: Int = 1) { p[q].txInvalid &+= UInt64(n) }
    @inline(__always) package func rxMalformed(_ q: Int) { p[q].rxMalformed &+= 1 }
    @inline(__always) package func rxChecksumError(_ q: Int) { p[q].rxChecksumErrors &+= 1 }
    @inline(__always) package func rxCoalesced(_ q: Int) { p[q].rxCoalesced &+= 1 }
    @inline(__always) package func txSegmented(_ q: Int) { p[q].txSegmented &+= 1 }
}
