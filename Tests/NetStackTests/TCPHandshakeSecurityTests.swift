// TCPHandshakeSecurityTests.swift: RFC 6528 ISNs (keyed, per 4-tuple, advancing with a
// 4 µs clock) and SYN cookies (round trip with options, forged and expired cookies).
@testable import NetProtocols
@testable import NetStack
import Testing

@Suite("TCP: ISNs and SYN cookies")
struct TCPHandshakeSecurityTests {
    @Test("ISNs: keyed per 4-tuple, advancing one per 4 µs")
    func isn() {
        let g = ISNGenerator(key0: 1, key1: 2)
        let a = g.isn(local: tcpClientAddress, remote: tcpServerAddress, now: 0)
        let other = g.isn(local: SocketAddress(tcpClientAddress.address, 40001), remote: tcpServerAddress, now: 0)
        #expect(a != other)
        #expect(g.isn(local: tcpClientAddress, remote: tcpServerAddress, now: 4_000_000) - a == 1000)
        #expect(g.isn(local: tcpClientAddress, remote: tcpServerAddress, now: 3_999) == a)
        #expect(ISNGenerator(key0: 1, key1: 3).isn(local: tcpClientAddress, remote: tcpServerAddress, now: 0) != a)
        #expect(ISNGenerator().isn(local: tcpClientAddress, remote: tcpServerAddress, now: 0)
                != ISNGenerator().isn(local: tcpClientAddress, remote: tcpServerAddress, now: 0))
    }

    private let cookies = SYNCookies(key0: 0x1234, key1: 0x5678)

    private func completingACK(_ synAck: TCPOutgoingSegment, peerISN: UInt32, payload: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) -> TCPSegment {
        var o = TCPOptions()
        if let ts = synAck.options.timestamp { o.timestamp = TCPTimestamp(value: 1001, echoReply: ts.value) }
        return segment(peerISN + 1, synAck.sequenceNumber.rawValue &+ 1, .ack, window: 1000, options: o, payload: payload)
    }

    @Test("SYN cookies round trip MSS, window scale, SACK and timestamps; the connection works")
    func roundTrip() {
        let now: Int64 = 1_000 * sec
        let syn = segment(7000, 0, .syn, options: options(mss: 1460, wscale: 7, sack: true, ts: TCPTimestamp(value: 1000, echoReply: 0)))
        let config = TCPConfiguration()
        let synAck = cookies.synAck(answering: syn, local: tcpServerAddress, remote: tcpClientAddress, mss: 1460,
                                    configuration: config, now: now)
        #expect(synAck.flags == [.syn, .ack] && synAck.acknowledgmentNumber == SequenceNumber(7001))
        #expect(synAck.options.maximumSegmentSize == 1460 && synAck.options.sackPermitted && synAck.options.windowScale != nil)
        #expect(synAck.options.timestamp!.value <= TCPConnection.timestampClock(now))
        let ack = completingACK(synAck, peerISN: 7000, payload: bytes(5))
        let decoded = cookies.validate(ack, local: tcpServerAddress, remote: tcpClientAddress, now: now + 30 * sec)
        #expect(decoded == SYNCookies.Decoded(localISN: synAck.sequenceNumber, remoteISN: SequenceNumber(7000), mss: 1460,
                                              windowScale: 7, sackPermitted: true, timestamps: true))
        let s = Endpoint(TCPConnection(cookieACK: ack, cookie: decoded!, local: tcpServerAddress, remote: tcpClientAddress,
                                       mss: 1460, configuration: config, now: now + 30 * sec))
        #expect(s.conn.state == .established && s.conn.readableBytes == 5)
        #expect(s.conn.info.peerWindow == 1000 << 7 && s.conn.info.sackEnabled && s.conn.info.timestampsEnabled)
        #expect(s.send([1, 2, 3]) == 3)
        let out = s.drain(now + 30 * sec)
        #expect(out.contains { $0.payloadLength == 3 && $0.sequenceNumber == synAck.sequenceNumber + 1 && $0.acknowledgmentNumber == SequenceNumber(7006) })

        // MSS is rounded down to the table; no timestamps means no window scale or SACK.
        let plain = segment(9000, 0, .syn, options: options(mss: 1400, wscale: 2, sack: true))
        let synAck2 = cookies.synAck(answering: plain, local: tcpServerAddress, remote: tcpClientAddress, mss: 1460,
                                     configuration: config, now: now)
        #expect(synAck2.options.windowScale == nil && !synAck2.options.sackPermitted && synAck2.options.timestamp == nil)
        let d2 = cookies.validate(completingACK(synAck2, peerISN: 9000), local: tcpServerAddress, remote: tcpClientAddress, now: now)
        #expect(d2?.mss == 1300 && d2?.windowScale == nil && d2?.sackPermitted == false && d2?.timestamps == false)
    }

    @Test("forged, misaddressed and expired cookies are refused; the previous period is accepted")
    func rejection() {
        let now: Int64 = 5_000 * sec
        let syn = segment(42, 0, .syn, options: options(mss: 1460))
        let synAck = cookies.synAck(answering: syn, local: tcpServerAddress, remote: tcpClientAddress, mss: 1460,
                                    configuration: TCPConfiguration(), now: now)
        let ack = completingACK(synAck, peerISN: 42)
        #expect(cookies.validate(ack, local: tcpServerAddress, remote: tcpClientAddress, now: now) != nil)
        #expect(cookies.validate(ack, local: tcpServerAddress, remote: tcpClientAddress, now: now + 64 * sec) != nil)
        #expect(cookies.validate(ack, local: tcpServerAddress, remote: tcpClientAddress, now: now + 130 * sec) == nil)
        var forged = ack
        forged.acknowledgmentNumber = ack.acknowledgmentNumber + 1
        #expect(cookies.validate(forged, local: tcpServerAddress, remote: tcpClientAddress, now: now) == nil)
        // Another peer ISN (the cookie hides the MSS index in 24 bits of it, as Linux does).
        var otherPeer = ack
        otherPeer.sequenceNumber = ack.sequenceNumber + 100_000
        #expect(cookies.validate(otherPeer, local: tcpServerAddress, remote: tcpClientAddress, now: now) == nil)
        #expect(cookies.validate(ack, local: tcpServerAddress, remote: SocketAddress(tcpClientAddress.address, 1), now: now) == nil)
        #expect(SYNCookies(key0: 9, key1: 9).validate(ack, local: tcpServerAddress, remote: tcpClientAddress, now: now) == nil)
        var withSYN = ack
        withSYN.flags = [.syn, .ack]
        #expect(cookies.validate(withSYN, local: tcpServerAddress, remote: tcpClientAddress, now: now) == nil)
        // Random ACKs almost never pass (2 bits of 24 are checked per guess: ~1 in 4 million).
        var rng = SplitMix64(seed: 3)
        var passed = 0
        for _ in 0..<20_000 {
            let guess = segment(UInt32.random(in: 0...UInt32.max, using: &rng), UInt32.random(in: 0...UInt32.max, using: &rng), .ack)
            if cookies.validate(guess, local: tcpServerAddress, remote: tcpClientAddress, now: now) != nil { passed += 1 }
        }
        #expect(passed == 0)
    }
}
