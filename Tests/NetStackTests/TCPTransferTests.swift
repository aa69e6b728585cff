// TCPTransferTests.swift: two connections back to back over the simulated link: bytes
// both ways arrive intact and in order with every congestion control and option mix, on a
// clean link (no retransmissions at all) and a lossy, reordering, duplicating one.
@testable import NetProtocols
@testable import NetStack
import Testing

struct TransferCase: CustomStringConvertible, Sendable {
    var algorithm: CongestionControlAlgorithm
    var sack: Bool
    var timestamps: Bool
    var lossy: Bool
    var description: String {
        "\(algorithm) sack:\(sack) ts:\(timestamps) \(lossy ? "lossy" : "clean")"
    }

    static let all: [TransferCase] = CongestionControlAlgorithm.allCases.flatMap { a in
        [false, true].flatMap { sack in
            [false, true].flatMap { ts in
                [false, true].map { lossy in TransferCase(algorithm: a, sack: sack, timestamps: ts, lossy: lossy) }
            }
        }
    }
}

/// Bytes moved each way (debug builds are slow; release moves more).
#if DEBUG
let transferSize = 512 * 1024
#else
let transferSize = 4 * 1024 * 1024
#endif

/// Runs a bidirectional transfer and returns the simulation for inspection.
/// - Parameters:
///   - readChunk: bytes the application reads per step (nil: all there is).
@discardableResult
func runTransfer(_ c: TransferCase, seed: UInt64, size: Int = transferSize, loss: Double = 0.01, reorder: Double = 0.02,
                 duplicate: Double = 0.01, bufferSize: Int? = nil, readChunk: Int? = nil,
                 adjust: (inout TCPConfiguration) -> Void = { _ in }) -> Simulation {
    var config = TCPConfiguration()
    config.congestionControl = c.algorithm
    config.selectiveAcknowledgments = c.sack
    config.timestamps = c.timestamps
    config.timeWaitDuration = .seconds(1)
    if let bufferSize {
        config.receiveBufferSize = bufferSize
        config.sendBufferSize = bufferSize
    }
    adjust(&config)
    let sim = Simulation(seed: seed, client: config)
    if c.lossy {
        sim.loss = loss
        sim.reorder = reorder
        sim.duplicate = duplicate
    }
    var rng = SplitMix64(seed: seed ^ 0xABCDEF)
    let up = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
    let down = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
    var sentUp = 0, sentDown = 0
    var gotUp: [UInt8] = [], gotDown: [UInt8] = []

    func pump(_ e: Endpoint, _ data: [UInt8], _ sent: inout Int, _ got: inout [UInt8]) {
        switch e.conn.state {
        case .established, .closeWait:
            while sent < data.count {
                let n = data[sent...].withUnsafeBytes { (try? e.conn.send($0)) ?? 0 }
                if n <= 0 { break }
                sent += n
            }
            if sent == data.count { e.conn.shutdownWrite() }
        default: break
        }
        if let readChunk {
            var buf = [UInt8](repeating: 0, count: readChunk)
            if let n = buf.withUnsafeMutableBytes({ (try? e.conn.receive(into: $0)) ?? nil }), n > 0 { got += buf[0..<n] }
        } else {
            got += e.receiveAll()
        }
    }

    let limit = 300 * sec
    var lastTotal = -1
    while sim.now < limit {
        pump(sim.client, up, &sentUp, &gotDown)
        if let server = sim.server { pump(server, down, &sentDown, &gotUp) }
        if sim.client.conn.isFinished && (sim.server?.conn.isFinished ?? false) {
            // A slow reader may still have bytes in a closed connection's buffer.
            let total = gotUp.count + gotDown.count
            if total == 2 * size || total == lastTotal { break }
            lastTotal = total
            continue
        }
        if !sim.step() { break }
    }
    #expect(gotUp.count == size && gotDown.count == size, "\(c): got \(gotUp.count) up, \(gotDown.count) down at \(sim.now / ms) ms")
    let upIntact = gotUp == up, downIntact = gotDown == down
    #expect(upIntact, "\(c): upstream bytes differ")
    #expect(downIntact, "\(c): downstream bytes differ")
    #expect(sim.client.conn.isFinished && (sim.server?.conn.isFinished ?? false),
            "\(c): states \(sim.client.conn.state) / \(String(describing: sim.server?.conn.state))")
    #expect(sim.client.conn.pendingError == nil && sim.server?.conn.pendingError == nil)
    return sim
}

@Suite("TCP: back-to-back transfers")
struct TCPTransferTests {
    @Test("bytes arrive intact both ways; retransmissions only on a lossy link", arguments: TransferCase.all)
    func transfer(_ c: TransferCase) {
        let sim = runTransfer(c, seed: 11)
        let a = sim.client.conn.info.statistics
        let b = sim.server!.conn.info.statistics
        for st in [a, b] {
            // Every retransmission has one cause.
            #expect(st.retransmittedSegments == st.timeoutRetransmits + st.fastRetransmits + st.sackRetransmits, "\(st)")
            #expect(st.bytesReceived == UInt64(transferSize) && st.bytesSent == UInt64(transferSize))
        }
        if c.lossy {
            #expect(a.retransmittedSegments + b.retransmittedSegments > 0)
            #expect(a.retransmittedSegments < UInt64(transferSize / 1000), "\(a)")
            if c.sack { #expect(a.sackRetransmits + b.sackRetransmits > 0, "\(a) \(b)") }
        } else {
            #expect(sim.dropped == 0)
            #expect(a.retransmittedSegments == 0 && b.retransmittedSegments == 0, "\(a) \(b)")
            #expect(a.timeouts == 0 && b.timeouts == 0)
        }
        #expect(sim.client.conn.info.sackEnabled == c.sack && sim.client.conn.info.timestampsEnabled == c.timestamps)
    }
}

@Suite("TCP: back-to-back under stress")
struct TCPStressTests {
    /// Heavy loss, reordering and duplication; small buffers (zero windows, persist) and a
    /// slow reader on some seeds.
    @Test("5% loss, 10% reordering, 5% duplication, small buffers, slow readers", arguments: 1...6 as ClosedRange<UInt64>)
    func stress(_ seed: UInt64) {
        for c in TransferCase.all where c.lossy {
            let sim = runTransfer(c, seed: seed, size: 100_000, loss: 0.05, reorder: 0.1, duplicate: 0.05,
                                  bufferSize: seed % 2 == 0 ? 16384 : nil, readChunk: seed % 3 == 0 ? 3000 : nil)
            #expect(sim.now < 60 * sec, "\(c) seed \(seed) took \(sim.now / ms) ms")
        }
    }

    @Test("random segments never break a connection's invariants", arguments: 1...4 as ClosedRange<UInt64>)
    func randomSegments(_ seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var config = TCPConfiguration()
        config.receiveBufferSize = 8192
        config.sendBufferSize = 8192
        config.outOfOrderLimit = 4096
        var keep = TCPKeepalive()
        keep.enabled = true
        keep.idle = .seconds(1)
        config.keepalive = keep
        let payload = bytes(3000)
        for round in 0..<40 {
            // Half the rounds from an established client, half from an accepted server.
            let e = round % 2 == 0 ? establishedClient(config) : establishedServer(config)
            _ = e.send([UInt8](repeating: 1, count: Int.random(in: 0...9000, using: &rng)))
            var now: Int64 = 0
            for _ in 0..<200 {
                now += Int64.random(in: 0...50, using: &rng) * ms
                let base: UInt32 = 5001
                let seq = base &+ UInt32(bitPattern: Int32.random(in: -3000...12000, using: &rng))
                let ack = 1001 &+ UInt32(bitPattern: Int32.random(in: -3000...12000, using: &rng))
                let flags = TCPFlags(rawValue: UInt8.random(in: 0...255, using: &rng) & 0x1F)
                var o = TCPOptions()
                if Bool.random(using: &rng) {
                    let a = ack &+ UInt32.random(in: 0...9000, using: &rng)
                    o.sackBlocks.append(SACKBlock(start: SequenceNumber(a), end: SequenceNumber(a &+ UInt32.random(in: 0...3000, using: &rng))))
                }
                let n = Int.random(in: 0...2000, using: &rng)
                e.conn.input(segment(seq, ack, flags, window: UInt16.random(in: 0...UInt16.max, using: &rng), options: o,
                                     payload: UnsafeRawBufferPointer(rebasing: payload[0..<n])), now: now)
                if let d = e.conn.nextDeadline, d <= now { e.conn.handleTimers(now: now) }
                for s in e.drain(now) {
                    #expect(s.payloadLength >= 0 && s.payloadLength <= 1460)
                    _ = e.payload(of: s)   // traps if the segment points outside the send buffer
                }
                if Bool.random(using: &rng) { _ = e.receiveAll() }
                if Int.random(in: 0..<50, using: &rng) == 0 { e.conn.close() }
                let info = e.conn.info
                #expect(e.conn.readableBytes <= 8192 && info.bytesInFlight >= 0 && info.congestionWindow > 0)
                if e.conn.isFinished { break }
            }
        }
    }
}

@Suite("TCP: a lossy echo, as the stall repro runs it")
struct TCPLossyEchoTests {
    /// The stall TCPStallReproTests showed, without processes: an echo server that reads
    /// only what it can write back (so its window closes while its own sends wait), a
    /// client reading slowly through a small buffer, 5% loss each way. No gap in the
    /// client's progress may come near a receive timeout.
    @Test("5% loss, small buffers, an echo blocked on its writes, a slow reader: no stall", arguments: 1...4 as ClosedRange<UInt64>)
    func lossyEcho(_ seed: UInt64) {
        var config = TCPConfiguration()
        config.receiveBufferSize = 16384
        config.sendBufferSize = 16384
        config.timeWaitDuration = .seconds(1)
        config.maximumRetransmissions = 30
        let sim = Simulation(seed: seed, client: config)
        sim.loss = 0.05
        let size = 1_000_000
        var sent = 0, got = 0
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        var lastProgress: Int64 = 0, longestGap: Int64 = 0
        while sim.now < 600 * sec && got < size {
            let c = sim.client
            if c.conn.state == .established {
                while sent < size {
                    let chunk = [UInt8](repeating: UInt8(truncatingIfNeeded: sent), count: min(4096, size - sent))
                    let n = chunk.withUnsafeBytes { (try? c.conn.send($0)) ?? 0 }
                    if n <= 0 { break }
                    sent += n
                }
                let n = buffer.withUnsafeMutableBytes { (try? c.conn.receive(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<1000]))) ?? nil } ?? 0
                if n > 0 {
                    got += n
                    longestGap = max(longestGap, sim.now - lastProgress)
                    lastProgress = sim.now
                }
            }
            if let s = sim.server, s.conn.state == .established {
                // An echo: what it read goes back before it reads more.
                if !pending.isEmpty {
                    let n = pending.withUnsafeBytes { (try? s.conn.send($0)) ?? 0 }
                    if n > 0 { pending.removeFirst(n) }
                }
                if pending.isEmpty, let n = buffer.withUnsafeMutableBytes({ (try? s.conn.receive(into: $0)) ?? nil }), n > 0 {
                    pending = Array(buffer[..<n])
                }
            }
            if !sim.step() {
                // No packet or timer left: go on only while the applications have work.
                let busy = sim.client.conn.readableBytes > 0 || !pending.isEmpty || (sim.server?.conn.readableBytes ?? 0) > 0
                if !busy { break }
            }
        }
        #expect(got == size, "seed \(seed): \(got) of \(size) echoed by \(sim.now / ms) ms; client \(sim.client.conn.info)")
        #expect(longestGap < 10 * sec, "seed \(seed): \(longestGap / ms) ms without progress")
    }
}
