// VirtioNetHeaderTests.swift: the TAP device's virtio_net_hdr: known bytes parse to the
// expected fields and back, every malformed or truncated header is a typed error (and a
// counted drop on a real TAP), checksums are checked in software only when the kernel
// vouched for nothing, and outgoing TCP frames get NEEDS_CSUM and TCPv4 GSO at the MTU.
import Foundation
import NICQueues
@testable import NICQueuesCore
import Testing
import TestSupport

/// An RFC 1071 checksum over `bytes` (the test's own, independent of NetProtocols').
private func onesComplementSum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 {
    var s = initial
    var i = 0
    while i + 1 < bytes.count { s += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1]); i += 2 }
    if i < bytes.count { s += UInt32(bytes[i]) << 8 }
    while s > 0xFFFF { s = (s & 0xFFFF) + (s >> 16) }
    return UInt16(s)
}

/// An Ethernet + IPv4 + TCP frame (20-byte TCP header plus `optionWords` NOP words) with
/// `payload` bytes; checksums right unless `corrupt`, or the TCP one partial (the
/// pseudo-header sum only) when `partial`.
private func tcpFrame(payload: Int, optionWords: Int = 0, partial: Bool = false, corrupt: Bool = false) -> [UInt8] {
    let tcpLength = 20 + optionWords * 4 + payload
    let total = 20 + tcpLength
    var ip: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0x40, 0, 64, 6, 0, 0,
                       10, 0, 0, 1, 10, 0, 0, 2]
    let ipSum = ~onesComplementSum(ip)
    ip[10] = UInt8(ipSum >> 8); ip[11] = UInt8(ipSum & 0xFF)
    var tcp: [UInt8] = [0x1F, 0x90, 0xC0, 0x00, 0, 0, 0, 1, 0, 0, 0, 0, UInt8((5 + optionWords) << 4), 0x18, 0xFF, 0xFF, 0, 0, 0, 0]
    tcp += [UInt8](repeating: 1, count: optionWords * 4)
    tcp += (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    let pseudo = onesComplementSum([10, 0, 0, 1, 10, 0, 0, 2, 0, 6, UInt8(tcpLength >> 8), UInt8(tcpLength & 0xFF)])
    let sum: UInt16 = partial ? pseudo : ~onesComplementSum(tcp, initial: UInt32(pseudo))
    tcp[16] = UInt8(sum >> 8); tcp[17] = UInt8(sum & 0xFF)
    if corrupt { tcp[tcp.count - 1] ^= 0x55 }
    let eth: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]
    return eth + ip + tcp
}

private func header(_ h: VirtioNetHeader) -> [UInt8] {
    var b = [UInt8](repeating: 0, count: VirtioNetHeader.length)
    b.withUnsafeMutableBytes { h.store(to: $0.baseAddress!) }
    return b
}

private func parse(_ bytes: [UInt8]) -> Result<VirtioNetHeader, VirtioNetHeaderError> {
    bytes.withUnsafeBytes { b in Result { () throws(VirtioNetHeaderError) in try VirtioNetHeader(parsing: b) } }
}

private func reception(_ bytes: [UInt8], checksumOffload: Bool = true) -> TapDevice.Reception {
    bytes.withUnsafeBytes { TapDevice.acceptReceived($0, checksumOffload: checksumOffload) }
}

@Suite struct VirtioNetHeaderTests {
    @Test func knownBytesParseAndEmitTheSame() throws {
        // NEEDS_CSUM, GSO TCPv4, hdr_len 66, gso_size 1448, csum_start 34, csum_offset 16.
        let bytes: [UInt8] = [0x01, 0x01, 66, 0, 0xA8, 0x05, 34, 0, 16, 0]
        let h = try parse(bytes + tcpFrame(payload: 3000)).get()
        #expect(h == VirtioNetHeader(flags: 1, segmentationType: 1, headerLength: 66, segmentSize: 1448, checksumStart: 34, checksumOffset: 16))
        #expect(header(h) == bytes)
    }

    @Test(arguments: [0, 1, 9, 10, 23])
    func truncatedHeadersAreTypedErrors(length: Int) {
        let bytes = Array((header(VirtioNetHeader()) + tcpFrame(payload: 0)).prefix(length))
        #expect(parse(bytes) == .failure(.truncated(length: length)))
        #expect(reception(bytes) == .malformed(.truncated(length: length)))
    }

    @Test func malformedHeadersAreTypedErrors() {
        let frame = tcpFrame(payload: 10)
        #expect(parse(header(VirtioNetHeader(flags: 0x08)) + frame) == .failure(.unknownFlags(0x08)))
        #expect(parse(header(VirtioNetHeader(segmentationType: 2, segmentSize: 100)) + frame) == .failure(.unknownSegmentationType(2)))
        #expect(parse(header(VirtioNetHeader(segmentationType: 0x85, segmentSize: 100)) + frame) == .failure(.unknownSegmentationType(0x85)))
        #expect(parse(header(VirtioNetHeader(segmentationType: 1)) + frame) == .failure(.zeroSegmentSize))
        let n = frame.count
        #expect(parse(header(VirtioNetHeader(flags: 1, checksumStart: UInt16(n - 1), checksumOffset: 0)) + frame)
                == .failure(.checksumOutsideFrame(start: n - 1, offset: 0, frameLength: n)))
        #expect(parse(header(VirtioNetHeader(flags: 1, checksumStart: 0xFFFF, checksumOffset: 0xFFFF)) + frame)
                == .failure(.checksumOutsideFrame(start: 0xFFFF, offset: 0xFFFF, frameLength: n)))
        // The ECN bit beside a known type, and the last checksum position that fits, are fine.
        #expect((try? parse(header(VirtioNetHeader(segmentationType: 0x81, segmentSize: 1448)) + frame).get()) != nil)
        #expect((try? parse(header(VirtioNetHeader(flags: 1, checksumStart: UInt16(n - 2), checksumOffset: 0)) + frame).get()) != nil)
    }

    @Test func checksumsAreCheckedOnlyWhenTheKernelVouchedForNothing() {
        let good = tcpFrame(payload: 100), bad = tcpFrame(payload: 100, corrupt: true), partial = tcpFrame(payload: 100, partial: true)
        #expect(reception(header(VirtioNetHeader()) + good) == .accept(coalesced: false))
        #expect(reception(header(VirtioNetHeader()) + bad) == .badChecksum)
        #expect(reception(header(VirtioNetHeader()) + partial) == .badChecksum)
        // NEEDS_CSUM (a partial checksum from this host) and DATA_VALID are the kernel's word.
        #expect(reception(header(VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 34, checksumOffset: 16)) + partial) == .accept(coalesced: false))
        #expect(reception(header(VirtioNetHeader(flags: VirtioNetHeader.dataValid)) + bad) == .accept(coalesced: false))
        // Without checksum offload nothing is checked here (the stack does it).
        #expect(reception(header(VirtioNetHeader()) + bad, checksumOffload: false) == .accept(coalesced: false))
        // A GRO'd frame is delivered whole, counted as coalesced.
        let large = tcpFrame(payload: 20_000, partial: true)
        #expect(reception(header(VirtioNetHeader(flags: 1, segmentationType: 1, headerLength: 54, segmentSize: 1460,
                                                 checksumStart: 34, checksumOffset: 16)) + large) == .accept(coalesced: true))
        // A bad IPv4 header checksum, and a non-IPv4 frame (nothing to check).
        var badIP = good
        badIP[14 + 8] ^= 1
        #expect(reception(header(VirtioNetHeader()) + badIP) == .badChecksum)
        #expect(reception(header(VirtioNetHeader()) + [UInt8](repeating: 0xFF, count: 12) + [0x08, 0x06] + [UInt8](repeating: 0, count: 28)) == .accept(coalesced: false))
    }

    @Test func outgoingTCPFramesGetPartialChecksumsAndSegmentationAtTheMTU() {
        func forTransmit(_ f: [UInt8], offload: Bool = true) -> VirtioNetHeader {
            f.withUnsafeBytes { VirtioNetHeader.forTransmit($0, mtu: 1500, checksumOffload: offload) }
        }
        let small = forTransmit(tcpFrame(payload: 100, optionWords: 3))
        #expect(small == VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 34, checksumOffset: 16))
        // 1500 - 20 (IPv4) - 32 (TCP with timestamps) = 1448 per segment.
        let large = forTransmit(tcpFrame(payload: 1448 * 20, optionWords: 3))
        #expect(large == VirtioNetHeader(flags: 1, segmentationType: VirtioNetHeader.gsoTCPv4, headerLength: 66,
                                         segmentSize: 1448, checksumStart: 34, checksumOffset: 16))
        // Exactly one MTU: no segmentation.
        #expect(forTransmit(tcpFrame(payload: 1460)).segmentationType == 0)
        // Not TCP, truncated, or no offload: a zero header.
        var udp = tcpFrame(payload: 100)
        udp[14 + 9] = 17
        #expect(forTransmit(udp) == VirtioNetHeader())
        #expect(forTransmit(Array(tcpFrame(payload: 0).prefix(40))) == VirtioNetHeader())
        #expect(forTransmit(tcpFrame(payload: 100), offload: false) == VirtioNetHeader())
        #expect(forTransmit([UInt8](repeating: 0, count: 10)) == VirtioNetHeader())
    }

    /// On a real TAP: a refused header is dropped and counted, never delivered.
    @Test(.enabled(if: isRoot, "needs root: creates a TAP device"))
    func refusedFramesAreCountedOnTheDevice() throws {
        let name = uniqueName("jnqv")
        let tap = try TapDevice(name: name)
        defer { _ = try? runCommand("ip", "link", "del", name) }
        #expect(tap.info.offloads.isSuperset(of: [.rxChecksum, .txChecksum, .tcpSegmentation]))
        #expect(tap.info.segmentationLimit == 14 + 65535)
        let truncated: [UInt8] = [1, 1, 0]
        #expect(!truncated.withUnsafeBytes { tap.admit($0, queue: 0) })
        #expect(!(header(VirtioNetHeader(flags: 0x40)) + tcpFrame(payload: 1)).withUnsafeBytes { tap.admit($0, queue: 0) })
        #expect(!(header(VirtioNetHeader()) + tcpFrame(payload: 1, corrupt: true)).withUnsafeBytes { tap.admit($0, queue: 0) })
        #expect((header(VirtioNetHeader()) + tcpFrame(payload: 1)).withUnsafeBytes { tap.admit($0, queue: 0) })
        #expect(tap.statistics.rxMalformed == 2)
        #expect(tap.statistics.rxChecksumErrors == 1)
    }
}
