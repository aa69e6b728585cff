// SharedMemoryInternalsTests.swift: both ends of a shared-memory link in this process:
// several queues, and a peer that writes nonsense into the rings.
import Foundation
import CNICQueues
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

/// The doorbell protocol of `SPSCRing` with the producer's steps spelled out, so the
/// interleavings that matter can be played one step at a time in one thread.
@Suite struct DoorbellProtocolTests {
    final class Ring {
        let memory: UnsafeMutableRawPointer
        let ring: SPSCRing
        let bell: Int32
        init() {
            memory = .allocate(byteCount: SPSCRing.byteCount(capacity: 8), alignment: 64)
            ring = SPSCRing.format(memory, capacity: 8)
            bell = cnq_eventfd()
        }
        deinit { close(bell); memory.deallocate() }
        /// True when a kthread sleeping on the doorbell would be woken now.
        var bellReadable: Bool {
            var p = pollfd(fd: bell, events: Int16(POLLIN), revents: 0)
            return poll(&p, 1, 0) == 1
        }
        func consumeAll() {
            var (c, n) = ring.available()
            while n > 0 { _ = ring.read(c); c &+= 1; n -= 1 }
            ring.release(c)
        }
    }

    /// The producer takes the consumer's arm (and so owes it a ring) but its write to the
    /// eventfd lands only after the woken consumer has taken the frame and armed again.
    /// The consumer must still end up asleep on an empty doorbell: before the fix the
    /// late ring stayed in the eventfd for good, every later arm took the fast path, and
    /// the kthread's epoll returned at once forever (an idle instance spinning on its core).
    @Test func aRingThatLandsAfterTheNextArmIsDrained() {
        let r = Ring()
        #expect(r.ring.arm(doorbell: r.bell))
        // Producer: publish one entry and take the arm (the first half of publish()).
        var (p, _) = r.ring.reserve()
        r.ring.write(p, 1); p &+= 1
        #expect(r.ring.advance(p))
        // Consumer (woken by something else, or still spinning): takes the entry, arms.
        r.consumeAll()
        #expect(r.ring.arm(doorbell: r.bell))
        // Producer: the ring it owes lands now.
        Host.ring(r.bell)
        // Consumer: idle polls arm again; then it would sleep: nothing may wake it.
        for _ in 0..<3 { #expect(r.ring.arm(doorbell: r.bell)) }
        #expect(!r.bellReadable, "the doorbell stays readable: an idle kthread would never sleep")
        // And the next frame still wakes it.
        r.ring.write(p, 2); p &+= 1
        r.ring.publish(p, doorbell: r.bell)
        #expect(r.bellReadable)
    }

    /// Random interleavings (a fixed seed) of the producer's two halves (publish and take
    /// the arm; ring) with the consumer's (take everything; arm), checking after every
    /// step the two halves of the contract: a consumer asleep with entries waiting and no
    /// ring in flight has a readable doorbell (no lost wake-up), and an arm that lets the
    /// consumer sleep leaves no ring in the eventfd unless one is still in flight (no
    /// endless spurious wake-ups).
    @Test func randomInterleavingsKeepTheContract() {
        let r = Ring()
        var rng: UInt64 = 0x243F_6A88_85A3_08D3
        func next() -> UInt64 { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng }
        var inFlight = 0        // rings the producer owes (it took arms) and has not written
        var asleep = false      // the consumer's last step was an arm that returned true
        var p = r.ring.reserve().position
        var violations: [String] = []
        for step in 0..<20_000 where violations.count < 3 {
            switch next() % 3 {
            case 0 where r.ring.reserve().free > 0:
                r.ring.write(p, UInt64(step)); p &+= 1
                if r.ring.advance(p) { inFlight += 1 }
            case 1 where inFlight > 0:
                Host.ring(r.bell)
                inFlight -= 1
            default:
                r.consumeAll()
                asleep = r.ring.arm(doorbell: r.bell)
                if asleep, inFlight == 0, r.bellReadable { violations.append("step \(step): a stale ring after arm") }
            }
            if asleep, inFlight == 0, r.ring.available().count > 0, !r.bellReadable {
                violations.append("step \(step): entries wait, the consumer sleeps, no ring")
            }
        }
        #expect(violations.isEmpty)
    }
}
