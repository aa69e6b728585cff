// TCPRecoveryTests.swift: retransmission and congestion control against scripted peers:
// RFC 6298's RTO arithmetic and backoff, SYN retries and giving up, fast retransmit on the
// third duplicate ACK, NewReno's partial ACKs (RFC 6582), SACK recovery resending exactly
// the holes (RFC 6675), and CUBIC's window against RFC 9438's formulas.
@testable import NetProtocols
@testable import NetStack
import Testing

private let mss = 1460

/// Sequence number of the i-th full segment of a client whose data starts at 1001.
private func s(_ i: Int) -> UInt32 { UInt32(1001 + i * mss) }

/// A client with `segments` full segments sent (not yet acknowledged), peer ISN 5000.
private func clientWithFlight(_ config: TCPConfiguration, segments: Int, sack: Bool = false) -> (Endpoint, [TCPOutgoingSegment]) {
    let c = makeClient(config)
    _ = c.drain(0)
    c.conn.input(segment(5000, 1001, [.syn, .ack], options: options(mss: 1460, sack: sack)), now: 0)
    _ = c.drain(0)
    #expect(c.send([UInt8](repeating: 0x5A, count: segments * mss)) == segments * mss)
    let out = c.drain(0)
    return (c, out)
}

@Suite("TCP: retransmission and congestion control")
struct TCPRecoveryTests {
    @Test("RTO per RFC 6298: first sample, later samples, bounds")
    func rtoValues() {
        let c = makeClient()
        _ = c.drain(0)
        c.conn.input(segment(5000, 1001, [.syn, .ack]), now: 100 * ms)
        // First sample R: SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4·RTTVAR).
        #expect(c.conn.info.smoothedRTT == .milliseconds(100))
        #expect(c.conn.info.rttVariance == .milliseconds(50))
        #expect(c.conn.info.rto == .milliseconds(300))
        _ = c.drain(100 * ms)
        #expect(c.send([UInt8](repeating: 1, count: 100)) == 100)
        _ = c.drain(sec)
        c.conn.input(segment(5001, 1101, .ack), now: sec + 60 * ms)
        // RTTVAR = 3/4·50 + 1/4·|100 − 60| = 47.5; SRTT = 7/8·100 + 1/8·60 = 95; RTO = 95 + 190.
        #expect(c.conn.info.smoothedRTT == .milliseconds(95))
        #expect(c.conn.info.rttVariance == .microseconds(47_500))
        #expect(c.conn.info.rto == .milliseconds(285))

        // A tiny RTT is clamped to the configured minimum (RFC 6298 §2.4), 1 s here.
        var config = plainConfiguration()
        config.minimumRTO = .seconds(1)
        let d = makeClient(config)
        _ = d.drain(0)
        d.conn.input(segment(5000, 1001, [.syn, .ack]), now: 5 * ms)
        #expect(d.conn.info.rto == .seconds(1))
        // Before any sample: the initial RTO.
        #expect(makeClient(config).conn.info.rto == .seconds(1))
    }

    @Test("timeouts resend the oldest segment and double the RTO up to the maximum")
    func backoff() {
        var config = plainConfiguration()
        config.maximumRTO = .seconds(2)
        let c = makeClient(config)
        _ = c.drain(0)
        c.conn.input(segment(5000, 1001, [.syn, .ack]), now: 100 * ms)   // RTO 300 ms
        _ = c.drain(100 * ms)
        _ = c.send([UInt8](repeating: 1, count: 100))
        let first = c.drain(sec)
        #expect(first.count == 1 && c.conn.nextDeadline == sec + 300 * ms)
        var t = sec + 300 * ms
        var expected: [Int64] = [600, 1200, 2000, 2000]
        for round in 1...4 {
            c.conn.handleTimers(now: t)
            let again = c.drain(t)
            #expect(again.count == 1 && again[0].sequenceNumber == SequenceNumber(1001) && again[0].payloadLength == 100)
            #expect(c.conn.info.rto == .milliseconds(expected[0]), "round \(round)")
            #expect(c.conn.nextDeadline == t + expected[0] * ms)
            #expect(c.conn.info.statistics.timeouts == UInt64(round) && c.conn.info.statistics.retransmittedSegments == UInt64(round))
            t += expected.removeFirst() * ms
        }
        // The ACK ends it; cwnd went to one segment at the first timeout (RFC 5681 §3.1).
        #expect(c.conn.info.congestionWindow == c.conn.info.maximumSegmentSize)
        c.conn.input(segment(5001, 1101, .ack), now: t)
        #expect(c.conn.nextDeadline == nil)
    }

    @Test("maximumRetransmissions timeouts end the connection with timedOut")
    func giveUp() {
        var config = plainConfiguration()
        config.maximumRetransmissions = 3
        let c = establishedClient(config)
        _ = c.send([1, 2, 3])
        _ = c.drain(0)
        var timeouts = 0
        while let d = c.conn.nextDeadline, timeouts < 10 {
            c.conn.handleTimers(now: d)
            _ = c.drain(d)
            timeouts += 1
        }
        #expect(timeouts == 4)
        #expect(c.conn.state == .closed && c.conn.pendingError == .timedOut)
    }

    @Test("SYN retries with backoff, then timedOut")
    func synRetries() {
        var config = plainConfiguration()
        config.synRetries = 2
        let c = makeClient(config)
        #expect(c.drain(0).count == 1)
        var times: [Int64] = []
        while let d = c.conn.nextDeadline {
            c.conn.handleTimers(now: d)
            let out = c.drain(d)
            if !out.isEmpty {
                #expect(out.count == 1 && out[0].flags == .syn && out[0].sequenceNumber == SequenceNumber(1000))
                times.append(d)
            }
            if c.conn.state == .closed { times.append(d); break }
        }
        #expect(times == [1 * sec, 3 * sec, 7 * sec])
        #expect(c.conn.pendingError == .timedOut)
        #expect(c.conn.info.statistics.retransmittedSegments == 2)
    }

    @Test("after a lost SYN: cwnd of one segment (RFC 5681 §3.1) and a 3 s RTO without a sample (RFC 6298 §5.7)")
    func lostSYN() {
        let c = makeClient()
        _ = c.drain(0)
        c.conn.handleTimers(now: sec)
        _ = c.drain(sec)
        c.conn.input(segment(5000, 1001, [.syn, .ack], options: options(mss: 1460)), now: sec + 10 * ms)
        #expect(c.conn.state == .established)
        #expect(c.conn.info.congestionWindow == 1460)
        #expect(c.conn.info.smoothedRTT == nil && c.conn.info.rto == .seconds(3))
        _ = c.send([UInt8](repeating: 1, count: 3000))
        #expect(c.drain(sec + 10 * ms).map(\.payloadLength) == [1460])
    }

    @Test("SYN-ACK retries per synAckRetries")
    func synAckRetries() {
        var config = plainConfiguration()
        config.synAckRetries = 1
        let s = Endpoint(TCPConnection(acceptingSYN: segment(5000, 0, .syn), local: tcpServerAddress, remote: tcpClientAddress,
                                       isn: SequenceNumber(1000), mss: 1460, configuration: config, now: 0)!)
        _ = s.drain(0)
        s.conn.handleTimers(now: sec)
        #expect(s.drain(sec).map(\.flags) == [[.syn, .ack]])
        s.conn.handleTimers(now: 3 * sec)
        #expect(s.conn.state == .closed && s.conn.pendingError == .timedOut)
    }

    @Test("three duplicate ACKs: fast retransmit, then NewReno partial and full ACKs (RFC 6582)")
    func newRenoRecovery() {
        var config = plainConfiguration()
        config.congestionControl = .newReno
        let (c, out) = clientWithFlight(config, segments: 10)
        #expect(out.count == 10 && out.allSatisfy { $0.payloadLength == mss })
        // Segments 1 and 4 are lost. The ACK of segment 0, then duplicates.
        c.conn.input(segment(5001, s(1), .ack), now: 10 * ms)
        #expect(c.drain(10 * ms).isEmpty)
        for i in 0..<2 { c.conn.input(segment(5001, s(1), .ack), now: (11 + Int64(i)) * ms) }
        #expect(c.drain(12 * ms).isEmpty)
        c.conn.input(segment(5001, s(1), .ack), now: 13 * ms)
        let fast = c.drain(13 * ms)
        #expect(fast.count == 1 && fast[0].sequenceNumber == SequenceNumber(s(1)) && fast[0].payloadLength == mss)
        let info = c.conn.info
        let flight = 9 * mss
        #expect(info.slowStartThreshold == flight / 2)
        #expect(info.congestionWindow == flight / 2 + 3 * mss)
        #expect(info.statistics.fastRetransmits == 1 && info.statistics.recoveries == 1)
        // A further duplicate inflates cwnd by one segment.
        c.conn.input(segment(5001, s(1), .ack), now: 14 * ms)
        #expect(c.conn.info.congestionWindow == flight / 2 + 4 * mss)
        _ = c.drain(14 * ms)
        // Partial ACK (up to segment 4): segment 4 goes at once, cwnd deflates.
        let before = c.conn.info.congestionWindow
        c.conn.input(segment(5001, s(4), .ack), now: 20 * ms)
        let partial = c.drain(20 * ms)
        #expect(partial.first?.sequenceNumber == SequenceNumber(s(4)))
        #expect(c.conn.info.congestionWindow == before - 3 * mss + mss)
        // Full ACK: recovery ends with cwnd at most ssthresh.
        c.conn.input(segment(5001, s(10), .ack), now: 30 * ms)
        #expect(c.conn.info.congestionWindow <= c.conn.info.slowStartThreshold)
        #expect(c.conn.info.statistics.retransmittedSegments == 2)
        #expect(c.conn.info.statistics.timeouts == 0)
    }

    @Test("limited transmit (RFC 3042): the first two duplicate ACKs each release one new segment")
    func limitedTransmit() {
        var config = plainConfiguration()
        config.initialWindowSegments = 4
        let (c, out) = clientWithFlight(config, segments: 8)
        #expect(out.count == 4)
        c.conn.input(segment(5001, s(0), .ack), now: ms)
        #expect(c.drain(ms).map(\.sequenceNumber.rawValue) == [s(4)])
        c.conn.input(segment(5001, s(0), .ack), now: 2 * ms)
        #expect(c.drain(2 * ms).map(\.sequenceNumber.rawValue) == [s(5)])
        // The third: fast retransmit of segment 0, no new data (cwnd = ssthresh + 3 segments).
        c.conn.input(segment(5001, s(0), .ack), now: 3 * ms)
        #expect(c.drain(3 * ms).map(\.sequenceNumber.rawValue) == [s(0)])
    }

    @Test("SACK recovery resends exactly the holes (RFC 6675)", arguments: [CongestionControlAlgorithm.newReno, .cubic])
    func sackHoles(_ algorithm: CongestionControlAlgorithm) {
        var config = plainConfiguration()
        config.selectiveAcknowledgments = true
        config.congestionControl = algorithm
        let (c, out) = clientWithFlight(config, segments: 10, sack: true)
        #expect(out.count == 10 && c.conn.info.sackEnabled)
        // Segments 0 and 3 are lost; the others arrive and are SACKed.
        var retransmitted: [UInt32] = []
        var blocks: [SACKBlock] = []
        var t = 10 * ms
        for i in [1, 2, 4, 5, 6, 7, 8, 9] {
            if let last = blocks.last, last.end == SequenceNumber(s(i)) {
                blocks[blocks.count - 1].end = SequenceNumber(s(i + 1))
            } else {
                blocks.append(SACKBlock(start: SequenceNumber(s(i)), end: SequenceNumber(s(i + 1))))
            }
            // Most recent block first, as a receiver sends them.
            c.conn.input(segment(5001, s(0), .ack, options: options(blocks: blocks.reversed())), now: t)
            retransmitted += c.drain(t).filter { $0.payloadLength > 0 }.map(\.sequenceNumber.rawValue)
            t += ms
        }
        #expect(retransmitted == [s(0), s(3)])
        let st = c.conn.info.statistics
        #expect(st.fastRetransmits == 1 && st.sackRetransmits == 1 && st.retransmittedSegments == 2)
        // The retransmitted segment 0 arrives: a partial ACK, nothing more to resend.
        c.conn.input(segment(5001, s(3), .ack, options: options(blocks: [SACKBlock(start: SequenceNumber(s(4)), end: SequenceNumber(s(10)))])), now: t)
        #expect(c.drain(t).filter { $0.payloadLength > 0 }.isEmpty)
        c.conn.input(segment(5001, s(10), .ack), now: t + ms)
        #expect(c.conn.info.bytesInFlight == 0 && c.conn.info.statistics.timeouts == 0)
        #expect(c.conn.info.congestionWindow == c.conn.info.slowStartThreshold)
    }

    @Test("with SACK, a duplicated ACK frame is no duplicate ACK: only new SACK information counts (RFC 6675 §2)")
    func duplicatedFramesAreNoDupACKs() {
        var config = plainConfiguration()
        config.selectiveAcknowledgments = true
        config.initialWindowSegments = 10
        let (c, out) = clientWithFlight(config, segments: 10, sack: true)
        #expect(out.count == 10)
        func block(_ a: Int, _ b: Int) -> SACKBlock { SACKBlock(start: SequenceNumber(s(a)), end: SequenceNumber(s(b))) }
        // Segment 0 is delayed (reordered), segment 1 arrived: one SACK, its frame duplicated
        // three times by the network. One DupAck, not four: no fast retransmit.
        let ack = segment(5001, s(0), .ack, options: options(blocks: [block(1, 2)]))
        var t = ms
        for _ in 0..<4 {
            c.conn.input(ack, now: t)
            #expect(c.drain(t).allSatisfy { $0.sequenceNumber != SequenceNumber(s(0)) })
            t += ms
        }
        #expect(c.conn.info.statistics.fastRetransmits == 0 && c.conn.info.statistics.recoveries == 0)
        #expect(c.conn.info.statistics.duplicateACKsReceived == 1)
        // Real duplicates, each SACKing one more segment, still reach the threshold.
        c.conn.input(segment(5001, s(0), .ack, options: options(blocks: [block(1, 3)])), now: t)
        _ = c.drain(t)
        c.conn.input(segment(5001, s(0), .ack, options: options(blocks: [block(1, 4)])), now: t + ms)
        #expect(c.drain(t + ms).first?.sequenceNumber == SequenceNumber(s(0)))
        #expect(c.conn.info.statistics.fastRetransmits == 1)
    }

    @Test("NextSeg rule 3: with nothing lost left and no new data, a hole below the highest SACK goes")
    func sackRule3() {
        var config = plainConfiguration()
        config.selectiveAcknowledgments = true
        let (c, _) = clientWithFlight(config, segments: 6, sack: true)
        func block(_ a: Int, _ b: Int) -> SACKBlock { SACKBlock(start: SequenceNumber(s(a)), end: SequenceNumber(s(b))) }
        // Segments 0 and 4 are lost; 1, 2, 3 and 5 arrive.
        var sent: [UInt32] = []
        for (i, blocks) in [[block(1, 2)], [block(1, 3)], [block(1, 4)], [block(5, 6), block(1, 4)]].enumerated() {
            c.conn.input(segment(5001, s(0), .ack, options: options(blocks: blocks)), now: Int64(i + 1) * ms)
            sent += c.drain(Int64(i + 1) * ms).map(\.sequenceNumber.rawValue)
        }
        // Segment 4 is not "lost" by IsLost (one segment SACKed above it), but rule 3 sends it.
        #expect(sent == [s(0), s(4)])
        #expect(c.conn.info.statistics.sackRetransmits == 1 && c.conn.info.statistics.fastRetransmits == 1)
    }

    @Test("after a timeout, SACKed segments are not sent again")
    func timeoutSkipsSACKed() {
        var config = plainConfiguration()
        config.selectiveAcknowledgments = true
        let (c, _) = clientWithFlight(config, segments: 5, sack: true)
        // Segments 0, 1 and 4 are lost; 2 and 3 are SACKed.
        let sacked = options(blocks: [SACKBlock(start: SequenceNumber(s(2)), end: SequenceNumber(s(4)))])
        c.conn.input(segment(5001, s(0), .ack, options: sacked), now: ms)
        _ = c.drain(ms)
        let d = c.conn.nextDeadline!
        c.conn.handleTimers(now: d)
        var sent = c.drain(d).map(\.sequenceNumber.rawValue)
        #expect(sent == [s(0)])
        c.conn.input(segment(5001, s(1), .ack, options: sacked), now: d + ms)
        sent = c.drain(d + ms).map(\.sequenceNumber.rawValue)
        #expect(sent == [s(1), s(4)])
    }

    @Test("after an idle RTO the window restarts from the initial window (RFC 5681 §4.1), unless disabled", arguments: [true, false])
    func idleRestart(_ restart: Bool) {
        var config = plainConfiguration()
        config.slowStartAfterIdle = restart
        config.initialWindowSegments = 2
        let (c, out) = clientWithFlight(config, segments: 2)
        #expect(out.count == 2)
        // The handshake's sample was 0 ms: RTO 200 ms. Two ACKs grow cwnd to 4 segments.
        c.conn.input(segment(5001, s(1), .ack), now: ms)
        c.conn.input(segment(5001, s(2), .ack), now: ms)
        #expect(c.conn.info.congestionWindow == 4 * mss)
        _ = c.send([UInt8](repeating: 1, count: 4 * mss))
        let later = c.drain(10 * sec)
        #expect(later.count == (restart ? 2 : 4))
    }

    @Test("NewReno congestion avoidance: one MSS per window of ACKed bytes")
    func newRenoGrowth() {
        var r = NewReno(initialWindow: 10 * mss)
        r.slowStartThreshold = 5 * mss
        for _ in 0..<10 { r.onACK(acked: mss, mss: mss, now: 0, smoothedRTT: nil) }
        #expect(r.congestionWindow == 11 * mss)
        var slow = NewReno(initialWindow: 10 * mss)
        slow.onACK(acked: 2 * mss, mss: mss, now: 0, smoothedRTT: nil)
        #expect(slow.congestionWindow == 11 * mss)   // RFC 3465 L = 1 SMSS per ACK
        slow.enterRecovery(flightSize: 20 * mss, mss: mss, now: 0)
        #expect(slow.slowStartThreshold == 10 * mss && slow.congestionWindow == 10 * mss)
        slow.timeout(flightSize: 2 * mss, mss: mss, now: 0)
        #expect(slow.slowStartThreshold == 2 * mss && slow.congestionWindow == mss)
    }

    /// Drives `cubic` with one window of ACKs per RTT from `from` to `to` (seconds).
    private func drive(_ cubic: inout Cubic, from: Double, to: Double, rtt: Double) {
        var t = from
        while t < to {
            let segments = cubic.congestionWindow / mss
            for _ in 0..<max(segments, 1) {
                cubic.onACK(acked: mss, mss: mss, now: Int64(t * 1e9), smoothedRTT: Int64(rtt * 1e9))
            }
            t += rtt
        }
    }

    @Test("CUBIC follows W_cubic(t) = C(t − K)³ + W_max (RFC 9438 §4.2)")
    func cubicCurve() {
        // A large W_max, so that the cubic (not the Reno-friendly W_est) governs.
        var cubic = Cubic(initialWindow: 1000 * mss)
        cubic.enterRecovery(flightSize: 1000 * mss, mss: mss, now: 0)
        #expect(cubic.congestionWindow == 700 * mss && cubic.slowStartThreshold == 700 * mss)
        #expect(cubic.wMax == 1000)
        let rtt = 0.1
        drive(&cubic, from: 0, to: 0.01, rtt: rtt)
        let k = cbrtValue(1000 * (1 - Cubic.beta) / Cubic.c)
        #expect(abs(cubic.k - k) < 1e-9 && abs(k - 9.0856) < 1e-3)
        // At t = K the window is back near W_max; later it follows the cubic, one RTT ahead.
        drive(&cubic, from: 0.1, to: k, rtt: rtt)
        #expect(abs(Double(cubic.congestionWindow) / Double(mss) - 1000) < 10, "\(Double(cubic.congestionWindow) / Double(mss))")
        #expect(cubic.wEst < 1000)
        drive(&cubic, from: k, to: k + 5, rtt: rtt)
        let expected = cubic.window(at: k + 5)
        #expect(abs(Double(cubic.congestionWindow) / Double(mss) - expected) / expected < 0.03,
                "\(Double(cubic.congestionWindow) / Double(mss)) vs \(expected) wEst \(cubic.wEst)")
        // Fast convergence (§4.7): a loss below the previous W_max lowers W_max further.
        let w = Double(cubic.congestionWindow) / Double(mss)
        cubic.enterRecovery(flightSize: 0, mss: mss, now: Int64((k + 3) * 1e9))
        #expect(cubic.wMax == w)   // above the old W_max: no convergence step
        let w2 = Double(cubic.congestionWindow) / Double(mss)
        cubic.enterRecovery(flightSize: 0, mss: mss, now: Int64((k + 4) * 1e9))
        #expect(abs(cubic.wMax - w2 * (1 + Cubic.beta) / 2) < 1e-9)
    }

    @Test("CUBIC's Reno-friendly region (RFC 9438 §4.3): short RTTs grow by α_cubic per RTT")
    func cubicFriendly() {
        var cubic = Cubic(initialWindow: 10 * mss)
        cubic.enterRecovery(flightSize: 0, mss: mss, now: 0)
        #expect(cubic.congestionWindow == 7 * mss)
        #expect(abs(Cubic.alpha - 3 * 0.3 / 1.7) < 1e-12)
        drive(&cubic, from: 0, to: 0.005, rtt: 0.001)   // five 1 ms RTTs
        let w = Double(cubic.congestionWindow) / Double(mss)
        // W_est ≈ 7 + 5·α; the cubic curve has barely moved from 7.
        #expect(abs(w - (7 + 5 * Cubic.alpha)) < 0.3, "\(w)")
        #expect(cubic.window(at: 0.005) < 7.1)
    }
}

private func cbrtValue(_ x: Double) -> Double {
    var y = x
    for _ in 0..<100 { y = (2 * y + x / (y * y)) / 3 }
    return y
}
