// PcapCapture.swift: a wrapper over any device that records every frame it receives
// and transmits in a pcap file (tcpdump's classic format, Ethernet link type).
import Glibc

/// Appends pcap records to a file through one buffer.
final class PcapWriter {
    let fd: Int32
    let path: String
    let buffer: UnsafeMutableRawPointer
    let capacity = 1 << 18
    var used = 0
    let snapLength: Int
    var failed: Int32 = 0
    var records = 0
    /// Where each record of the frames offered to transmit starts (reused every call).
    let offsets: UnsafeMutablePointer<Int>
    let offsetCapacity = 1025

    init(path: String, snapLength: Int) throws(NICError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw NICError.from(call: "open", errno: errno, subject: path) }
        self.fd = fd
        self.path = path
        self.snapLength = snapLength
        buffer = .allocate(byteCount: capacity, alignment: 8)
        offsets = .allocate(capacity: offsetCapacity)
        // Global header: magic, version 2.4, GMT offset, accuracy, snap length, LINKTYPE_ETHERNET.
        put32(0xA1B2_C3D4); put16(2); put16(4); put32(0); put32(0); put32(UInt32(snapLength)); put32(1)
        flush()
    }

    deinit {
        flush()
        close(fd)
        buffer.deallocate()
        offsets.deallocate()
    }

    private func put32(_ v: UInt32) { buffer.storeBytes(of: v.littleEndian, toByteOffset: used, as: UInt32.self); used += 4 }
    private func put16(_ v: UInt16) { buffer.storeBytes(of: v.littleEndian, toByteOffset: used, as: UInt16.self); used += 2 }

    func record(_ data: UnsafeRawPointer, _ length: Int, _ ts: timespec) {
        let incl = min(length, snapLength)
        if used + 16 + incl > capacity { flush() }
        if 16 + incl > capacity { return }
        put32(UInt32(truncatingIfNeeded: ts.tv_sec)); put32(UInt32(ts.tv_nsec / 1000))
        put32(UInt32(incl)); put32(UInt32(length))
        (buffer + used).copyMemory(from: data, byteCount: incl)
        used += incl
        records += 1
    }

    func flush() {
        var off = 0
        while off < used {
            let r = write(fd, buffer + off, used - off)
            if r < 0 { if errno == EINTR { continue }; failed = errno; break }
            off += r
        }
        used = 0
    }
}

/// Wraps a device and writes every frame it receives or transmits to a pcap file that
/// tcpdump, tshark and Wireshark read. Records are buffered; ``flush()`` (or dropping the
/// wrapper) writes them out.
public struct PcapCapture<Base: NetworkDevice & ~Copyable>: ~Copyable, NetworkDevice {
    public let base: Base
    let writer: PcapWriter

    public init(wrapping base: consuming Base, path: String, snapLength: Int = 65535) throws(NICError) {
        guard snapLength >= 64 && snapLength <= 262_144 else { throw .invalidConfiguration("pcap snap length \(snapLength)") }
        writer = try PcapWriter(path: path, snapLength: snapLength)
        self.base = base
    }

    public var info: DeviceInfo { base.info }
    public var pool: PacketPool { base.pool }
    public var statistics: DeviceStatistics { base.statistics }
    /// Frames recorded so far.
    public var recordedFrames: Int { writer.records }

    /// Writes buffered records to the file; throws if a write failed.
    public func flush() throws(NICError) {
        writer.flush()
        if writer.failed != 0 { throw .system(call: "write", errno: writer.failed, detail: writer.path) }
    }

    public func receive(queue: Int, into batch: inout PacketBatch, limit: Int) throws(NICError) -> Int {
        let before = batch.count
        let n = try base.receive(queue: queue, into: &batch, limit: limit)
        if n > 0 {
            let ts = Host.realtime()
            for i in before..<(before + n) { batch.withBytes(at: i) { writer.record($0.baseAddress!, $0.count, ts) } }
        }
        return n
    }

    public func transmit(queue: Int, from batch: inout PacketBatch) throws(NICError) -> Int {
        // The device takes frames from the front; record those it took. (Buffers handed
        // to a device may be reused at once, so the bytes are copied before.)
        if writer.used > writer.capacity / 2 { writer.flush() }   // room for a whole batch
        let mark = writer.used, records = writer.records
        let ts = Host.realtime()
        let before = batch.count
        var offered = 0
        while offered < before, offered < writer.offsetCapacity - 1,
              writer.used + 16 + batch.length(at: offered) <= writer.capacity {
            writer.offsets[offered] = writer.used
            batch.withBytes(at: offered) { writer.record($0.baseAddress!, $0.count, ts) }
            offered += 1
        }
        writer.offsets[offered] = writer.used
        let n: Int
        do { n = try base.transmit(queue: queue, from: &batch) } catch {
            writer.used = mark; writer.records = records
            throw error
        }
        let taken = min(before - batch.count, offered)
        writer.used = writer.offsets[taken]   // keep only the records of frames the device took
        writer.records = records + taken
        return n
    }

    public func reclaim(queue: Int) throws(NICError) -> Int { try base.reclaim(queue: queue) }
    public func notificationFD(queue: Int) -> Int32 { base.notificationFD(queue: queue) }
    public func armNotification(queue: Int) throws(NICError) -> Bool { try base.armNotification(queue: queue) }
}
