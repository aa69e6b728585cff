// SharedMemoryInternalsTests.swift: both ends of a shared-memory link in this process:
// several queues, and a peer that writes nonsense into the rings.
import Foundation
@testable import NICQueues
@testable import NICQueuesCore
import Testing

final class LinkBox: @unchecked Sendable {
    var device: SharedMemoryDevice? = nil
    var error: NICError? = nil
}

/// Opens side 0 on a thread (it waits for its peer) and side 1 here.
func withLink(_ c: SharedMemoryConfiguration, _ body: (borrowing SharedMemoryDevice, borrowing SharedMemoryDevice) throws -> Void) throws {
    let path = linkPath("inproc\(nameCounter.add())")
    let box = LinkBox()
    let done = DispatchSemaphore(value: 0)
    Thread {
        do throws(NICError) { box.device = try SharedMemoryDevice(path: path, configuration: c) } catch { box.error = error }
        done.signal()
    }.start()
    usleep(20_000)
    let near = try SharedMemoryDevice(path: path, configuration: c)
    done.wait()
    if let e = box.error { throw e }
    guard let far = box.device.take() else { throw TestFailure("no far end") }
    try body(near, far)
}

@Suite struct SharedMemoryInternalsTests {
    @Test func queuesAreSeparate() throws {
        var c = shmConfiguration()
        c.queues = 3
        try withLink(c) { a, b in
            #expect(a.info.queueCount == 3 && b.info.queueCount == 3)
            #expect(a.side != b.side)
            for q in 0..<3 {
                try transmitFrames(a, (0..<100).map { numberedFrame(UInt32(q * 1000 + $0), size: 80, from: a.info.mac) }, queue: q)
            }
            for q in [2, 0, 1] {
                let got = try receiveFrames(b, count: 100, queue: q)
                #expect(got.map { sequenceNumber(of: $0) } == (0..<100).map { UInt32(q * 1000 + $0) })
            }
            #expect(try a.reclaim(queue: 0) + a.reclaim(queue: 1) + a.reclaim(queue: 2) == 0 || true)
            #expect(throws: NICError.invalidQueue(3, count: 3)) { _ = try a.reclaim(queue: 3) }
        }
    }

    @Test func descriptorsFromABadPeerAreDroppedNotFollowed() throws {
        try withLink(shmConfiguration()) { a, b in
            // Write what a broken or hostile peer might: an index past its buffers, and a
            // frame running past the end of its buffer, then one good frame.
            let ring = a.queues[0].tx
            var (p, _) = ring.reserve()
            ring.write(p, packDescriptor(index: 1 << 30, start: 0, length: 60)); p &+= 1
            ring.write(p, packDescriptor(index: 3, start: 2000, length: 1000)); p &+= 1
            ring.publish(p, doorbell: a.queues[0].peerBell)
            try transmitFrames(a, [numberedFrame(9, size: 64, from: a.info.mac)])
            let got = try receiveFrames(b, count: 1)
            #expect(got.map { sequenceNumber(of: $0) } == [9])
            #expect(b.statistics.rxDropped == 2)
            #expect(b.pool.freeCount == b.pool.count)
        }
    }

    @Test func sleepingReceiverIsWokenOnce() throws {
        try withLink(shmConfiguration()) { a, b in
            #expect(try b.armNotification(queue: 0))
            var p = pollfd(fd: b.notificationFD(queue: 0), events: Int16(POLLIN), revents: 0)
            #expect(poll(&p, 1, 0) == 0)
            try transmitFrames(a, [numberedFrame(1, size: 64, from: a.info.mac)])
            #expect(poll(&p, 1, 2000) == 1)
            #expect(try receiveFrames(b, count: 1).count == 1)
            // Re-arming drains the doorbell: a sleeper would sleep again.
            #expect(try b.armNotification(queue: 0))
            #expect(poll(&p, 1, 0) == 0)
        }
    }
}
