// DeviceLink.swift: how the interface reaches its NICQueues device (one protocol call
// per batch, never per packet), and the spin lock that serialises the interface's state.
import NICQueuesCore
import Synchronization

/// The device operations an interface uses. `SharedDevice` (NICQueues' reference holder
/// for a `~Copyable` device) provides them, for any backend or wrapper:
///
/// ```swift
/// let link = SharedDevice(try DeviceSpec(parsing: "tap:jt0").open())
/// let interface = try NetworkInterface(link: link, configuration: config)
/// ```
public protocol FrameLink: AnyObject, Sendable {
    var linkInfo: DeviceInfo { get }
    var linkPool: PacketPool { get }
    func receive(queue: Int, into batch: inout PacketBatch, limit: Int) throws(NICError) -> Int
    func transmit(queue: Int, from batch: inout PacketBatch) throws(NICError) -> Int
    func reclaim(queue: Int) throws(NICError) -> Int
    func notificationFD(queue: Int) -> Int32
    func armNotification(queue: Int) throws(NICError) -> Bool
}

extension SharedDevice: FrameLink where Device: ~Copyable {
    public var linkInfo: DeviceInfo { device.info }
    public var linkPool: PacketPool { device.pool }
    public func receive(queue: Int, into batch: inout PacketBatch, limit: Int) throws(NICError) -> Int {
        try device.receive(queue: queue, into: &batch, limit: limit)
    }
    public func transmit(queue: Int, from batch: inout PacketBatch) throws(NICError) -> Int {
        try device.transmit(queue: queue, from: &batch)
    }
    public func reclaim(queue: Int) throws(NICError) -> Int { try device.reclaim(queue: queue) }
    public func notificationFD(queue: Int) -> Int32 { device.notificationFD(queue: queue) }
    public func armNotification(queue: Int) throws(NICError) -> Bool { try device.armNotification(queue: queue) }
}

/// A test-and-test-and-set lock. Held only for short stretches that never park, so a
/// uthread holding it is never descheduled by UThreads (only by the kernel).
final class SpinLock: @unchecked Sendable {
    private let word = Atomic<Bool>(false)

    @inline(__always)
    func lock() {
        while true {
            if !word.exchange(true, ordering: .acquiring) { return }
            var spins = 0
            while word.load(ordering: .relaxed) {
                spins += 1
                if spins > 1000 { sched_yield_shim(); spins = 0 }
            }
        }
    }

    @inline(__always)
    func unlock() { word.store(false, ordering: .releasing) }

    @inline(__always)
    func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func sched_yield_shim() { _ = sched_yield() }
#else
@inline(__always) func sched_yield_shim() {}
#endif
