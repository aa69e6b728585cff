// main.swift: counts what NetStack's per-packet paths cost, with the release build of
// the NetStack module: nanoseconds per frame, and (run under valgrind by measure.sh)
// heap allocations, which must not grow with the number of frames.
import Foundation
import NetStack

/// The captured UDP datagram of Tests/NetStackTests/CapturedPackets.swift ("hello, wire\n").
let udpFrame: [UInt8] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x28, 0xf6, 0xc5, 0x40, 0x00, 0x40, 0x11, 0xbf, 0xfb, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00,
    0x02, 0x02, 0x9c, 0x40, 0x14, 0xe9, 0x00, 0x14, 0x97, 0xa6, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x2c,
    0x20, 0x77, 0x69, 0x72, 0x65, 0x0a,
]

func nanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Locals, not globals, so the loop carries no exclusivity checks of its own.
func run(frames: Int) {
    var counters = WireCounters()
    var received = 0
    var out = [UInt8](repeating: 0, count: 1514)
    var large = [UInt8](repeating: 0xA5, count: 1480)
    var checksums: UInt64 = 0

    let start = nanos()
    udpFrame.withUnsafeBytes { bytes in
        out.withUnsafeMutableBytes { buffer in
            for i in 0..<frames {
                // Receive: Ethernet, IPv4 (header checksum), UDP (pseudo-header checksum).
                guard let eth = counters.counting(.ethernet, { () throws(WireError) in try EthernetFrame(validating: bytes) }),
                      let ip = counters.counting(.ipv4, { () throws(WireError) in try IPv4Packet(validating: eth.payload) }),
                      let udp = counters.counting(.udp, { () throws(WireError) in
                          try UDPDatagram(validating: ip.payload, source: ip.source, destination: ip.destination) })
                else { continue }
                received &+= udp.payload.count
                // Transmit the reply: UDP, IPv4, Ethernet headers around the same payload.
                let l4 = UnsafeMutableRawBufferPointer(rebasing: buffer[34...])
                UnsafeMutableRawBufferPointer(rebasing: l4[8...]).copyMemory(from: udp.payload)
                let n = try! UDPHeader(sourcePort: udp.destinationPort, destinationPort: udp.sourcePort, payloadLength: udp.payload.count)
                    .emit(into: l4, source: ip.destination, destination: ip.source)
                try! IPv4Header(source: ip.destination, destination: ip.source, protocol: .udp, payloadLength: n,
                                identification: UInt16(truncatingIfNeeded: i))
                    .emit(into: UnsafeMutableRawBufferPointer(rebasing: buffer[14...]))
                try! EthernetHeader(destination: eth.source, source: eth.destination, etherType: .ipv4).emit(into: buffer)
            }
        }
    }
    let perFrame = Double(nanos() - start) / Double(max(frames, 1))

    let sumStart = nanos()
    large.withUnsafeMutableBytes { b in
        for i in 0..<frames {
            b[i % 1480] &+= 1   // a new buffer each time, so the sum cannot be hoisted
            checksums &+= UInt64(InternetChecksum.checksum(UnsafeRawBufferPointer(b)))
        }
    }
    let perChecksum = Double(nanos() - sumStart) / Double(max(frames, 1))

    print(String(format: "%d frames: receive (Ethernet+IPv4+UDP, checksums verified) and emit a reply: %.1f ns/frame", frames, perFrame))
    print(String(format: "Internet checksum of 1480 bytes: %.1f ns (%.2f GB/s)", perChecksum, 1480 / max(perChecksum, 0.001)))
    print("refused: \(counters.total), payload bytes: \(received), checksum sink: \(checksums & 1)")
}

run(frames: CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1])! : 1_000_000)
