// ChecksumTests.swift: the Internet checksum against RFC 1071's example and a plain
// reference sum, RFC 1624 updates, the UDP pseudo-header and UDP's zero rules.
import NetStack
import PropertyBased
import Testing

/// The textbook sum: 16-bit big-endian words into 32 bits, folded, complemented.
func referenceChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var i = 0
    while i + 1 < bytes.count { sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1]); i += 2 }
    if i < bytes.count { sum += UInt32(bytes[i]) << 8 }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

@Suite("Wire: Internet checksum")
struct ChecksumTests {
    @Test("RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2")
    func rfc1071Example() {
        let bytes: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        bytes.withUnsafeBytes { b in
            var c = InternetChecksum()
            c.add(b)
            #expect(c.folded == 0xDDF2)
            #expect(c.checksum == 0x220D)
        }
    }

    @Test("equals the textbook sum for any bytes, and any split of them")
    func matchesReference() async {
        await propertyCheck(count: 400, input: Gen.uint8().array(of: 0...300), Gen.int(in: 0...300), Gen.int(in: 0...300)) { bytes, s1, s2 in
            let cuts = [min(s1, s2), max(s1, s2)].map { min($0, bytes.count) }
            bytes.withUnsafeBytes { b in
                #expect(InternetChecksum.checksum(b) == referenceChecksum(bytes))
                var c = InternetChecksum()
                c.add(UnsafeRawBufferPointer(rebasing: b[..<cuts[0]]))
                c.add(UnsafeRawBufferPointer(rebasing: b[cuts[0]..<cuts[1]]))
                c.add(UnsafeRawBufferPointer(rebasing: b[cuts[1]...]))
                #expect(c.checksum == referenceChecksum(bytes), "cuts \(cuts)")
            }
        }
    }

    @Test("a long buffer of 0xFF bytes (carries in every lane)")
    func allOnes() {
        let bytes = [UInt8](repeating: 0xFF, count: 65535)
        bytes.withUnsafeBytes { #expect(InternetChecksum.checksum($0) == referenceChecksum(bytes)) }
    }

    @Test("RFC 1624: the update equals a full recomputation, and its own example gives 0x0000")
    func incrementalUpdate() async {
        #expect(InternetChecksum.update(0xDD2F, old: 0x5555, new: 0x3285) == 0x0000)
        // Decrementing the TTL of the captured echo request, as a router does.
        var ip = Array(Captured.echoRequest[14..<34])
        let oldWord = ip.u16(8), oldSum = ip.u16(10)
        ip[8] -= 1
        let updated = InternetChecksum.update(oldSum, old: oldWord, new: ip.u16(8))
        ip.put16(0, at: 10)
        #expect(updated == referenceChecksum(ip))
        await propertyCheck(count: 300, input: Gen.uint8().array(of: 20), Gen.int(in: 0...8), Gen.uint16()) { header, pick, new in
            let word = pick < 5 ? pick : pick + 1   // any word but the checksum's own
            var h = header
            h.put16(0, at: 10)
            let sum = referenceChecksum(h)
            let old = h.u16(2 * word)
            h.put16(new, at: 2 * word)
            let incremental = InternetChecksum.update(sum, old: old, new: new)
            // One's complement has two zeros; both verify.
            h.put16(incremental, at: 10)
            #expect(referenceChecksum(h) == 0 || referenceChecksum(h) == 0xFFFF)
        }
    }

    @Test("UDP: the pseudo-header is part of the sum")
    func pseudoHeader() throws {
        try Captured.udp.withUnsafeBytes { b in
            let udp = UnsafeRawBufferPointer(rebasing: b[34...])
            #expect(throws: WireError.badChecksum) {
                try UDPDatagram(validating: udp, source: ipA, destination: IPv4Address(192, 0, 2, 3))
            }
            _ = try UDPDatagram(validating: udp, source: ipA, destination: ipB)
        }
    }

    @Test("UDP: a computed checksum of zero is sent as 0xFFFF, and verifies")
    func computedZero() throws {
        // Choose the payload word so that the sum is all ones: then the checksum is zero.
        var datagram = [UInt8](repeating: 0, count: 10)
        let header = UDPHeader(sourcePort: 1234, destinationPort: 53, payloadLength: 2)
        let first = try datagram.withUnsafeMutableBytes { b in
            try header.emit(into: b, source: ipA, destination: ipB)
            return UInt16(b[6]) << 8 | UInt16(b[7])
        }
        datagram.put16(first, at: 8)
        _ = try datagram.withUnsafeMutableBytes { b in
            try header.emit(into: b, source: ipA, destination: ipB)
        }
        #expect(datagram.u16(6) == 0xFFFF)
        try datagram.withUnsafeBytes { b in
            let parsed = try UDPDatagram(validating: b, source: ipA, destination: ipB)
            #expect(parsed.hasChecksum)
        }
        // And zero on the wire means "none": accepted whatever the data.
        datagram.put16(0, at: 6)
        datagram[9] ^= 0xFF
        try datagram.withUnsafeBytes { b in
            let parsed = try UDPDatagram(validating: b, source: ipA, destination: ipB)
            #expect(!parsed.hasChecksum)
        }
    }
}
