// TCPStateTests.swift: RFC 9293's state machine one rule at a time, against scripted
// peers: both handshakes, simultaneous open and close, every close path and its timers,
// half-close, RST in each state with RFC 5961's checks, unacceptable segments and old
// duplicates, reset(answering:), close and abort semantics.
@testable import NetProtocols
@testable import NetStack
import Testing

@Suite("TCP: state machine")
struct TCPStateTests {
    @Test("active open: SYN, SYN-ACK, ACK")
    func activeOpen() {
        let c = makeClient()
        #expect(c.conn.state == .synSent)
        let syn = c.drain(0)
        #expect(syn.count == 1)
        #expect(syn[0].flags == .syn && syn[0].sequenceNumber == SequenceNumber(1000) && syn[0].options.maximumSegmentSize == 1460)
        c.conn.input(segment(5000, 1001, [.syn, .ack], options: options(mss: 1460)), now: 10 * ms)
        #expect(c.conn.state == .established)
        let ack = c.drain(10 * ms)
        #expect(ack.count == 1 && ack[0].flags == .ack)
        #expect(ack[0].sequenceNumber == SequenceNumber(1001) && ack[0].acknowledgmentNumber == SequenceNumber(5001))
        #expect(c.conn.readiness.contains(.writable))
    }

    @Test("passive open: SYN-ACK, then ESTABLISHED on the ACK")
    func passiveOpen() {
        let syn = segment(5000, 0, .syn, options: options(mss: 1200))
        let s = Endpoint(TCPConnection(acceptingSYN: syn, local: tcpServerAddress, remote: tcpClientAddress,
                                       isn: SequenceNumber(1000), mss: 1460, configuration: plainConfiguration(), now: 0)!)
        #expect(s.conn.state == .synReceived)
        let out = s.drain(0)
        #expect(out.count == 1 && out[0].flags == [.syn, .ack])
        #expect(out[0].sequenceNumber == SequenceNumber(1000) && out[0].acknowledgmentNumber == SequenceNumber(5001))
        #expect(out[0].options.windowScale == nil && !out[0].options.sackPermitted && out[0].options.timestamp == nil)
        s.conn.input(segment(5001, 1001, .ack), now: ms)
        #expect(s.conn.state == .established)
        #expect(s.conn.info.maximumSegmentSize == 1200)
        // Not a SYN, or SYN with ACK/RST: refused.
        #expect(!acceptsSYN(segment(1, 0, .ack)))
        #expect(!acceptsSYN(segment(1, 5, [.syn, .ack])))
        #expect(!acceptsSYN(segment(1, 0, [.syn, .rst])))
        #expect(acceptsSYN(segment(1, 0, .syn)))
    }

    @Test("a lost SYN-ACK: the peer's SYN again brings the SYN-ACK again")
    func duplicateSYNInSynReceived() {
        let syn = segment(5000, 0, .syn)
        let s = Endpoint(TCPConnection(acceptingSYN: syn, local: tcpServerAddress, remote: tcpClientAddress,
                                       isn: SequenceNumber(1000), mss: 1460, configuration: plainConfiguration(), now: 0)!)
        _ = s.drain(0)
        s.conn.input(syn, now: 100 * ms)
        let out = s.drain(100 * ms)
        #expect(out.count == 1 && out[0].flags == [.syn, .ack] && out[0].sequenceNumber == SequenceNumber(1000))
        #expect(s.conn.state == .synReceived)
    }

    @Test("simultaneous open: both SYN-RECEIVED, then both ESTABLISHED")
    func simultaneousOpen() {
        let a = Endpoint(TCPConnection(connectingFrom: tcpClientAddress, to: tcpServerAddress, isn: SequenceNumber(100),
                                       mss: 1460, configuration: TCPConfiguration(), now: 0))
        let b = Endpoint(TCPConnection(connectingFrom: tcpServerAddress, to: tcpClientAddress, isn: SequenceNumber(9000),
                                       mss: 1460, configuration: TCPConfiguration(), now: 0))
        let synA = a.drain(0), synB = b.drain(0)
        func deliver(_ segs: [TCPOutgoingSegment], to e: Endpoint) {
            for s in segs {
                e.conn.input(TCPSegment(sequenceNumber: s.sequenceNumber, acknowledgmentNumber: s.acknowledgmentNumber,
                                        flags: s.flags, window: s.window, options: s.options), now: ms)
            }
        }
        deliver(synA, to: b)
        deliver(synB, to: a)
        #expect(a.conn.state == .synReceived && b.conn.state == .synReceived)
        let synAckA = a.drain(ms), synAckB = b.drain(ms)
        #expect(synAckA.count == 1 && synAckA[0].flags == [.syn, .ack] && synAckA[0].sequenceNumber == SequenceNumber(100))
        #expect(synAckA[0].acknowledgmentNumber == SequenceNumber(9001))
        deliver(synAckA, to: b)
        deliver(synAckB, to: a)
        #expect(a.conn.state == .established && b.conn.state == .established)
        #expect(a.conn.info.sackEnabled && a.conn.info.timestampsEnabled && a.conn.info.receiveWindowScale > 0)
        #expect(a.conn.info.statistics.retransmittedSegments == 0)
    }

    @Test("simultaneous close: FIN-WAIT-1, CLOSING, TIME-WAIT, then CLOSED after the configured time")
    func simultaneousClose() {
        var config = plainConfiguration()
        config.timeWaitDuration = .seconds(2)
        let c = establishedClient(config)
        c.conn.shutdownWrite()
        #expect(c.conn.state == .finWait1)
        let fin = c.drain(0)
        #expect(fin.count == 1 && fin[0].flags == [.fin, .ack] && fin[0].sequenceNumber == SequenceNumber(1001))
        // The peer's FIN crosses ours (it has not seen ours).
        c.conn.input(segment(5001, 1001, [.fin, .ack]), now: ms)
        #expect(c.conn.state == .closing)
        let ack = c.drain(ms)
        #expect(ack.count == 1 && ack[0].acknowledgmentNumber == SequenceNumber(5002))
        c.conn.input(segment(5002, 1002, .ack), now: 2 * ms)
        #expect(c.conn.state == .timeWait)
        #expect(c.conn.nextDeadline == 2 * ms + 2 * sec)
        c.conn.handleTimers(now: 2 * ms + 2 * sec - 1)
        #expect(c.conn.state == .timeWait)
        c.conn.handleTimers(now: 2 * ms + 2 * sec)
        #expect(c.conn.state == .closed && c.conn.isFinished && c.conn.pendingError == nil)
    }

    @Test("active close: FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT; a FIN again restarts TIME-WAIT")
    func activeClose() {
        let c = establishedClient()
        c.conn.close()
        _ = c.drain(0)
        c.conn.input(segment(5001, 1002, .ack), now: ms)
        #expect(c.conn.state == .finWait2)
        c.conn.input(segment(5001, 1002, [.fin, .ack]), now: 2 * ms)
        #expect(c.conn.state == .timeWait)
        #expect(c.drain(2 * ms).map(\.acknowledgmentNumber) == [SequenceNumber(5002)])
        let end = c.conn.nextDeadline!
        #expect(end == 2 * ms + 60 * sec)
        // The peer lost our ACK and sends its FIN again.
        c.conn.input(segment(5001, 1002, [.fin, .ack]), now: 10 * sec)
        #expect(c.drain(10 * sec).map(\.acknowledgmentNumber) == [SequenceNumber(5002)])
        #expect(c.conn.nextDeadline == 10 * sec + 60 * sec)
        c.conn.handleTimers(now: 70 * sec)
        #expect(c.conn.isFinished == true)
    }

    @Test("FIN-WAIT-2 after close() ends after finWait2Timeout")
    func finWait2Timeout() {
        var config = plainConfiguration()
        config.finWait2Timeout = .seconds(5)
        let c = establishedClient(config)
        c.conn.close()
        _ = c.drain(0)
        c.conn.input(segment(5001, 1002, .ack), now: ms)
        #expect(c.conn.state == .finWait2 && c.conn.nextDeadline == ms + 5 * sec)
        c.conn.handleTimers(now: ms + 5 * sec)
        #expect(c.conn.state == .closed)
    }

    @Test("shutdownWrite, FIN-WAIT-2, then close(): the FIN-WAIT-2 timer starts at close")
    func closeInFinWait2() {
        var config = plainConfiguration()
        config.finWait2Timeout = .seconds(5)
        let c = establishedClient(config)
        c.conn.shutdownWrite()
        _ = c.drain(0)
        c.conn.input(segment(5001, 1002, .ack), now: ms)
        #expect(c.conn.state == .finWait2 && c.conn.nextDeadline == nil)
        c.conn.close()
        _ = c.drain(10 * sec)
        #expect(c.conn.nextDeadline == 15 * sec)
        c.conn.handleTimers(now: 15 * sec)
        #expect(c.conn.state == .closed)
    }

    @Test("passive close: CLOSE-WAIT, end of stream, LAST-ACK, CLOSED")
    func passiveClose() {
        let c = establishedClient()
        let data = bytes(10)
        c.conn.input(segment(5001, 1001, [.fin, .ack, .psh], payload: data), now: ms)
        #expect(c.conn.state == .closeWait)
        #expect(c.conn.readiness.contains([.readable, .readHangUp]))
        #expect(c.receiveAll().count == 10)
        var one = [UInt8](repeating: 0, count: 4)
        #expect(one.withUnsafeMutableBytes { try? c.conn.receive(into: $0) } == 0)
        let ack = c.drain(ms)
        #expect(ack.last?.acknowledgmentNumber == SequenceNumber(5012))
        c.conn.close()
        #expect(c.conn.state == .lastAck)
        let fin = c.drain(ms)
        #expect(fin.count == 1 && fin[0].flags.contains(.fin))
        c.conn.input(segment(5012, 1002, .ack), now: 2 * ms)
        #expect(c.conn.state == .closed && c.conn.isFinished)
    }

    @Test("half-close: after shutdownWrite we still receive; after the peer's FIN we still send")
    func halfClose() {
        let c = establishedClient()
        c.conn.shutdownWrite()
        _ = c.drain(0)
        c.conn.input(segment(5001, 1002, .ack), now: ms)
        #expect(c.conn.state == .finWait2)
        #expect(throws: TCPError.writeClosed) { try [UInt8](repeating: 1, count: 3).withUnsafeBytes { try c.conn.send($0) } }
        c.conn.input(segment(5001, 1002, .ack, payload: bytes(100)), now: 2 * ms)
        #expect(c.receiveAll().count == 100)
        #expect(c.conn.state == .finWait2)

        let s = establishedServer()
        s.conn.input(segment(5001, 1001, [.fin, .ack]), now: ms)
        #expect(s.conn.state == .closeWait)
        #expect(s.send([UInt8](repeating: 7, count: 500)) == 500)
        let out = s.drain(ms)
        #expect(out.contains { $0.payloadLength == 500 && $0.sequenceNumber == SequenceNumber(1001) })
        #expect(s.conn.readiness.contains(.writable))
    }

    @Test("RST in SYN-SENT: refused only with an acceptable ACK")
    func rstInSynSent() {
        let c = makeClient()
        _ = c.drain(0)
        c.conn.input(segment(0, 1001, .rst), now: ms)        // no ACK: ignored
        #expect(c.conn.state == .synSent)
        c.conn.input(segment(0, 999, [.rst, .ack]), now: ms)  // unacceptable ACK: ignored
        #expect(c.conn.state == .synSent)
        c.conn.input(segment(0, 1001, [.rst, .ack]), now: ms)
        #expect(c.conn.state == .closed && c.conn.pendingError == .refused)
        #expect(c.conn.readiness.contains(.error))
    }

    @Test("SYN-SENT: an unacceptable ACK is answered with a RST at its ACK number")
    func badACKInSynSent() {
        let c = makeClient()
        _ = c.drain(0)
        c.conn.input(segment(5000, 4242, [.syn, .ack]), now: ms)
        let out = c.drain(ms)
        #expect(out.count == 1 && out[0].flags == .rst && out[0].sequenceNumber == SequenceNumber(4242))
        #expect(c.conn.state == .synSent)
    }

    @Test("RST when synchronized (RFC 5961 §3.2): exact → reset, in window → challenge ACK, outside → ignored")
    func rstSynchronized() {
        let c = establishedClient()
        c.conn.input(segment(5001 + 70000, 0, .rst), now: ms)
        #expect(c.conn.state == .established && c.drain(ms).isEmpty)
        c.conn.input(segment(5001 + 100, 0, .rst), now: ms)
        #expect(c.conn.state == .established)
        let challenge = c.drain(ms)
        #expect(challenge.count == 1 && challenge[0].flags == .ack && challenge[0].acknowledgmentNumber == SequenceNumber(5001))
        #expect(c.conn.info.statistics.challengeACKs == 1)
        c.conn.input(segment(5001, 0, .rst), now: ms)
        #expect(c.conn.state == .closed && c.conn.pendingError == .reset)
        #expect(c.drain(ms).isEmpty)
        var buffer = [UInt8](repeating: 0, count: 4)
        #expect(throws: TCPError.reset) { try buffer.withUnsafeMutableBytes { try c.conn.receive(into: $0) } }
    }

    @Test("RST in SYN-RECEIVED, FIN-WAIT-2, CLOSE-WAIT, LAST-ACK, TIME-WAIT, FIN-WAIT-1 and CLOSING closes",
          arguments: [0, 1, 2, 3, 4, 5, 6])
    func rstEachState(_ which: Int) {
        let e: Endpoint
        switch which {
        case 0:
            e = Endpoint(TCPConnection(acceptingSYN: segment(5000, 0, .syn), local: tcpServerAddress, remote: tcpClientAddress,
                                       isn: SequenceNumber(1000), mss: 1460, configuration: plainConfiguration(), now: 0)!)
            _ = e.drain(0)
            #expect(e.conn.state == .synReceived)
        case 1:
            e = establishedClient()
            e.conn.shutdownWrite(); _ = e.drain(0)
            e.conn.input(segment(5001, 1002, .ack), now: 0)
            #expect(e.conn.state == .finWait2)
        case 2:
            e = establishedClient()
            e.conn.input(segment(5001, 1001, [.fin, .ack]), now: 0)
            #expect(e.conn.state == .closeWait)
        case 3:
            e = establishedClient()
            e.conn.input(segment(5001, 1001, [.fin, .ack]), now: 0)
            e.conn.close(); _ = e.drain(0)
            #expect(e.conn.state == .lastAck)
        case 4:
            e = establishedClient()
            e.conn.shutdownWrite(); _ = e.drain(0)
            e.conn.input(segment(5001, 1002, [.fin, .ack]), now: 0)
            #expect(e.conn.state == .timeWait)
        case 5:
            e = establishedClient()
            e.conn.shutdownWrite(); _ = e.drain(0)
            #expect(e.conn.state == .finWait1)
        default:
            e = establishedClient()
            e.conn.shutdownWrite(); _ = e.drain(0)
            e.conn.input(segment(5001, 1001, [.fin, .ack]), now: 0)
            #expect(e.conn.state == .closing)
        }
        let rcvNxt: UInt32 = [2, 3, 4, 6].contains(which) ? 5002 : 5001
        e.conn.input(segment(rcvNxt, 0, .rst), now: ms)
        #expect(e.conn.state == .closed)
        #expect(e.conn.info.statistics.resetsReceived == 1)
    }

    @Test("a SYN on a synchronized connection gets a challenge ACK (RFC 5961 §4)")
    func synChallenge() {
        let c = establishedClient()
        c.conn.input(segment(5001, 0, .syn), now: ms)
        #expect(c.conn.state == .established)
        let out = c.drain(ms)
        #expect(out.count == 1 && out[0].flags == .ack && out[0].sequenceNumber == SequenceNumber(1001))
        #expect(c.conn.info.statistics.challengeACKs == 1)
        // Outside the window too.
        c.conn.input(segment(5001 &+ 1_000_000, 0, .syn), now: ms)
        #expect(c.drain(ms).count == 1 && c.conn.info.statistics.challengeACKs == 2)
    }

    @Test("an ACK of unsent data gets a challenge ACK, rate-limited (RFC 5961 §5, §7)")
    func ackAcceptability() {
        let c = establishedClient()
        for _ in 0..<25 { c.conn.input(segment(5001, 9999, .ack), now: ms) }
        #expect(c.drain(ms).count == 1)
        #expect(c.conn.info.statistics.challengeACKs == UInt64(challengeACKLimit))
        // The next second allows more.
        c.conn.input(segment(5001, 9999, .ack), now: 2 * sec)
        #expect(c.conn.info.statistics.challengeACKs == UInt64(challengeACKLimit) + 1)
        // Too old an ACK (below SND.UNA − MAX.SND.WND) is challenged too.
        c.conn.input(segment(5001, 1001 &- 70000, .ack), now: 2 * sec)
        #expect(c.conn.info.statistics.challengeACKs == UInt64(challengeACKLimit) + 2)
    }

    @Test("unacceptable segments and old duplicates are answered with an ACK and dropped")
    func unacceptable() {
        let c = establishedClient()
        c.conn.input(segment(5001, 1001, .ack, payload: bytes(100)), now: ms)
        _ = c.receiveAll()
        _ = c.drain(ms)
        // The same segment again: an old duplicate.
        c.conn.input(segment(5001, 1001, .ack, payload: bytes(100)), now: 2 * ms)
        let out = c.drain(2 * ms)
        #expect(out.count == 1 && out[0].acknowledgmentNumber == SequenceNumber(5101))
        #expect(c.conn.info.statistics.duplicateSegments == 1)
        #expect(c.conn.readableBytes == 0)
        // Beyond the window.
        c.conn.input(segment(5101 + 70000, 1001, .ack, payload: bytes(10)), now: 3 * ms)
        #expect(c.drain(3 * ms).count == 1 && c.conn.readableBytes == 0)
        // Partly old: only the new part is kept.
        c.conn.input(segment(5051, 1001, .ack, payload: bytes(100)), now: 4 * ms)
        #expect(c.conn.readableBytes == 50)
    }

    @Test("reset(answering:) follows RFC 9293 §3.10.7.1")
    func resetAnswering() {
        let withACK = TCPConnection.reset(answering: segment(100, 777, .ack, payload: bytes(5)))!
        #expect(withACK.flags == .rst && withACK.sequenceNumber == SequenceNumber(777))
        let syn = TCPConnection.reset(answering: segment(100, 0, .syn))!
        #expect(syn.flags == [.rst, .ack] && syn.sequenceNumber == SequenceNumber(0) && syn.acknowledgmentNumber == SequenceNumber(101))
        let data = TCPConnection.reset(answering: segment(100, 0, [.fin], payload: bytes(5)))!
        #expect(data.acknowledgmentNumber == SequenceNumber(106))
        #expect(TCPConnection.reset(answering: segment(100, 0, .rst)) == nil)
        #expect(TCPConnection.reset(answering: segment(100, 5, [.rst, .ack])) == nil)
    }

    @Test("close() with unread data sends RST (Linux), not FIN")
    func closeWithUnreadData() {
        let c = establishedClient()
        c.conn.input(segment(5001, 1001, .ack, payload: bytes(10)), now: ms)
        c.conn.close()
        let out = c.drain(ms)
        #expect(out.count == 1 && out[0].flags == .rst && out[0].sequenceNumber == SequenceNumber(1001))
        #expect(c.conn.state == .closed && c.conn.isFinished)
    }

    @Test("data arriving after close() in FIN-WAIT is answered with RST")
    func dataAfterClose() {
        let c = establishedClient()
        c.conn.close()
        _ = c.drain(0)
        c.conn.input(segment(5001, 1002, .ack), now: ms)
        #expect(c.conn.state == .finWait2)
        c.conn.input(segment(5001, 1002, .ack, payload: bytes(10)), now: 2 * ms)
        let out = c.drain(2 * ms)
        #expect(out.count == 1 && out[0].flags.contains(.rst))
        #expect(c.conn.state == .closed)
    }

    @Test("abort() sends RST when synchronized; close/abort in SYN-SENT end at once")
    func abortAndEarlyClose() {
        let c = establishedClient()
        c.conn.abort()
        let out = c.drain(0)
        #expect(out.count == 1 && out[0].flags == .rst && out[0].sequenceNumber == SequenceNumber(1001))
        #expect(c.conn.state == .closed && c.conn.pendingError == .aborted)

        let s = makeClient()
        _ = s.drain(0)
        s.conn.close()
        #expect(s.conn.state == .closed && s.drain(0).isEmpty && s.conn.isFinished)

        let t = makeClient()
        _ = t.drain(0)
        t.conn.abort()
        #expect(t.conn.state == .closed && t.drain(0).isEmpty && t.conn.pendingError == .aborted)
    }

    @Test("send and receive errors by state")
    func callErrors() {
        let c = establishedClient()
        c.conn.input(segment(5001, 0, .rst), now: ms)
        #expect(throws: TCPError.reset) { try [UInt8](repeating: 1, count: 3).withUnsafeBytes { try c.conn.send($0) } }
        #expect(throws: TCPError.writeClosed) { try [UInt8](repeating: 1, count: 3).withUnsafeBytes { try c.conn.send($0) } }
        let d = makeClient()
        #expect(d.send([1, 2, 3]) == 3)   // queued in SYN-SENT, sent once established
        _ = d.drain(0)
        d.conn.input(segment(5000, 1001, [.syn, .ack]), now: ms)
        #expect(d.drain(ms).contains { $0.payloadLength == 3 })
    }

    @Test("ICMP unreachable ends a connection attempt")
    func unreachable() {
        let c = makeClient()
        _ = c.drain(0)
        c.conn.icmpUnreachable(now: ms)
        #expect(c.conn.state == .closed && c.conn.pendingError == .unreachable)
    }

    @Test("ICMP unreachable codes map as Linux's: port and protocol refuse, network and host are unreachable; soft once established",
          arguments: [(ICMPUnreachableCode.port, TCPError.refused), (.protocol, .refused),
                      (.network, .networkUnreachable), (.host, .unreachable), (.communicationProhibited, .unreachable)])
    func unreachableCodes(_ code: ICMPUnreachableCode, _ expected: TCPError) {
        let c = makeClient()
        _ = c.drain(0)
        c.conn.icmpUnreachable(code, now: ms)
        #expect(c.conn.state == .closed && c.conn.pendingError == expected)
        // Established: a soft error, the connection goes on (RFC 1122 §4.2.3.9).
        let d = makeClient()
        _ = d.drain(0)
        d.conn.input(segment(5000, 1001, [.syn, .ack]), now: ms)
        _ = d.drain(ms)
        d.conn.icmpUnreachable(code, now: ms)
        #expect(d.conn.state == .established)
        // Fragmentation needed is no error at all.
        let e = makeClient()
        _ = e.drain(0)
        e.conn.icmpUnreachable(.fragmentationNeeded, now: ms)
        #expect(e.conn.state == .synSent && e.conn.pendingError == nil)
    }
}
