// WrapperTests.swift: fault injection (reproducible from its seed, counters that add
// up), pcap capture read back by tshark, and the UThreads poll hook that sleeps.
import Foundation
import NICQueues
import TestSupport
import Testing
import UThreads

/// Sends `count` numbered frames through a fault injector on a loopback pair; returns
/// the sequence numbers that arrived, in order, and the injector's counters.
func runFaults(_ c: FaultConfiguration, count: Int) throws -> (arrived: [UInt32], corrupted: Int, stats: FaultStatistics) {
    let pair = try LoopbackDevice.pair()
    let b = pair.b
    let faulty = try FaultInjector(wrapping: pair.a, configuration: c)
    let frames = (0..<count).map { numberedFrame(UInt32($0), size: 64, from: faulty.info.mac) }
    var arrived: [[UInt8]] = []
    for chunk in stride(from: 0, to: count, by: 500) {
        try transmitFrames(faulty, Array(frames[chunk..<min(count, chunk + 500)]))
        arrived += try receiveFrames(b, count: .max, timeoutMs: 0)
    }
    usleep(UInt32(c.delay.components.seconds * 1_000_000 + c.delay.components.attoseconds / 1_000_000_000_000) + 1000)
    _ = try faulty.reclaim(queue: 0)   // releases what was delayed or held back
    _ = try faulty.reclaim(queue: 0)
    arrived += try receiveFrames(b, count: .max, timeoutMs: 0)
    let corrupted = arrived.filter { f in
        let s = sequenceNumber(of: f)
        return Int(s) >= count || f != frames[Int(s)]
    }.count
    return (arrived.map { sequenceNumber(of: $0) }, corrupted, faulty.faultStatistics.transmit)
}

@Suite struct FaultInjectionTests {
    @Test func sameSeedSameFaults() throws {
        var c = FaultConfiguration(seed: 42)
        c.drop = 0.1; c.duplicate = 0.05; c.reorder = 0.05; c.corrupt = 0.02
        let first = try runFaults(c, count: 10_000)
        let second = try runFaults(c, count: 10_000)
        #expect(first.arrived == second.arrived)
        #expect(first.stats == second.stats)
        c.seed = 43
        let other = try runFaults(c, count: 10_000)
        #expect(other.arrived != first.arrived)
    }

    @Test func countersAddUp() throws {
        var c = FaultConfiguration(seed: 7)
        c.drop = 0.1; c.duplicate = 0.05; c.reorder = 0.05; c.corrupt = 0.02
        let r = try runFaults(c, count: 10_000)
        let s = r.stats
        #expect(s.frames == 10_000)
        // What arrived is what was sent, less the drops, plus the duplicates.
        #expect(UInt64(r.arrived.count) == s.frames - s.dropped + s.duplicated)
        // Each rate lands near its probability (10,000 draws: well inside 4 standard deviations).
        #expect((850...1150).contains(s.dropped))
        #expect((380...620).contains(s.duplicated))
        #expect((150...270).contains(s.corrupted))
        #expect(s.reordered > 300)
        // A corrupted frame that was also duplicated arrives twice, corrupted.
        #expect(UInt64(r.corrupted) >= s.corrupted && UInt64(r.corrupted) <= 2 * s.corrupted)
        #expect(r.arrived != r.arrived.sorted())   // reordered
    }

    @Test func dropEverythingAndRateLimit() throws {
        var c = FaultConfiguration(seed: 1)
        c.drop = 1
        let all = try runFaults(c, count: 1000)
        #expect(all.arrived.isEmpty && all.stats.dropped == 1000)
        var r = FaultConfiguration(seed: 1)
        r.rateLimit = 1000   // 1000 frames/s with a burst of 32: sent in far less than a second
        let limited = try runFaults(r, count: 1000)
        #expect(limited.stats.rateLimited > 800)
        #expect(UInt64(limited.arrived.count) == 1000 - limited.stats.rateLimited)
    }

    @Test func delayHoldsFramesBack() throws {
        var c = FaultConfiguration(seed: 3)
        c.delay = .milliseconds(300)
        let pair = try LoopbackDevice.pair()
        let faulty = try FaultInjector(wrapping: pair.a, configuration: c)
        try transmitFrames(faulty, [numberedFrame(1, size: 64, from: faulty.info.mac)])
        var batch = PacketBatch(capacity: 8)
        #expect(try pair.b.receive(queue: 0, into: &batch, limit: 8) == 0)   // not yet
        usleep(350_000)
        _ = try faulty.reclaim(queue: 0)
        #expect(try pair.b.receive(queue: 0, into: &batch, limit: 8) == 1)
        #expect(faulty.faultStatistics.transmit.delayed == 1)
    }

    @Test func badProbabilityIsAnError() throws {
        var c = FaultConfiguration()
        c.drop = 1.5
        #expect(throws: NICError.invalidConfiguration("fault probability 1.5 is not between 0 and 1")) {
            _ = try FaultInjector(wrapping: try LoopbackDevice(), configuration: c)
        }
    }
}

@Suite struct PcapTests {
    @Test func tsharkReadsTheCapture() throws {
        let path = testScratchDirectory.appendingPathComponent("capture-\(getpid()).pcap").path
        let pair = try LoopbackDevice.pair()
        let b = pair.b
        do {
            let cap = try PcapCapture(wrapping: pair.a, path: path)
            let sent = (0..<20).map { numberedFrame(UInt32($0), size: 60 + $0 * 10, from: cap.info.mac) }
            try transmitFrames(cap, sent)
            try transmitFrames(b, [arpRequest(from: b.info.mac, senderIP: [10, 9, 8, 7], targetIP: [10, 9, 8, 1])])
            #expect(try receiveFrames(cap, count: 1).count == 1)
            #expect(cap.recordedFrames == 21)
            try cap.flush()
        }
        let tshark = ["/usr/bin/tshark", "/usr/sbin/tshark"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let tool = try #require(tshark, "tshark is not installed (scripts/deps.sh installs it)")
        let r = try runProcess(tool, ["-r", path, "-T", "fields", "-e", "frame.len", "-e", "eth.type", "-e", "arp.src.proto_ipv4"],
                               environment: ["HOME": testScratchDirectory.path, "PATH": "/usr/bin:/bin"])
        #expect(r.status == 0, "\(r)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 21)
        #expect(lines.prefix(20).map { $0.split(separator: "\t").first.map(String.init) } == (0..<20).map { "\(60 + $0 * 10)" })
        #expect(lines.prefix(20).allSatisfy { $0.contains("0x88b5") })
        #expect(lines.last == "42\t0x0806\t10.9.8.7")
    }

    @Test func unwritablePathIsAnError() throws {
        #expect(throws: NICError.noSuchDevice("/nonexistent-dir/x.pcap", detail: "open: No such file or directory")) {
            _ = try PcapCapture(wrapping: try LoopbackDevice(), path: "/nonexistent-dir/x.pcap")
        }
    }
}

@Suite struct PollHookTests {
    @Test func anIdleKthreadSleepsAndWakesForFrames() throws {
        let pair = try LoopbackDevice.pair()
        let sender = SharedDevice(pair.a)
        let receiver = SharedDevice(pair.b)
        let rt = try Runtime(RuntimeConfiguration(kthreads: 1, spinBeforeSleep: .microseconds(50)))
        defer { rt.shutdown() }
        let received = Counter()
        let token = try rt.addPollHook(receiver.pollHook(queue: 0) { batch in
            _ = received.add(batch.count)
        }, kthread: 0)
        defer { _ = rt.removePollHook(token) }
        for round in 0..<5 {
            usleep(20_000)   // the kthread runs out of work and sleeps on the notification fd
            let sleepsBefore = rt.statistics()[0].sleeps
            try transmitFrames(sender.device, (0..<10).map { numberedFrame(UInt32(round * 10 + $0), size: 64, from: sender.device.info.mac) })
            var waited = 0
            while received.current < (round + 1) * 10, waited < 2000 { usleep(1000); waited += 1 }
            #expect(sleepsBefore > 0)
            #expect(received.current == (round + 1) * 10)   // the doorbell woke the sleeping kthread
        }
        #expect(rt.statistics()[0].sleeps >= 5)
    }
}
