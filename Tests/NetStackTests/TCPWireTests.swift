// TCPWireTests.swift: the TCP header and options: emit → parse round trips of every
// option, known bytes, malformed option lists and data offsets refused with a WireError,
// the checksum, sequence arithmetic, SipHash's reference vectors, and random bytes.
@testable import NetProtocols
@testable import NetStack
import PropertyBased
import Testing

private let src = IPv4Address(192, 168, 1, 1)
private let dst = IPv4Address(192, 168, 1, 2)

/// Emits `header` with `payload` and returns the bytes.
private func emitted(_ header: TCPHeader, payload: [UInt8] = []) throws -> [UInt8] {
    var b = [UInt8](repeating: 0, count: header.length + payload.count)
    try b.withUnsafeMutableBytes { (buf) throws -> Void in
        for (i, x) in payload.enumerated() { buf[header.length + i] = x }
        try header.emit(into: buf, source: src, destination: dst, payloadLength: payload.count)
    }
    return b
}

private func parsed(_ bytes: [UInt8], verify: Bool = true) throws -> (TCPHeader, [UInt8]) {
    try bytes.withUnsafeBytes { (b) throws -> (TCPHeader, [UInt8]) in
        let v = try TCPSegmentView(validating: b, source: src, destination: dst, verifyChecksum: verify)
        return (TCPHeader(v), Array(v.payload))
    }
}

/// A bare 20-byte header followed by `options` (the data offset covers them).
private func rawHeader(options: [UInt8], dataOffsetWords: Int? = nil) -> [UInt8] {
    var b: [UInt8] = [0x1F, 0x90, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0x12, 0xFF, 0xFF, 0, 0, 0, 0]
    b += options
    b[12] = UInt8(dataOffsetWords ?? (b.count / 4)) << 4
    return b
}

@Suite("TCP: wire format")
struct TCPWireTests {
    static let optionSets: [TCPOptions] = [
        TCPOptions(),
        options(mss: 1460),
        options(mss: 536, wscale: 7, sack: true, ts: TCPTimestamp(value: 0xDEADBEEF, echoReply: 0)),
        options(wscale: 14),
        options(sack: true),
        options(ts: TCPTimestamp(value: 1, echoReply: 2)),
        options(ts: TCPTimestamp(value: 1, echoReply: 2),
                blocks: [SACKBlock(start: SequenceNumber(100), end: SequenceNumber(200)),
                         SACKBlock(start: SequenceNumber(300), end: SequenceNumber(400)),
                         SACKBlock(start: SequenceNumber(0xFFFF_FF00), end: SequenceNumber(5))]),
        options(blocks: (0..<4).map { SACKBlock(start: SequenceNumber(UInt32($0 * 1000)), end: SequenceNumber(UInt32($0 * 1000 + 10))) }),
    ]

    @Test("every option survives emit → parse", arguments: optionSets)
    func roundTrip(_ o: TCPOptions) throws {
        var h = TCPHeader(sourcePort: 1234, destinationPort: 80, sequenceNumber: SequenceNumber(0xFFFF_FFF0),
                          acknowledgmentNumber: SequenceNumber(42), flags: [.syn, .ack, .ece], window: 29200, options: o)
        h.urgentPointer = 7
        #expect(o.encodedLength % 4 == 0 && h.length == 20 + o.encodedLength)
        let b = try emitted(h, payload: [1, 2, 3, 4, 5])
        let (back, payload) = try parsed(b)
        #expect(back == h)
        #expect(payload == [1, 2, 3, 4, 5])
    }

    @Test("known bytes: Linux's SYN option layout")
    func linuxSYN() throws {
        // MSS 1460, SACK-permitted + timestamps (10, 0), NOP + window scale 7: as Linux sends a SYN.
        let o = options(mss: 1460, wscale: 7, sack: true, ts: TCPTimestamp(value: 10, echoReply: 0))
        let h = TCPHeader(sourcePort: 40000, destinationPort: 80, sequenceNumber: SequenceNumber(1),
                          acknowledgmentNumber: SequenceNumber(0), flags: .syn, window: 64240, options: o)
        let b = try emitted(h)
        #expect(Array(b[20...]) == [2, 4, 0x05, 0xB4, 4, 2, 8, 10, 0, 0, 0, 10, 0, 0, 0, 0, 1, 3, 3, 7])
        #expect(b[12] == 10 << 4 && b[13] == 0x02)
    }

    @Test("malformed options and offsets are refused, never a crash")
    func malformed() {
        let cases: [([UInt8], Int?, WireError)] = [
            ([2, 0, 0, 0], nil, .badLength),           // length 0
            ([2, 1, 0, 0], nil, .badLength),           // length 1
            ([1, 1, 8, 10, 0, 0, 0, 0], nil, .badLength),   // runs past the header
            ([1, 1, 1, 5], nil, .badLength),           // a kind with no length byte
            ([], 4, .badHeaderLength),                 // data offset below 5
            ([], 6, .truncated),                       // data offset past the buffer
        ]
        for (opts, offset, expected) in cases {
            let b = rawHeader(options: opts, dataOffsetWords: offset)
            #expect(throws: expected) { try parsed(b, verify: false) }
        }
        #expect(throws: WireError.truncated) { try parsed([UInt8](repeating: 0, count: 19), verify: false) }
        // Unknown kinds are skipped, known kinds with a wrong length ignored, EOL ends the list.
        let lenient = rawHeader(options: [99, 4, 0, 0, 2, 3, 1, 1, 0, 2, 4, 0x05, 0xB4, 0, 0, 0])
        #expect((try? parsed(lenient, verify: false))?.0.options == TCPOptions())
    }

    @Test("the checksum covers the pseudo-header, header and payload")
    func checksum() throws {
        let h = TCPHeader(sourcePort: 1, destinationPort: 2, sequenceNumber: SequenceNumber(3),
                          acknowledgmentNumber: SequenceNumber(4), flags: .ack, window: 5)
        var b = try emitted(h, payload: [9, 8, 7])
        #expect(b.withUnsafeBytes { b in
            var s = InternetChecksum.pseudoHeader(source: src, destination: dst, protocol: .tcp, length: b.count)
            s.add(b)
            return s.folded == 0xFFFF
        })
        b[21] ^= 1
        #expect(throws: WireError.badChecksum) { try parsed(b) }
        #expect((try? parsed(b, verify: false)) != nil)
        // Wrong addresses fail too.
        let good = try emitted(h)
        #expect(throws: WireError.badChecksum) {
            try good.withUnsafeBytes { b in _ = try TCPSegmentView(validating: b, source: IPv4Address(10, 9, 9, 9), destination: dst) }
        }
    }

    @Test("emit refuses more than 40 option bytes and short buffers")
    func emitLimits() {
        var o = options(mss: 1460, wscale: 2, sack: true, ts: TCPTimestamp(value: 1, echoReply: 1))
        for i in 0..<4 { o.sackBlocks.append(SACKBlock(start: SequenceNumber(UInt32(i)), end: SequenceNumber(UInt32(i + 1)))) }
        let h = TCPHeader(sourcePort: 1, destinationPort: 2, sequenceNumber: SequenceNumber(0),
                          acknowledgmentNumber: SequenceNumber(0), flags: .ack, window: 0, options: o)
        var b = [UInt8](repeating: 0, count: 100)
        #expect(throws: WireError.unencodable) { try b.withUnsafeMutableBytes { try h.emit(into: $0, source: src, destination: dst, payloadLength: 0) } }
        let small = TCPHeader(sourcePort: 1, destinationPort: 2, sequenceNumber: SequenceNumber(0),
                              acknowledgmentNumber: SequenceNumber(0), flags: .ack, window: 0)
        var tiny = [UInt8](repeating: 0, count: 30)
        #expect(throws: WireError.bufferTooSmall) { try tiny.withUnsafeMutableBytes { try small.emit(into: $0, source: src, destination: dst, payloadLength: 20) } }
    }

    @Test("sequence numbers compare modulo 2^32")
    func sequenceArithmetic() {
        let a = SequenceNumber(0xFFFF_FFF0)
        let b = a + 0x20
        #expect(b.rawValue == 0x10 && a < b && b > a && b - a == 0x20 && a - b == -0x20)
        #expect(SequenceNumber.max(a, b) == b && SequenceNumber.min(a, b) == a)
    }

    @Test("SipHash-2-4 matches the reference vectors")
    func sipHash() {
        let expected: [UInt64] = [0x726f_db47_dd0e_0e31, 0x74f8_39c5_93dc_67fd, 0x0d6c_8009_d9a9_4f5a]
        for (length, value) in expected.enumerated() {
            var h = SipHash24(key0: 0x0706_0504_0302_0100, key1: 0x0f0e_0d0c_0b0a_0908)
            let message = (0..<length).map { UInt8($0) }
            message.withUnsafeBytes { h.add(bytes: $0) }
            #expect(h.finalize() == value, "length \(length)")
        }
        var h = SipHash24(key0: 0x0706_0504_0302_0100, key1: 0x0f0e_0d0c_0b0a_0908)
        (0..<15).map { UInt8($0) }.withUnsafeBytes { h.add(bytes: $0) }
        #expect(h.finalize() == 0xa129_ca61_49be_45e5)
    }

    @Test("random bytes never crash the parser")
    func fuzz() async {
        await propertyCheck(count: 2000, input: Gen.uint8().array(of: 0...80)) { bytes in
            var b = bytes
            if b.count > 12 && b[0] & 1 == 0 { b[12] = UInt8.random(in: 5...15) << 4 }
            b.withUnsafeBytes { buf in
                if let v = try? TCPSegmentView(validating: buf, source: src, destination: dst, verifyChecksum: false) {
                    #expect(v.headerLength >= 20 && v.headerLength <= buf.count)
                    #expect(v.payload.count == buf.count - v.headerLength)
                    let seg = TCPSegment(v)
                    _ = TCPConnection.reset(answering: seg)
                }
            }
        }
    }
}
