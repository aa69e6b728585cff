// DeviceLink.swift: how the interface reaches its NICQueues device (one protocol call
// per batch, never per packet).
import NICQueuesCore

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
