// ReassemblyTests.swift: IPv4 reassembly in and out of order, duplicates and overlaps as
// Linux treats them, inconsistent lengths, the timeout on a hand-driven clock, and limits.
import NetStack
import Testing

/// One fragment: an IPv4 packet of datagram `id` carrying `data` at byte `offset`.
func fragment(id: UInt16 = 1, offset: Int, _ data: [UInt8], more: Bool, options: Int = 0,
              source: IPv4Address = ipA) -> [UInt8] {
    var packet = [UInt8](repeating: 0, count: 20 + options + data.count)
    packet.withUnsafeMutableBytes { b in
        _ = try! IPv4Header(source: source, destination: ipB, protocol: .udp, payloadLength: options + data.count,
                            identification: id, dontFragment: false, moreFragments: more, fragmentOffset: offset).emit(into: b)
    }
    if options > 0 {   // widen the header: IHL, then NOP options, then the checksum again
        packet[0] = 0x40 | UInt8((20 + options) / 4)
        for i in 20..<20 + options { packet[i] = 1 }
        packet.put16(0, at: 10)
        packet.put16(packet[..<(20 + options)].withUnsafeBytes { InternetChecksum.checksum($0) }, at: 10)
    }
    packet.replaceSubrange((20 + options)..., with: data)
    return packet
}

/// `count` bytes of a recognisable pattern starting at `offset`.
func pattern(_ offset: Int, _ count: Int) -> [UInt8] { (offset..<offset + count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) } }

extension IPv4Reassembler {
    mutating func feed(_ packet: [UInt8], at seconds: Double = 0) -> ReassemblyResult {
        packet.withUnsafeBytes { b in receive(try! IPv4Packet(validating: b), now: Int64(seconds * 1000) * 1_000_000) }
    }
}

extension ReassemblyResult {
    var payload: [UInt8]? { if case .complete(let d) = self { d.payload } else { nil } }
    var isIncomplete: Bool { if case .incomplete = self { true } else { false } }
    var drop: ReassemblyDrop? { if case .dropped(let r) = self { r } else { nil } }
}

/// Three fragments of a 40-byte datagram: [0,16) [16,32) [32,40).
let pieces = [fragment(offset: 0, pattern(0, 16), more: true), fragment(offset: 16, pattern(16, 16), more: true),
              fragment(offset: 32, pattern(32, 8), more: false)]

@Suite("Fragments: IPv4 reassembly")
struct ReassemblyTests {
    @Test("every arrival order of the captured fragmented ping gives the same datagram")
    func capturedOrders() {
        let frames = [Captured.fragmentedEchoRequest1, Captured.fragmentedEchoRequest2, Captured.fragmentedEchoRequest3]
            .map { Array($0[14...]) }
        var expected: [UInt8]?
        for order in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
            var r = IPv4Reassembler()
            #expect(r.feed(frames[order[0]]).isIncomplete && r.feed(frames[order[1]]).isIncomplete)
            let result = r.feed(frames[order[2]])
            guard case .complete(let datagram) = result else { Issue.record("\(order): \(result)"); continue }
            #expect(datagram.payload.count == 3008 && datagram.header.identification == 0x0EE9)
            #expect(datagram.header.source == ipA && datagram.header.protocol == .icmp && datagram.header.payloadLength == 3008)
            expected = expected ?? datagram.payload
            #expect(datagram.payload == expected, "\(order)")
            #expect(r.pending == 0 && r.bytesBuffered == 0 && r.counters.reassembled == 1 && r.counters.fragments == 3)
        }
        // And it is the ICMP message ping sent: the checksum over all 3008 bytes verifies.
        expected!.withUnsafeBytes { #expect((try? ICMPMessage.parse($0)) == .echoRequest(identifier: 0x43B0, sequence: 1)) }
    }

    @Test("in order, crafted: the payload is the fragments' data joined")
    func inOrder() {
        var r = IPv4Reassembler()
        #expect(r.feed(pieces[0]).isIncomplete && r.feed(pieces[1]).isIncomplete)
        #expect(r.bytesBuffered == 32 && r.pending == 1)
        #expect(r.feed(pieces[2]).payload == pattern(0, 40))
    }

    @Test("a duplicate is dropped alone; the datagram still completes")
    func duplicate() {
        var r = IPv4Reassembler()
        _ = r.feed(pieces[1])
        #expect(r.feed(pieces[1]).drop == .duplicate)
        #expect(r.feed(fragment(offset: 16, pattern(16, 8), more: true)).drop == .duplicate)   // inside one fragment
        _ = r.feed(pieces[2])
        #expect(r.feed(pieces[0]).payload == pattern(0, 40))
        #expect(r.counters[.duplicate] == 2)
    }

    @Test("an overlap that is not a duplicate drops the whole datagram (Linux, RFC 5722)",
          arguments: [(8, 16), (24, 16), (0, 24), (8, 32)])
    func overlap(offset: Int, length: Int) {
        var r = IPv4Reassembler()
        _ = r.feed(pieces[0])
        _ = r.feed(pieces[1])
        // (8, 16) straddles two fragments: contained in the data received, but in no one fragment.
        #expect(r.feed(fragment(offset: offset, pattern(offset, length), more: true)).drop == .overlap)
        #expect(r.pending == 0 && r.bytesBuffered == 0 && r.counters[.overlap] == 1)
        // What follows starts a new datagram, which cannot complete without its first part.
        #expect(r.feed(pieces[2]).isIncomplete)
    }

    @Test("fragments that disagree on the datagram's end drop it")
    func inconsistentLength() {
        var r = IPv4Reassembler()
        _ = r.feed(pieces[2])   // ends at 40
        #expect(r.feed(fragment(offset: 40, pattern(40, 8), more: true)).drop == .inconsistentLength)
        _ = r.feed(pieces[2])
        #expect(r.feed(fragment(offset: 24, pattern(24, 8), more: false)).drop == .inconsistentLength)   // a second, shorter end
        _ = r.feed(pieces[1])   // data up to 32
        #expect(r.feed(fragment(offset: 8, pattern(8, 8), more: false)).drop == .inconsistentLength)    // an end before it
        #expect(r.counters[.inconsistentLength] == 3 && r.pending == 0)
    }

    @Test("a non-final fragment whose length is not a multiple of 8 is refused")
    func badOffset() {
        var r = IPv4Reassembler()
        #expect(r.feed(fragment(offset: 0, pattern(0, 12), more: true)).drop == .badOffset)
        #expect(r.pending == 0 && r.counters[.badOffset] == 1)
    }

    @Test("the datagram may not exceed 65535 bytes with the first fragment's header")
    func oversize() {
        var r = IPv4Reassembler()
        // The last fragment alone fits (65480 + 32 + 20 bytes of header)...
        #expect(r.feed(fragment(offset: 65480, pattern(0, 32), more: false)).isIncomplete)
        // ...but not with a first fragment carrying 40 bytes of options.
        #expect(r.feed(fragment(offset: 0, pattern(0, 8), more: true, options: 40)).drop == .oversize)
        #expect(r.pending == 0 && r.bytesBuffered == 0)
    }

    @Test("the first fragment's options are skipped, its header kept")
    func options() {
        var r = IPv4Reassembler()
        _ = r.feed(fragment(offset: 0, pattern(0, 16), more: true, options: 8))
        _ = r.feed(pieces[1])
        guard case .complete(let d) = r.feed(pieces[2]) else { Issue.record("incomplete"); return }
        #expect(d.payload == pattern(0, 40) && d.header.payloadLength == 40 && !d.header.moreFragments)
    }

    @Test("timeout: 30 s after the first fragment, on the caller's clock")
    func timeout() {
        var r = IPv4Reassembler()
        _ = r.feed(pieces[0], at: 100)
        _ = r.feed(pieces[1], at: 129.9)   // arrivals do not extend the deadline
        var expired: [(FragmentKey, IPv4Header?)] = []
        r.expire(now: 129_999 * 1_000_000) { expired.append(($0, $1)) }
        #expect(expired.isEmpty && r.pending == 1)
        r.expire(now: 130 * 1_000_000_000) { expired.append(($0, $1)) }
        #expect(expired.count == 1 && expired.first?.0.identification == 1 && expired.first?.1?.source == ipA)
        #expect(r.pending == 0 && r.bytesBuffered == 0 && r.counters[.timeout] == 1)
        // The last fragment, too late, starts a new datagram that will time out in turn.
        #expect(r.feed(pieces[2], at: 131).isIncomplete)
        #expect(r.feed(pieces[0], at: 170).drop == nil)   // receive() expires first: a fresh datagram
        #expect(r.counters[.timeout] == 2 && r.pending == 1)
    }

    @Test("limits: datagrams in progress, bytes buffered, fragments per datagram")
    func limits() {
        var limits = ReassemblyLimits()
        limits.maximumDatagrams = 2
        limits.maximumTotalBytes = 64
        limits.maximumFragmentsPerDatagram = 4
        var r = IPv4Reassembler(limits: limits)
        #expect(r.feed(fragment(id: 1, offset: 0, pattern(0, 8), more: true)).isIncomplete)
        #expect(r.feed(fragment(id: 2, offset: 0, pattern(0, 8), more: true)).isIncomplete)
        #expect(r.feed(fragment(id: 3, offset: 0, pattern(0, 8), more: true)).drop == .overflow)
        #expect(r.pending == 2)
        // Datagram 2 grows past the byte budget: dropped, freeing its bytes.
        // (16 bytes buffered, and this one would grow datagram 2's buffer from 8 to 64 bytes.)
        #expect(r.feed(fragment(id: 2, offset: 48, pattern(48, 16), more: true)).drop == .overflow)
        #expect(r.pending == 1 && r.bytesBuffered == 8)
        // Datagram 1 in 8-byte pieces: the fifth fragment is one too many.
        for i in 1..<4 { #expect(r.feed(fragment(id: 1, offset: 8 * i, pattern(8 * i, 8), more: true)).isIncomplete) }
        #expect(r.feed(fragment(id: 1, offset: 32, pattern(32, 8), more: false)).drop == .overflow)
        #expect(r.pending == 0 && r.bytesBuffered == 0 && r.counters[.overflow] == 3)
    }

    @Test("an unfragmented packet is not the reassembler's")
    func notAFragment() {
        var r = IPv4Reassembler()
        #expect(r.feed(Array(Captured.udp[14...])).drop == .notAFragment)
        #expect(r.counters.fragments == 0 && r.counters.dropped == 1)
    }

    @Test("fragments of different datagrams do not mix (key: source, destination, protocol, id)")
    func keys() {
        var r = IPv4Reassembler()
        _ = r.feed(pieces[0])
        _ = r.feed(fragment(id: 1, offset: 16, pattern(16, 16), more: true, source: IPv4Address(192, 0, 2, 9)))
        _ = r.feed(fragment(id: 2, offset: 16, pattern(16, 16), more: true))
        #expect(r.feed(pieces[2]).isIncomplete && r.pending == 3)
        #expect(r.feed(pieces[1]).payload == pattern(0, 40))
    }
}
