// main.swift: drives two TCPConnections back to back (the release build of NetStack, no
// device: segments pass by value, payloads through one frame buffer). Prints nanoseconds
// per segment on a clean path, then runs with one segment in 37 dropped so recovery and
// timers run too; under valgrind (measure.sh) the heap allocation count must not grow
// with the number of rounds.
import Foundation
import NetStack

func nanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

let client = SocketAddress(IPv4Address(10, 0, 0, 1), 40000)
let server = SocketAddress(IPv4Address(10, 0, 0, 2), 80)

/// Hands every segment `from` has to `to` through `frame`, dropping every `dropEvery`-th.
func pass(_ from: inout TCPConnection, _ to: inout TCPConnection, frame: UnsafeMutableRawBufferPointer, now: Int64,
          counter: inout Int, dropEvery: Int) {
    while let s = from.nextSegment(now: now) {
        counter &+= 1
        if dropEvery > 0 && counter % dropEvery == 0 { continue }
        from.copyPayload(of: s, into: frame)
        to.input(TCPSegment(sequenceNumber: s.sequenceNumber, acknowledgmentNumber: s.acknowledgmentNumber, flags: s.flags,
                            window: s.window, options: s.options,
                            payload: UnsafeRawBufferPointer(rebasing: frame[0..<s.payloadLength])), now: now)
    }
}

func run(rounds: Int, algorithm: CongestionControlAlgorithm, dropEvery: Int) -> (segments: Int, bytes: UInt64, nanoseconds: UInt64) {
    var config = TCPConfiguration()
    config.noDelay = true
    config.congestionControl = algorithm
    var a = TCPConnection(connectingFrom: client, to: server, isn: SequenceNumber(1), mss: 1460, configuration: config, now: 0)
    let syn = a.nextSegment(now: 0)!
    guard var b = TCPConnection(acceptingSYN: TCPSegment(sequenceNumber: syn.sequenceNumber, acknowledgmentNumber: syn.acknowledgmentNumber,
                                                         flags: syn.flags, window: syn.window, options: syn.options),
                                local: server, remote: client, isn: SequenceNumber(99), mss: 1460, configuration: config, now: 0)
    else { fatalError("SYN refused") }
    let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
    let data = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
    let sink = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
    defer { frame.deallocate(); data.deallocate(); sink.deallocate() }
    data.initializeMemory(as: UInt8.self, repeating: 0x5A)
    var now: Int64 = 0
    var counter = 0
    let start = nanos()
    for i in 0..<rounds {
        now += 1_000_000
        _ = try? a.send(UnsafeRawBufferPointer(rebasing: data[0..<(i % 7 + 1) * 8000]))
        for _ in 0..<6 {
            pass(&a, &b, frame: frame, now: now, counter: &counter, dropEvery: dropEvery)
            pass(&b, &a, frame: frame, now: now, counter: &counter, dropEvery: dropEvery)
        }
        while let n = try? b.receive(into: sink), n > 0 {}
        if let d = a.nextDeadline, d <= now { a.handleTimers(now: now) }
        if let d = b.nextDeadline, d <= now { b.handleTimers(now: now) }
    }
    let elapsed = nanos() - start
    return (counter, b.info.statistics.bytesReceived, elapsed)
}

let rounds = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1])! : 10_000
for algorithm in CongestionControlAlgorithm.allCases {
    let clean = run(rounds: rounds, algorithm: algorithm, dropEvery: 0)
    let lossy = run(rounds: rounds, algorithm: algorithm, dropEvery: 37)
    print("\(algorithm): \(clean.segments) segments, \(clean.bytes) bytes, "
          + "\(clean.nanoseconds / UInt64(max(clean.segments, 1))) ns per segment (sender and receiver); "
          + "with 1 in 37 dropped: \(lossy.segments) segments, \(lossy.bytes) bytes")
}
