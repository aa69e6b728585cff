// FuzzTests.swift: mutations of the captured frames (truncation, bit flips, length fields,
// tags, checksums fixed up so deeper layers are reached) through the whole receive path.
// Every input must give a value or a typed refusal; a trap would end the test process.
@testable import NetProtocols
@testable import NetStack
import Testing

/// One seeded mutator over the captured frames.
struct Mutator {
    var rng: SplitMix64

    mutating func int(_ range: Range<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }

    /// Offsets of the length-like fields of an untagged IPv4 or ARP frame.
    static let lengthFields = [12, 14, 16, 18, 19, 20, 38, 42]

    mutating func mutate(_ original: [UInt8]) -> [UInt8] {
        var f = original
        for _ in 0..<int(1..<4) {
            switch int(0..<7) {
            case 0:   // truncate
                f = Array(f[..<int(0..<f.count + 1)])
            case 1:   // flip bits
                for _ in 0..<int(1..<4) where !f.isEmpty { f[int(0..<f.count)] ^= UInt8(1) << UInt8(int(0..<8)) }
            case 2:   // a length-like field set to a random or nearby value
                let at = Self.lengthFields[int(0..<Self.lengthFields.count)]
                guard at + 1 < f.count else { break }
                let value = chance(0.5) ? UInt16(truncatingIfNeeded: int(0..<65536))
                                        : UInt16(truncatingIfNeeded: Int(f.u16(at)) + int(-9..<10))
                f.put16(value, at: at)
            case 3:   // IHL nibble
                if f.count > 14 { f[14] = f[14] & 0xF0 | UInt8(int(0..<16)) }
            case 4:   // random bytes appended
                f += (0..<int(1..<40)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 5:   // a VLAN tag inserted
                if f.count >= 12 { f.insert(contentsOf: [chance(0.5) ? 0x81 : 0x88, chance(0.5) ? 0x00 : 0xA8, 0, UInt8(int(0..<256))], at: 12) }
            default:  // fragment fields
                if f.count > 21 { f[20] = UInt8(int(0..<256)); f[21] = UInt8(int(0..<256)) }
            }
        }
        if chance(0.7) { fixChecksums(&f) }
        return f
    }

    /// Recomputes the IPv4 header checksum and the ICMP or UDP checksum where the frame's
    /// own fields say where they are and the bytes are there.
    func fixChecksums(_ f: inout [UInt8]) {
        guard f.count >= 34, f.u16(12) == 0x0800 else { return }
        let ihl = Int(f[14] & 15) * 4
        guard ihl >= 20, 14 + ihl <= f.count else { return }
        let end = min(f.count, 14 + Int(f.u16(16)))
        let l4 = 14 + ihl
        if f.u16(20) & 0x1FFF == 0, end > l4 {
            if f[23] == 1, end - l4 >= 8 {
                f.put16(0, at: l4 + 2)
                f.put16(f[l4..<end].withUnsafeBytes { InternetChecksum.checksum($0) }, at: l4 + 2)
            } else if f[23] == 17, end - l4 >= 8, f.u16(l4 + 6) != 0 {
                let length = Int(f.u16(l4 + 4))
                if length >= 8, l4 + length <= end {
                    f.put16(0, at: l4 + 6)
                    var sum = InternetChecksum.pseudoHeader(source: IPv4Address(rawValue: UInt32(f.u16(26)) << 16 | UInt32(f.u16(28))),
                                                            destination: IPv4Address(rawValue: UInt32(f.u16(30)) << 16 | UInt32(f.u16(32))),
                                                            protocol: .udp, length: length)
                    f[l4..<l4 + length].withUnsafeBytes { sum.add($0) }
                    f.put16(sum.checksum == 0 ? 0xFFFF : sum.checksum, at: l4 + 6)
                }
            }
        }
        f.put16(0, at: 24)
        f.put16(f[14..<14 + ihl].withUnsafeBytes { InternetChecksum.checksum($0) }, at: 24)
    }
}

@Suite("Wire: fuzz")
struct FuzzTests {
    @Test("mutated captured frames give a value or a typed refusal, never a crash", arguments: [1, 2, 3, 4] as [UInt64])
    func mutations(seed: UInt64) throws {
        var mutator = Mutator(rng: SplitMix64(seed: seed))
        var limits = ReassemblyLimits()
        limits.timeout = .seconds(1)
        var rx = Receiver(reassembler: IPv4Reassembler(limits: limits))
        var accepted = 0, refused = 0, fragments = 0
        var reasons = Set<WireError>()
        var mismatches: [String] = []
        for i in 0..<25_000 {
            let original = Captured.all[i % Captured.all.count].bytes
            let frame = mutator.mutate(original)
            rx.now += 10_000_000   // 10 ms
            let result = rx.receive(frame)
            switch result {
            case .refused(_, let reason):
                refused += 1
                reasons.insert(reason)
            case .fragmentHeld, .fragmentDropped:
                fragments += 1
            case .ignored:
                break
            case .arp, .udp, .icmp:
                accepted += 1
                // What was accepted re-emits to something that parses to the same values
                // (options and padding aside). An ICMP error quoting more than fits in
                // 576 bytes is cut on emit, so only its header is compared.
                let isReassembled = frame.count >= 24 && frame.u16(20) & 0x3FFF != 0
                guard !isReassembled else { break }
                var again = Receiver()
                let second = again.receive(try reemit(frame))
                if case .icmp(let e, _, let m, let n) = result, n > 548 {
                    if case .icmp(e, _, m, _) = second {} else { mismatches.append("\(i): \(second) after \(result)") }
                } else if second != result {
                    mismatches.append("\(i): \(second) after \(result)")
                }
            }
            if rx.reassembler.pending > limits.maximumDatagrams || rx.reassembler.bytesBuffered < 0
                || rx.reassembler.bytesBuffered > limits.maximumTotalBytes {
                mismatches.append("\(i): reassembler over its limits")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(3))")
        // The mutations reach every layer and a wide range of refusals.
        #expect(accepted > 2000 && refused > 2000 && fragments > 100, "accepted \(accepted), refused \(refused), fragments \(fragments)")
        #expect(reasons.count >= 12, "reasons seen: \(reasons.sorted { $0.rawValue < $1.rawValue })")
        #expect(rx.counters.total == UInt64(refused))
        // (This receiver stops at UDP and ICMP: TCP's refusals are counted by the interface.)
        for layer in WireLayer.allCases where layer != .tcp { #expect(rx.counters.total(layer) > 0, "\(layer)") }
        #expect(rx.reassembler.counters.reassembled > 0 && rx.reassembler.counters[.timeout] > 0)
    }

    @Test("random bytes of every length up to 128, through every parser")
    func randomBytes() {
        var rng = SplitMix64(seed: 42)
        for length in 0...128 {
            for _ in 0..<50 {
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
                bytes.withUnsafeBytes { b in
                    _ = try? EthernetHeader.parse(b)
                    _ = try? ARPPacket.parse(b)
                    _ = try? IPv4Header.parse(b, verifyChecksum: false)
                    _ = try? IPv4Packet(validatingQuoted: b)
                    _ = try? ICMPMessage.parse(b, verifyChecksum: false)
                    _ = try? UDPHeader.parse(b, source: ipA, destination: ipB, verifyChecksum: false)
                    if let p = try? IPv4Packet(validating: b, verifyChecksum: false) {
                        #expect(p.payload.count == p.totalLength - p.headerLength && p.options.count == p.headerLength - 20)
                    }
                }
            }
        }
    }
}
