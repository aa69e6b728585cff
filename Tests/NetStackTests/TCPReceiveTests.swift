// TCPReceiveTests.swift: options and flow control against scripted peers: window scaling
// arithmetic, timestamps (echo, RTTM, PAWS), MSS clamping, Nagle, delayed ACKs, SACK
// blocks from the receiver, the out-of-order limit, zero windows and persist probes,
// keepalive, and receive-window updates without silly-window syndrome.
@testable import NetProtocols
@testable import NetStack
import Testing

/// A client whose peer (ISN 5000) answered with `peer` options, established at `now`.
private func optionClient(_ config: TCPConfiguration, peer: TCPOptions, window: UInt16 = 65535, now: Int64 = 0) -> Endpoint {
    let c = makeClient(config, now: now)
    _ = c.drain(now)
    c.conn.input(segment(5000, 1001, [.syn, .ack], window: window, options: peer), now: now)
    _ = c.drain(now)
    return c
}

@Suite("TCP: options and flow control")
struct TCPReceiveTests {
    @Test("window scaling: our shift from the buffer, theirs applied to every window after the SYN")
    func windowScaling() {
        var config = plainConfiguration()
        config.windowScaling = true
        config.receiveBufferSize = 1 << 20
        let c = makeClient(config)
        let syn = c.drain(0)
        // 65535 << 4 is just under 1 MiB, so 5 (RFC 7323 §2.3).
        #expect(syn[0].options.windowScale == 5 && syn[0].window == 65535)
        c.conn.input(segment(5000, 1001, [.syn, .ack], window: 1000, options: options(mss: 1460, wscale: 3)), now: 0)
        #expect(c.conn.info.peerWindow == 1000)       // the SYN's window is not scaled
        c.conn.input(segment(5001, 1001, .ack, window: 1000), now: ms)
        #expect(c.conn.info.peerWindow == 8000)
        let ack = c.drain(ms)
        #expect(ack.count == 1 && Int(ack[0].window) == (1 << 20) >> 5)
        #expect(c.conn.info.sendWindowScale == 3 && c.conn.info.receiveWindowScale == 5)
        // The peer offered none: no scaling either way.
        let d = optionClient(config, peer: options(mss: 1460))
        #expect(d.conn.info.receiveWindowScale == 0 && d.conn.info.sendWindowScale == 0)
        #expect(d.drain(0).isEmpty)
        d.conn.input(segment(5001, 1001, .ack, payload: bytes(1)), now: ms)
        d.conn.handleTimers(now: sec)
        #expect(d.drain(sec).first?.window == 65535)
    }

    @Test("timestamps: TS.Recent echoed, RTT measured from TSecr, PAWS drops old segments")
    func timestamps() {
        var config = plainConfiguration()
        config.timestamps = true
        let c = makeClient(config)
        let syn = c.drain(0)
        #expect(syn[0].options.timestamp == TCPTimestamp(value: 0, echoReply: 0))
        c.conn.input(segment(5000, 1001, [.syn, .ack], options: options(mss: 1460, ts: TCPTimestamp(value: 500, echoReply: 0))), now: 30 * ms)
        let ack = c.drain(30 * ms)
        #expect(ack[0].options.timestamp == TCPTimestamp(value: 30, echoReply: 500))
        #expect(c.conn.info.timestampsEnabled)
        // Data with TSval 510 echoing our 30: RTT sample from the echo (RFC 7323 §4).
        _ = c.send([1, 2, 3])
        _ = c.drain(40 * ms)
        c.conn.input(segment(5001, 1004, .ack, options: options(ts: TCPTimestamp(value: 510, echoReply: 40)), payload: bytes(10)), now: 120 * ms)
        #expect(c.conn.readableBytes == 10)
        #expect(c.conn.info.smoothedRTT == .microseconds(36_250))   // 30 ms from the handshake, then 80: 7/8·30 + 1/8·80
        c.conn.handleTimers(now: sec)
        #expect(c.drain(sec).first?.options.timestamp?.echoReply == 510)
        // An older TSval: an old duplicate by PAWS (RFC 7323 §5.3), dropped and ACKed.
        c.conn.input(segment(5011, 1004, .ack, options: options(ts: TCPTimestamp(value: 400, echoReply: 40)), payload: bytes(10)), now: sec)
        #expect(c.conn.readableBytes == 10)
        #expect(c.drain(sec).count == 1)
        #expect(c.conn.info.statistics.droppedSegments == 1)
        // A RST is exempt from PAWS.
        c.conn.input(segment(5011, 0, .rst, options: options(ts: TCPTimestamp(value: 1, echoReply: 0))), now: sec)
        #expect(c.conn.state == .closed)
    }

    @Test("MSS: the smaller of ours and the peer's (536 when absent), less 12 with timestamps")
    func mssClamping() {
        var config = plainConfiguration()
        #expect(optionClient(config, peer: options()).conn.info.maximumSegmentSize == 536)
        #expect(optionClient(config, peer: options(mss: 9000)).conn.info.maximumSegmentSize == 1460)
        config.timestamps = true
        let c = optionClient(config, peer: options(mss: 1000, ts: TCPTimestamp(value: 1, echoReply: 0)))
        #expect(c.conn.info.maximumSegmentSize == 988)
        config.noDelay = true
        let d = optionClient(config, peer: options(mss: 1000, ts: TCPTimestamp(value: 1, echoReply: 0)))
        _ = d.send([UInt8](repeating: 1, count: 5000))
        let out = d.drain(ms)
        #expect(out.map(\.payloadLength) == [988, 988, 988, 988, 988, 60])
        // Our SYN advertises our MSS.
        #expect(makeClient(config, mss: 1200).drain(0)[0].options.maximumSegmentSize == 1200)
    }

    @Test("TCP_CORK: short segments wait even with nothing in flight, full ones go; uncorking sends the rest as one; the persist timer (an RTO) ends a forgotten cork")
    func cork() {
        let c = establishedClient()
        c.conn.cork = true
        _ = c.send([UInt8](repeating: 1, count: 240))    // nginx: the header (writev)...
        #expect(c.drain(0).isEmpty)
        _ = c.send([UInt8](repeating: 2, count: 1024))   // ...and the body (sendfile)
        #expect(c.drain(0).isEmpty)
        c.conn.cork = false
        #expect(c.drain(0).map(\.payloadLength) == [1264])
        // Corked, a full segment goes and the short tail waits.
        c.conn.input(segment(5001, 2265, .ack), now: ms)
        c.conn.cork = true
        _ = c.send([UInt8](repeating: 3, count: 1460 + 100))
        #expect(c.drain(ms).map(\.payloadLength) == [1460])
        // Once the full segment is acknowledged, the tail still waits for the persist
        // timer (Linux sends a corked tail after 200 ms).
        c.conn.input(segment(5001, 3725, .ack), now: 2 * ms)
        #expect(c.drain(2 * ms).isEmpty)
        let deadline = c.conn.nextDeadline!
        c.conn.handleTimers(now: deadline)
        #expect(c.drain(deadline).map(\.payloadLength) == [100])
    }

    @Test("Nagle: one small segment in flight at a time; noDelay sends at once")
    func nagle() {
        let c = establishedClient()
        _ = c.send([UInt8](repeating: 1, count: 100))
        #expect(c.drain(0).map(\.payloadLength) == [100])
        _ = c.send([UInt8](repeating: 2, count: 100))
        #expect(c.drain(ms).isEmpty)
        _ = c.send([UInt8](repeating: 3, count: 100))
        #expect(c.drain(ms).isEmpty)
        c.conn.input(segment(5001, 1101, .ack), now: 2 * ms)
        #expect(c.drain(2 * ms).map(\.payloadLength) == [200])
        // A full segment is never held back.
        _ = c.send([UInt8](repeating: 4, count: 1460))
        #expect(c.drain(3 * ms).map(\.payloadLength) == [1460])

        let d = establishedClient()
        d.conn.noDelay = true
        _ = d.send([UInt8](repeating: 1, count: 100))
        _ = d.send([UInt8](repeating: 1, count: 100))
        #expect(d.drain(0).map(\.payloadLength) == [200])
        _ = d.send([UInt8](repeating: 1, count: 100))
        #expect(d.drain(0).map(\.payloadLength) == [100])

        // Minshall's rule (Linux): full segments unacknowledged do not hold a short tail;
        // only an unacknowledged short segment does.
        let e = establishedClient()
        _ = e.send([UInt8](repeating: 5, count: 2 * 1460 + 300))
        #expect(e.drain(0).map(\.payloadLength) == [1460, 1460, 300])
        _ = e.send([UInt8](repeating: 6, count: 50))
        #expect(e.drain(ms).isEmpty)                          // the 300 is still in flight
        e.conn.input(segment(5001, 1001 + 2 * 1460 + 300, .ack), now: 2 * ms)
        #expect(e.drain(2 * ms).map(\.payloadLength) == [50])
    }

    @Test("passive open with the peer's ISN anywhere in sequence space: reading a full buffer sends a window update", arguments: [UInt32(5000), 0x8000_0000, 0x9000_0000, 0xFFFF_FF00])
    func windowUpdateAfterPassiveOpen(peerISN: UInt32) {
        var config = plainConfiguration()
        config.receiveBufferSize = 8 * 1460
        let syn = segment(peerISN, 0, .syn, options: options(mss: 1460))
        let s = Endpoint(TCPConnection(acceptingSYN: syn, local: tcpServerAddress, remote: tcpClientAddress,
                                       isn: SequenceNumber(1000), mss: 1460, configuration: config, now: 0)!)
        _ = s.drain(0)
        var next = peerISN &+ 1
        s.conn.input(segment(next, 1001, .ack), now: 0)
        for _ in 0..<8 {
            s.conn.input(segment(next, 1001, .ack, payload: bytes(1460)), now: ms)
            next = next &+ 1460
        }
        #expect(s.drain(ms).last?.window == 0)
        var buffer = [UInt8](repeating: 0, count: 8 * 1460)
        _ = buffer.withUnsafeMutableBytes { try? s.conn.receive(into: $0) }
        let update = s.drain(2 * ms)
        #expect(update.count == 1 && update.first?.window == UInt16(8 * 1460), "\(update)")
        #expect(s.conn.info.statistics.windowUpdates == 1)
    }

    @Test("a delayed ACK goes when the application has read everything, unless it answers requests (Linux's tcp_cleanup_rbuf)")
    func ackOnRead() {
        let c = establishedClient()
        c.conn.input(segment(5001, 1001, .ack, payload: bytes(1000)), now: ms)
        #expect(c.drain(ms).isEmpty)                          // delayed
        var buffer = [UInt8](repeating: 0, count: 4096)
        _ = buffer.withUnsafeMutableBytes { try? c.conn.receive(into: $0) }
        let ack = c.drain(2 * ms)
        #expect(ack.count == 1 && ack[0].acknowledgmentNumber == SequenceNumber(6001) && ack[0].payloadLength == 0)
        // Request/response: our answer carried the last ACK, so the next request's ACK
        // waits for the next answer instead of going alone on the read.
        c.conn.input(segment(6001, 1001, .ack, payload: bytes(100)), now: 3 * ms)
        _ = buffer.withUnsafeMutableBytes { try? c.conn.receive(into: $0) }
        _ = c.send([UInt8](repeating: 7, count: 100))
        let answer = c.drain(3 * ms)
        #expect(answer.count == 1 && answer[0].payloadLength == 100 && answer[0].acknowledgmentNumber == SequenceNumber(6101))
        c.conn.input(segment(6101, 1101, .ack, payload: bytes(100)), now: 4 * ms)
        _ = buffer.withUnsafeMutableBytes { try? c.conn.receive(into: $0) }
        #expect(c.drain(4 * ms).isEmpty)
        // No answer within the delayed-ACK timeout: the ACK goes alone, and the
        // connection is no longer treated as interactive.
        c.conn.handleTimers(now: 4 * ms + 40 * ms)
        #expect(c.drain(44 * ms).map(\.acknowledgmentNumber) == [SequenceNumber(6201)])
        c.conn.input(segment(6201, 1101, .ack, payload: bytes(100)), now: 50 * ms)
        _ = buffer.withUnsafeMutableBytes { try? c.conn.receive(into: $0) }
        #expect(c.drain(50 * ms).map(\.acknowledgmentNumber) == [SequenceNumber(6301)])
    }

    @Test("a reader whose read ACKed each request still turns interactive when it answers at once (Linux's tcp_event_data_sent)")
    func pingPongAfterReadACK() {
        let c = establishedClient()
        var buffer = [UInt8](repeating: 0, count: 4096)
        // Request 1: the read ACKs it alone (nothing says yet that we answer), then the answer.
        c.conn.input(segment(5001, 1001, .ack, payload: bytes(100)), now: ms)
        _ = buffer.withUnsafeMutableBytes { try? c.conn.receive(into: $0) }
        #expect(c.drain(ms).map(\.payloadLength) == [0])
        _ = c.send([UInt8](repeating: 7, count: 100))
        #expect(c.drain(ms).map(\.payloadLength) == [100])
        // Request 2: the read leaves the ACK to the answer, which carries it.
        c.conn.input(segment(5101, 1101, .ack, payload: bytes(100)), now: 2 * ms)
        _ = buffer.withUnsafeMutableBytes { try? c.conn.receive(into: $0) }
        #expect(c.drain(2 * ms).isEmpty)
        _ = c.send([UInt8](repeating: 7, count: 100))
        let answer = c.drain(2 * ms)
        #expect(answer.count == 1 && answer[0].payloadLength == 100 && answer[0].acknowledgmentNumber == SequenceNumber(5201), "\(answer)")
    }

    @Test("delayed ACK: one segment waits for the timeout, the second full one is ACKed at once")
    func delayedACK() {
        let c = establishedClient()
        c.conn.input(segment(5001, 1001, .ack, payload: bytes(536)), now: 10 * ms)
        #expect(c.drain(10 * ms).isEmpty)
        #expect(c.conn.nextDeadline == 50 * ms)
        c.conn.handleTimers(now: 50 * ms)
        let late = c.drain(50 * ms)
        #expect(late.count == 1 && late[0].acknowledgmentNumber == SequenceNumber(5537))
        #expect(c.conn.info.statistics.delayedACKs == 1)
        c.conn.input(segment(5537, 1001, .ack, payload: bytes(536)), now: 60 * ms)
        #expect(c.drain(60 * ms).isEmpty)
        c.conn.input(segment(6073, 1001, .ack, payload: bytes(536)), now: 61 * ms)
        let now = c.drain(61 * ms)
        #expect(now.count == 1 && now[0].acknowledgmentNumber == SequenceNumber(6609))
        #expect(c.conn.nextDeadline == nil)
        // Outgoing data carries the ACK (no separate one at the timeout).
        c.conn.input(segment(6609, 1001, .ack, payload: bytes(10)), now: 70 * ms)
        _ = c.send([1])
        let piggy = c.drain(70 * ms)
        #expect(piggy.count == 1 && piggy[0].payloadLength == 1 && piggy[0].acknowledgmentNumber == SequenceNumber(6619))
    }

    @Test("receiver SACK: out of order ACKed at once with blocks, most recent first; a filled hole ACKed at once")
    func receiverSACK() {
        var config = plainConfiguration()
        config.selectiveAcknowledgments = true
        let c = optionClient(config, peer: options(mss: 1460, sack: true))
        func block(_ a: UInt32, _ b: UInt32) -> SACKBlock { SACKBlock(start: SequenceNumber(a), end: SequenceNumber(b)) }
        c.conn.input(segment(5101, 1001, .ack, payload: bytes(100)), now: ms)
        var out = c.drain(ms)
        #expect(out.count == 1 && out[0].acknowledgmentNumber == SequenceNumber(5001))
        #expect(Array(out[0].options.sackBlocks) == [block(5101, 5201)])
        c.conn.input(segment(5301, 1001, .ack, payload: bytes(100)), now: ms)
        c.conn.input(segment(5501, 1001, .ack, payload: bytes(100)), now: ms)
        c.conn.input(segment(5701, 1001, .ack, payload: bytes(100)), now: ms)
        c.conn.input(segment(5901, 1001, .ack, payload: bytes(100)), now: ms)
        c.conn.input(segment(5201, 1001, .ack, payload: bytes(100)), now: ms)   // joins the first two
        out = c.drain(ms)
        #expect(Array(out[0].options.sackBlocks) == [block(5101, 5401), block(5901, 6001), block(5701, 5801), block(5501, 5601)])
        #expect(c.conn.info.statistics.outOfOrderSegments == 6)
        // The hole at 5001 filled: everything through 5401 is in order.
        c.conn.input(segment(5001, 1001, .ack, payload: bytes(100)), now: 2 * ms)
        out = c.drain(2 * ms)
        #expect(out.count == 1 && out[0].acknowledgmentNumber == SequenceNumber(5401))
        #expect(Array(out[0].options.sackBlocks) == [block(5901, 6001), block(5701, 5801), block(5501, 5601)])
        #expect(c.conn.readableBytes == 400)
        // With timestamps only three blocks fit.
        config.timestamps = true
        let d = optionClient(config, peer: options(mss: 1460, sack: true, ts: TCPTimestamp(value: 1, echoReply: 0)))
        for i in 0..<5 { d.conn.input(segment(UInt32(5101 + 200 * i), 1001, .ack, options: options(ts: TCPTimestamp(value: 2, echoReply: 0)), payload: bytes(100)), now: ms) }
        #expect(d.drain(ms).last?.options.sackBlocks.count == 3)
    }

    @Test("D-SACK (RFC 2883): data received twice is reported in the first block")
    func duplicateSACK() {
        var config = plainConfiguration()
        config.selectiveAcknowledgments = true
        let c = optionClient(config, peer: options(mss: 1460, sack: true))
        c.conn.input(segment(5001, 1001, .ack, payload: bytes(100)), now: ms)
        _ = c.receiveAll()
        c.conn.handleTimers(now: sec)
        _ = c.drain(sec)
        c.conn.input(segment(5001, 1001, .ack, payload: bytes(100)), now: sec)
        let out = c.drain(sec)
        #expect(out.count == 1 && Array(out[0].options.sackBlocks) == [SACKBlock(start: SequenceNumber(5001), end: SequenceNumber(5101))])
        // Reported once; a partly old segment reports the old part, beside the out-of-order block.
        c.conn.input(segment(5301, 1001, .ack, payload: bytes(100)), now: sec)
        #expect(Array(c.drain(sec)[0].options.sackBlocks) == [SACKBlock(start: SequenceNumber(5301), end: SequenceNumber(5401))])
        c.conn.input(segment(5051, 1001, .ack, payload: bytes(100)), now: sec)
        #expect(Array(c.drain(sec)[0].options.sackBlocks) == [SACKBlock(start: SequenceNumber(5051), end: SequenceNumber(5101)),
                                                             SACKBlock(start: SequenceNumber(5301), end: SequenceNumber(5401))])
    }

    @Test("out-of-order data beyond outOfOrderLimit is dropped and counted; in-order bytes are exact")
    func outOfOrderLimit() {
        var config = plainConfiguration()
        config.outOfOrderLimit = 3000
        let c = establishedClient(config)
        for i in 1...3 { c.conn.input(segment(UInt32(5001 + 1460 * i), 1001, .ack, payload: bytes(1460, fill: UInt8(i))), now: ms) }
        #expect(c.conn.info.statistics.outOfOrderSegments == 2)
        #expect(c.conn.info.statistics.droppedSegments == 1)
        c.conn.input(segment(5001, 1001, .ack, payload: bytes(1460, fill: 0)), now: ms)
        let got = c.receiveAll()
        #expect(got.count == 3 * 1460)
        #expect(Array(got[1460..<1463]) == [1, 2, 3] && Array(got[2920..<2923]) == [2, 3, 4])
    }

    @Test("zero window: persist probes with backoff, data resumes when the window opens")
    func zeroWindow() {
        let c = establishedClient()
        c.conn.input(segment(5001, 1001, .ack, window: 0), now: 0)
        #expect(c.send([UInt8](repeating: 9, count: 3000)) == 3000)
        #expect(c.drain(0).isEmpty)
        var probes: [Int64] = []
        var t: Int64 = 0
        for _ in 0..<4 {
            t = c.conn.nextDeadline!
            c.conn.handleTimers(now: t)
            let out = c.drain(t)
            #expect(out.count == 1 && out[0].sequenceNumber == SequenceNumber(1000) && out[0].payloadLength == 0)
            probes.append(t)
            c.conn.input(segment(5001, 1001, .ack, window: 0), now: t + ms)   // still closed
            #expect(c.drain(t + ms).isEmpty)
        }
        // RTO 200 ms (the minimum; the handshake's RTT was 0), doubling.
        #expect(probes == [200 * ms, 600 * ms, 1400 * ms, 3000 * ms])
        #expect(c.conn.info.statistics.zeroWindowProbes == 4)
        #expect(c.conn.info.statistics.retransmittedSegments == 0)
        c.conn.input(segment(5001, 1001, .ack, window: 65535), now: t + 2 * ms)
        // The 80-byte tail goes too: no other short segment is in flight (Nagle with
        // Minshall's rule, as Linux).
        #expect(c.drain(t + 2 * ms).map(\.payloadLength) == [1460, 1460, 80])
        c.conn.input(segment(5001, 1001 + 3000, .ack, window: 65535), now: t + 3 * ms)
        #expect(c.drain(t + 3 * ms).isEmpty)
    }

    @Test("a window that closes with data in flight: the timeout still resends, and a live peer is not given up on")
    func zeroWindowInFlight() {
        var config = plainConfiguration()
        config.maximumRetransmissions = 2
        let c = establishedClient(config)
        _ = c.send([UInt8](repeating: 1, count: 1000))
        #expect(c.drain(0).map(\.payloadLength) == [1000])
        // The peer shrinks its window to zero without acknowledging (RFC 9293 discourages it).
        c.conn.input(segment(5001, 1001, .ack, window: 0), now: ms)
        var t: Int64 = 0
        for _ in 0..<5 {
            t = c.conn.nextDeadline!
            c.conn.handleTimers(now: t)
            let out = c.drain(t)
            #expect(out.count == 1 && out[0].sequenceNumber == SequenceNumber(1001) && out[0].payloadLength == 1000)
            c.conn.input(segment(5001, 1001, .ack, window: 0), now: t + ms)
        }
        #expect(c.conn.state == .established)
        c.conn.input(segment(5001, 2001, .ack, window: 65535), now: t + 2 * ms)
        #expect(c.conn.info.bytesInFlight == 0 && c.conn.nextDeadline == nil)
    }

    @Test("keepalive: probes after idle, every interval, then timedOut with RST; an answer resets it")
    func keepalive() {
        let c = establishedClient()
        var k = TCPKeepalive()
        k.enabled = true
        k.idle = .seconds(10)
        k.interval = .seconds(1)
        k.probes = 3
        c.conn.keepalive = k
        #expect(c.conn.nextDeadline == 10 * sec)
        c.conn.handleTimers(now: 10 * sec)
        let probe = c.drain(10 * sec)
        #expect(probe.count == 1 && probe[0].sequenceNumber == SequenceNumber(1000) && probe[0].flags == .ack)
        // The peer answers: idle starts again.
        c.conn.input(segment(5001, 1001, .ack), now: 10 * sec + ms)
        #expect(c.conn.nextDeadline == 20 * sec + ms)
        var t = 20 * sec + ms
        for _ in 0..<3 {
            c.conn.handleTimers(now: t)
            #expect(c.drain(t).count == 1)
            t += sec
        }
        #expect(c.conn.nextDeadline == t)
        c.conn.handleTimers(now: t)
        let rst = c.drain(t)
        #expect(rst.count == 1 && rst[0].flags == .rst)
        #expect(c.conn.state == .closed && c.conn.pendingError == .timedOut)
        #expect(c.conn.info.statistics.keepaliveProbes == 4)
    }

    @Test("receive window: no silly window updates; reading opens it with one update")
    func receiveWindow() {
        var config = plainConfiguration()
        config.receiveBufferSize = 8 * 1460
        let c = makeClient(config)
        _ = c.drain(0)
        c.conn.input(segment(5000, 1001, [.syn, .ack], options: options(mss: 1460)), now: 0)
        #expect(c.drain(0).first?.window == UInt16(8 * 1460))
        // Fill the buffer: the window closes.
        for i in 0..<8 { c.conn.input(segment(UInt32(5001 + 1460 * i), 1001, .ack, payload: bytes(1460)), now: ms) }
        let acks = c.drain(ms)
        #expect(acks.last?.window == 0 && acks.last?.acknowledgmentNumber == SequenceNumber(5001 + 8 * 1460))
        // Reading a little: no update, and a later ACK still shows 0 (RFC 9293 §3.8.6.2.2).
        var small = [UInt8](repeating: 0, count: 100)
        _ = small.withUnsafeMutableBytes { try? c.conn.receive(into: $0) }
        #expect(c.drain(2 * ms).isEmpty)
        c.conn.input(segment(5000 + 8 * 1460, 1001, .ack), now: 3 * ms)   // a probe-like old segment
        #expect(c.drain(3 * ms).first?.window == 0)
        // Reading a full segment's worth opens it, with a window update.
        var more = [UInt8](repeating: 0, count: 1460 * 4)
        _ = more.withUnsafeMutableBytes { try? c.conn.receive(into: $0) }
        let update = c.drain(4 * ms)
        #expect(update.count == 1 && update[0].window == UInt16(1460 * 4 + 100))
        // Filled again: data at RCV.NXT into a zero window is dropped but ACKed.
        c.conn.input(segment(UInt32(5001 + 8 * 1460), 1001, .ack, payload: bytes(1460 * 4 + 100)), now: 5 * ms)
        #expect(c.drain(5 * ms).last?.window == 0)
        c.conn.input(segment(UInt32(5001 + 12 * 1460 + 100), 1001, .ack, payload: bytes(10)), now: 6 * ms)
        let zero = c.drain(6 * ms)
        #expect(zero.count == 1 && zero[0].acknowledgmentNumber == SequenceNumber(UInt32(5001 + 12 * 1460 + 100)))
        // Data beyond the advertised window is not accepted.
        c.conn.input(segment(UInt32(5001 + 8 * 1460), 1001, .ack, payload: bytes(1460 * 5)), now: 5 * ms)
        #expect(c.conn.readableBytes <= 8 * 1460)
    }
    @Test("a scaled window rounded up offers at most one scaling unit past the buffer, and shrinks by less than one unit rather than offer what cannot be stored")
    func scaledWindowFilledExactly() {
        var config = plainConfiguration()
        config.windowScaling = true
        config.receiveBufferSize = 100_000   // shift 1: windows are multiples of 2
        let c = makeClient(config)
        _ = c.drain(0)
        c.conn.input(segment(5000, 1001, [.syn, .ack], options: options(mss: 1460, wscale: 0)), now: 0)
        #expect(c.conn.info.receiveWindowScale == 1)
        var next = 5001, edge = 5001
        var t: Int64 = 0
        // The application never reads; the peer sends segments of varying (odd and even)
        // sizes up to the latest edge we advertise, as a conforming sender may, and each
        // segment gets its own ACK. Rounding up moves the edge right (RFC 7323 Appendix F)
        // until the ring's one unit of slack is used; then the edge may move left by less
        // than a unit (Linux's tcp_shrink_window) rather than offer unstorable bytes.
        for i in 0..<400 {
            for a in c.drain(t) {
                let right = Int(a.acknowledgmentNumber.rawValue) + (Int(a.window) << c.conn.info.receiveWindowScale)
                #expect(right > edge - 2, "the window shrank by a unit or more: \(right) < \(edge)")
                #expect(right <= 5001 + 100_000 + 2, "offered past the ring: \(right)")
                edge = right
            }
            if next >= edge { break }
            let n = min(777 + i % 3, edge - next)
            c.conn.input(segment(UInt32(next), 1001, .ack, payload: bytes(n)), now: t)
            next += n
            t += 50 * ms
            c.conn.handleTimers(now: t)   // the delayed ACK: one ACK (and window) per segment
        }
        #expect(c.conn.info.statistics.droppedSegments == 0)
        #expect(c.conn.readableBytes == next - 5001)
        #expect(c.conn.readableBytes >= 100_000 && c.conn.readableBytes <= 100_000 + 2)
    }
}
