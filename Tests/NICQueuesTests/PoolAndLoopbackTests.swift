// PoolAndLoopbackTests.swift: packet pools, batches and the in-process loopback device.
import CNICQueues
import Foundation
import NICQueues
import Testing

@Suite struct PoolTests {
    @Test func buffersReturnThemselves() throws {
        let pool = try PacketPool(name: "t", bufferSize: 2048, count: 64, headroom: 128)
        #expect(pool.freeCount == 64)
        do {
            guard var b = pool.allocate() else { throw TestFailure("no buffer") }
            #expect(b.headroom == 128 && b.length == 0 && b.tailroom == 2048 - 128)
            try b.replace(with: [1, 2, 3])
            try b.prepend(2)
            #expect(b.length == 5)
            try b.trimFront(2)
            #expect(b.bytes == [1, 2, 3])
            #expect(pool.freeCount == 63)
        }
        #expect(pool.freeCount == 64)
    }

    @Test func exhaustionAndBadLengthsAreErrors() throws {
        let pool = try PacketPool(name: "t", bufferSize: 256, count: 8, headroom: 64)
        var batch = PacketBatch(capacity: 16)
        #expect(pool.allocate(16, into: &batch) == 8)
        if pool.allocate() != nil { Issue.record("an empty pool handed out a buffer") }
        #expect(throws: NICError.poolExhausted("t")) { _ = try pool.allocate(copying: [0]) }
        batch.removeAll()
        #expect(pool.freeCount == 8)
        #expect(throws: NICError.frameTooLarge(length: 300, capacity: 192)) { _ = try pool.allocate(copying: [UInt8](repeating: 0, count: 300)) }
        guard var b = pool.allocate() else { throw TestFailure("no buffer") }
        #expect(throws: NICError.frameTooLarge(length: 65, capacity: 64)) { try b.prepend(65) }
        #expect(throws: NICError.self) { try b.setLength(1000) }
        #expect(throws: NICError.invalidConfiguration("pool x: 0 buffers of 2048 bytes with 128 headroom")) {
            try PacketPool(name: "x", count: 0)
        }
    }

    @Test func sharedAcrossThreads() throws {
        let pool = try PacketPool(name: "t", bufferSize: 256, count: 4096, headroom: 0)
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            var batch = PacketBatch(capacity: 64)
            for _ in 0..<2000 {
                pool.allocate(40, into: &batch)
                for i in 0..<batch.count { batch.withMutableBytes(at: i) { _ in } }
                batch.removeAll()
            }
        }
        #expect(pool.freeCount == 4096)
    }
}

@Suite struct LoopbackTests {
    @Test(arguments: [64, 1514])
    func pairMovesFramesBothWays(size: Int) throws {
        let pair = try LoopbackDevice.pair()
        let a = pair.a, b = pair.b
        let aToB = (0..<500).map { numberedFrame(UInt32($0), size: size, to: b.info.mac, from: a.info.mac) }
        let bToA = (0..<300).map { numberedFrame(UInt32($0), size: size, to: a.info.mac, from: b.info.mac) }
        try transmitFrames(a, Array(aToB[..<250]))
        try transmitFrames(b, bToA)
        try transmitFrames(a, Array(aToB[250...]))
        #expect(try receiveFrames(b, count: 500) == aToB)
        #expect(try receiveFrames(a, count: 300) == bToA)
        #expect(a.statistics.txPackets == 500 && b.statistics.rxPackets == 500)
        #expect(b.statistics.txPackets == 300 && a.statistics.rxPackets == 300)
        #expect(b.statistics.rxBytes == UInt64(500 * size))
        #expect(a.pool.freeCount == a.pool.count)
    }

    @Test func selfLoopAndQueues() throws {
        var c = LoopbackConfiguration()
        c.queues = 2
        let d = try LoopbackDevice(configuration: c)
        try transmitFrames(d, [numberedFrame(7, size: 60, from: d.info.mac)], queue: 1)
        var scratch = PacketBatch(capacity: 32)
        #expect(try d.receive(queue: 0, into: &scratch, limit: 32) == 0)
        #expect(try receiveFrames(d, count: 1, queue: 1).map(sequenceNumber) == [7])
        #expect(throws: NICError.invalidQueue(2, count: 2)) { try d.receive(queue: 2, into: &scratch, limit: 1) }
    }

    @Test func invalidFramesAreCountedNotSent() throws {
        let pair = try LoopbackDevice.pair()
        var batch = PacketBatch(capacity: 4)
        batch.append(try pair.a.pool.allocate(copying: [1, 2, 3]))                       // runt
        batch.append(try pair.a.pool.allocate(copying: [UInt8](repeating: 0, count: 1600))) // over the MTU
        batch.append(try pair.a.pool.allocate(copying: numberedFrame(1, size: 60, from: pair.a.info.mac)))
        #expect(try pair.a.transmit(queue: 0, from: &batch) == 1)
        #expect(pair.a.statistics.txInvalid == 2)
        #expect(try receiveFrames(pair.b, count: 1).count == 1)
    }

    @Test func notificationFDWakesASleeper() throws {
        let pair = try LoopbackDevice.pair()
        let fd = pair.b.notificationFD(queue: 0)
        #expect(try pair.b.armNotification(queue: 0))
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        #expect(poll(&p, 1, 0) == 0)   // nothing yet: a sleeper would sleep
        try transmitFrames(pair.a, [numberedFrame(1, size: 60, from: pair.a.info.mac)])
        #expect(poll(&p, 1, 1000) == 1)   // the doorbell rang
        #expect(try receiveFrames(pair.b, count: 1).count == 1)
        // Frames waiting: arming says "do not sleep", drains the doorbell and leaves the
        // receiver marked awake...
        try transmitFrames(pair.a, [numberedFrame(2, size: 60, from: pair.a.info.mac)])
        #expect(try !pair.b.armNotification(queue: 0))
        #expect(poll(&p, 1, 0) == 0)
        // ...so the next frames ring no doorbell (no system call on the busy path).
        try transmitFrames(pair.a, [numberedFrame(3, size: 60, from: pair.a.info.mac)])
        #expect(poll(&p, 1, 0) == 0)
        #expect(try receiveFrames(pair.b, count: 2, timeoutMs: 0).map { sequenceNumber(of: $0) } == [2, 3])
    }
}
