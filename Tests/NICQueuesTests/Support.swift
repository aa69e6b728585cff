// Support.swift: frame builders and helpers shared by the NICQueues tests.
import Foundation
import TestSupport
import NICQueues
import Testing

/// An Ethernet frame: destination, source, EtherType, then `payload`.
func ethernetFrame(to dst: MACAddress, from src: MACAddress, type: UInt16, payload: [UInt8]) -> [UInt8] {
    dst.bytes + src.bytes + [UInt8(type >> 8), UInt8(type & 0xFF)] + payload
}

/// A test frame with a sequence number and a recognisable pattern, `size` bytes in all.
func numberedFrame(_ seq: UInt32, size: Int, to dst: MACAddress = .broadcast, from src: MACAddress) -> [UInt8] {
    var payload = withUnsafeBytes(of: seq.bigEndian) { Array($0) }
    while payload.count < size - 14 { payload.append(UInt8(truncatingIfNeeded: Int(seq) &+ payload.count)) }
    return ethernetFrame(to: dst, from: src, type: 0x88B5, payload: payload)   // local experimental EtherType
}

func sequenceNumber(of frame: [UInt8]) -> UInt32 {
    frame[14..<18].reduce(0) { $0 << 8 | UInt32($1) }
}

/// Receives until `count` frames arrived or `timeoutMs` passed without progress.
func receiveFrames(_ device: borrowing some NetworkDevice & ~Copyable, count: Int, queue: Int = 0,
                   timeoutMs: Int32 = 5000) throws -> [[UInt8]] {
    var out: [[UInt8]] = []
    var batch = PacketBatch(capacity: 32)
    while out.count < count {
        let n = try device.receive(queue: queue, into: &batch, limit: 32)
        if n == 0 {
            if try !device.waitForFrames(queue: queue, timeoutMs: timeoutMs) { break }
            continue
        }
        while let f = batch.popFirst() { out.append(f.bytes) }
    }
    return out
}

/// Transmits every frame, retrying while the queue is full; reclaims completions.
func transmitFrames(_ device: borrowing some NetworkDevice & ~Copyable, _ frames: [[UInt8]], queue: Int = 0) throws {
    var batch = PacketBatch(capacity: 32)
    var i = 0
    var stalls = 0
    while i < frames.count || !batch.isEmpty {
        while i < frames.count && !batch.isFull {
            batch.append(try device.pool.allocate(copying: frames[i]))
            i += 1
        }
        let sent = try device.transmit(queue: queue, from: &batch)
        _ = try device.reclaim(queue: queue)
        if sent == 0 {
            stalls += 1
            if stalls > 200_000 { throw TestFailure("transmit stalled with \(batch.count) frames left") }
            usleep(10)
        } else { stalls = 0 }
    }
    for _ in 0..<100 { if try device.reclaim(queue: queue) == 0 { break } }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// True when running as root (network tests need it).
let isRoot = getuid() == 0


/// An ARP request: who has `targetIP`? tell `senderIP` at `mac`.
func arpRequest(from mac: MACAddress, senderIP: [UInt8], targetIP: [UInt8]) -> [UInt8] {
    var arp: [UInt8] = [0, 1, 8, 0, 6, 4, 0, 1]   // Ethernet, IPv4, sizes, request
    arp += mac.bytes + senderIP + [0, 0, 0, 0, 0, 0] + targetIP
    return ethernetFrame(to: .broadcast, from: mac, type: 0x0806, payload: arp)
}

/// The sender MAC of an ARP reply from `ip` to `mac`, if `frame` is one.
func arpReplySender(_ frame: [UInt8], from ip: [UInt8], to mac: MACAddress) -> MACAddress? {
    guard frame.count >= 42, frame[12] == 0x08, frame[13] == 0x06, frame[20] == 0, frame[21] == 2,
          Array(frame[28..<32]) == ip, Array(frame[32..<38]) == mac.bytes else { return nil }
    return MACAddress(Array(frame[22..<28]))
}

/// A name unique to this test process and call, for interfaces and namespaces.
func uniqueName(_ prefix: String) -> String {
    let n = nameCounter.add()
    return "\(prefix)\(getpid() % 100_000)\(n)"
}

final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func add(_ n: Int = 1) -> Int { lock.lock(); defer { lock.unlock() }; value += n; return value }
    var current: Int { lock.lock(); defer { lock.unlock() }; return value }
}
let nameCounter = Counter()

/// A third octet for test subnets, unlikely to meet another test run's.
func subnetOctet() -> UInt8 { UInt8(truncatingIfNeeded: (Int(getpid()) &* 7 &+ nameCounter.add()) % 200 + 20) }

