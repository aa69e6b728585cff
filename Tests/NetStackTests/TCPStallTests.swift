// TCPStallTests.swift: the two causes of the stall long transfers showed under 5% loss
// (TCPStallReproTests reproduces it between two interfaces): RTT samples taken from ACKs
// that echo a transmission from before a timeout, and data a timeout sent past a closed
// window waiting for another timeout after the window opened.
@testable import NetProtocols
@testable import NetStack
import Testing

@Suite("TCP: timeouts against lost ACKs and closed windows")
struct TCPStallTests {
    @Test("an ACK echoing a TSval from before a timeout gives no RTT sample (the RTO does not feed on itself)")
    func noSampleFromAnEchoOlderThanATimeout() {
        var config = plainConfiguration()
        config.timestamps = true
        let t0 = 1000 * ms
        let c = makeClient(config, now: t0)
        _ = c.drain(t0)
        c.conn.input(segment(5000, 1001, [.syn, .ack], options: options(mss: 1460, ts: TCPTimestamp(value: 7, echoReply: 1000))),
                     now: t0 + 10 * ms)
        _ = c.drain(t0 + 10 * ms)
        #expect(c.conn.info.smoothedRTT == .milliseconds(10))
        let rto = c.conn.info.rto
        let mss = c.conn.info.maximumSegmentSize
        // Two segments; the peer gets both, but its ACK is lost.
        #expect(c.send([UInt8](repeating: 1, count: 2 * mss)) == 2 * mss)
        let sent = c.drain(t0 + 10 * ms)
        #expect(sent.count == 2 && sent[0].options.timestamp?.value == 1010)
        // The timeout resends the first; the peer, holding it already, answers with its
        // TS.Recent: the original's TSval.
        let d = c.conn.nextDeadline!
        c.conn.handleTimers(now: d)
        #expect(c.drain(d).count == 1)
        let ackTime = d + 10 * ms
        c.conn.input(segment(5001, 1001 + UInt32(2 * mss), .ack, options: options(ts: TCPTimestamp(value: 8, echoReply: 1010))),
                     now: ackTime)
        #expect(c.conn.info.bytesInFlight == 0)
        #expect(c.conn.info.smoothedRTT == .milliseconds(10), "the sample would be the timeout, \((ackTime - t0 - 10 * ms) / ms) ms")
        // A fresh echo samples again and ends the backoff (RFC 6298 §5.7).
        let t1 = ackTime + 100 * ms
        #expect(c.send([UInt8](repeating: 2, count: 100)) == 100)
        let fresh = c.drain(t1)
        let tsval = fresh.first?.options.timestamp?.value ?? 0
        c.conn.input(segment(5001, 1001 + UInt32(2 * mss + 100), .ack, options: options(ts: TCPTimestamp(value: 9, echoReply: tsval))),
                     now: t1 + 10 * ms)
        #expect(c.conn.info.smoothedRTT == .milliseconds(10) && c.conn.info.rto == rto)
    }

    @Test("data a timeout sent into a closed window goes again as soon as the window opens, as much as fits",
          arguments: [UInt16(65535), 48])
    func resendWhenTheWindowOpens(_ window: UInt16) {
        let c = establishedClient()
        #expect(c.send([UInt8](repeating: 1, count: 1460)) == 1460)
        #expect(c.drain(0).count == 1)
        // The peer's buffer is full: it ACKs nothing and closes its window.
        c.conn.input(segment(5001, 1001, .ack, window: 0), now: 5 * ms)
        let d = c.conn.nextDeadline!
        c.conn.handleTimers(now: d)
        let probe = c.drain(d)
        #expect(probe.count == 1 && probe[0].sequenceNumber == SequenceNumber(1001))
        // Dropped by the closed window; the ACK says so.
        c.conn.input(segment(5001, 1001, .ack, window: 0), now: d + ms)
        #expect(c.drain(d + ms).isEmpty)
        // The application reads: the window opens. What fits goes now, not after the
        // backed-off timeout.
        c.conn.input(segment(5001, 1001, .ack, window: window), now: d + 50 * ms)
        let again = c.drain(d + 50 * ms)
        #expect(again.count == 1)
        #expect(again.first?.sequenceNumber == SequenceNumber(1001) && again.first?.payloadLength == min(1460, Int(window)))
    }

    @Test("after a timeout sent data past a closed window, our ACKs stay inside the peer's window (Linux's tcp_acceptable_seq)")
    func acknowledgmentsStayAcceptable() {
        let c = establishedClient()
        #expect(c.send([UInt8](repeating: 1, count: 1460)) == 1460)
        _ = c.drain(0)
        c.conn.input(segment(5001, 1001, .ack, window: 0), now: 5 * ms)
        let d = c.conn.nextDeadline!
        c.conn.handleTimers(now: d)
        #expect(c.drain(d).first?.payloadLength == 1460)
        // The peer sends data while its window stays closed: our ACK must carry a sequence
        // number its zero window accepts (SND.UNA), or it drops the ACK and waits for ours.
        withExtendedLifetime(bytes(100)) {
            c.conn.input(segment(5001, 1001, [.ack, .psh], window: 0, payload: bytes(100)), now: d + ms)
        }
        c.conn.handleTimers(now: d + 250 * ms)
        let ack = c.drain(d + 250 * ms).first { $0.payloadLength == 0 }
        #expect(ack?.sequenceNumber == SequenceNumber(1001) && ack?.acknowledgmentNumber == SequenceNumber(5101))
    }

    @Test("with our window closed, a peer's ACK from beyond it still acknowledges our data (RFC 9293 §3.10.7.4)")
    func zeroWindowStillTakesACKs() {
        var config = plainConfiguration()
        config.receiveBufferSize = 1460
        let c = establishedClient(config)
        // Our data in flight.
        #expect(c.send([UInt8](repeating: 1, count: 500)) == 500)
        #expect(c.drain(0).count == 1)
        // The peer fills our receive buffer: our window is zero.
        let data = bytes(1460)
        c.conn.input(segment(5001, 1001, [.ack, .psh], payload: data), now: ms)
        _ = c.drain(ms)
        #expect(c.conn.info.bytesInFlight == 500)
        // The peer, having sent past our window (its SND.NXT is ahead of our RCV.NXT),
        // acknowledges our 500 bytes from there. The ACK counts though the segment is not
        // acceptable.
        c.conn.input(segment(5001 + 1460 + 1460, 1501, .ack), now: 2 * ms)
        #expect(c.conn.info.bytesInFlight == 0)
        #expect(c.conn.nextDeadline == nil || c.conn.nextDeadline! > 2 * ms)
    }

    @Test("after a timeout moved SND.NXT back, a pure ACK carries SND.MAX, which the peer accepts")
    func acknowledgmentsFromSNDMAX() {
        let c = establishedClient()
        #expect(c.send([UInt8](repeating: 1, count: 3 * 1460)) == 3 * 1460)
        #expect(c.drain(0).count == 3)
        let d = c.conn.nextDeadline!
        c.conn.handleTimers(now: d)
        #expect(c.drain(d).count == 1)
        // The peer holds all three segments (its ACK was lost) and sends data.
        withExtendedLifetime(bytes(100)) {
            c.conn.input(segment(5001, 1001, [.ack, .psh], payload: bytes(100)), now: d + ms)
        }
        c.conn.handleTimers(now: d + 100 * ms)
        let ack = c.drain(d + 100 * ms).first { $0.payloadLength == 0 }
        #expect(ack?.sequenceNumber == SequenceNumber(1001 + 3 * 1460))
    }

    @Test("with our window zero, a peer's ACK below RCV.NXT still counts (RFC 9293 §3.10.7.4)")
    func zeroWindowTakesACKsFromBelow() {
        var config = plainConfiguration()
        config.receiveBufferSize = 1460
        let c = establishedClient(config)
        #expect(c.send([UInt8](repeating: 1, count: 500)) == 500)
        _ = c.drain(0)
        c.conn.input(segment(5001, 1001, [.ack, .psh], payload: bytes(1460)), now: ms)
        _ = c.drain(ms)
        // The peer's timeout moved its SND.NXT back below our RCV.NXT; its ACK of our data
        // comes from there.
        c.conn.input(segment(5001 + 1000, 1501, .ack), now: 2 * ms)
        #expect(c.conn.info.bytesInFlight == 0)
    }
}
