// TCPTransferTests.swift: two connections back to back over the simulated link: bytes
// both ways arrive intact and in order with every congestion control and option mix, on a
// clean link (no retransmissions at all) and a lossy, reordering, duplicating one.
@testable import NetStack
import Testing

struct TransferCase: CustomStringConvertible, Sendable {
    var algorithm: CongestionControlAlgorithm
    var sack: Bool
    var timestamps: Bool
    var lossy: Bool
    var description: String {
        "\(algorithm) sack:\(sack) ts:\(timestamps) \(lossy ? "lossy" : "clean")"
    }

    static let all: [TransferCase] = CongestionControlAlgorithm.allCases.flatMap { a in
        [false, true].flatMap { sack in
            [false, true].flatMap { ts in
                [false, true].map { lossy in TransferCase(algorithm: a, sack: sack, timestamps: ts, lossy: lossy) }
            }
        }
    }
}

/// Bytes moved each way (debug builds are slow; release moves more).
#if DEBUG
let transferSize = 512 * 1024
#else
let transferSize = 4 * 1024 * 1024
#endif

/// Runs a bidirectional transfer and returns the simulation for inspection.
@discardableResult
func runTransfer(_ c: TransferCase, seed: UInt64, size: Int = transferSize) -> Simulation {
    var config = TCPConfiguration()
    config.congestionControl = c.algorithm
    config.selectiveAcknowledgments = c.sack
    config.timestamps = c.timestamps
    config.timeWaitDuration = .seconds(1)
    let sim = Simulation(seed: seed, client: config)
    if c.lossy {
        sim.loss = 0.01
        sim.reorder = 0.02
        sim.duplicate = 0.01
    }
    var rng = SplitMix64(seed: seed ^ 0xABCDEF)
    let up = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
    let down = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
    var sentUp = 0, sentDown = 0
    var gotUp: [UInt8] = [], gotDown: [UInt8] = []

    func pump(_ e: Endpoint, _ data: [UInt8], _ sent: inout Int, _ got: inout [UInt8]) {
        switch e.conn.state {
        case .established, .closeWait:
            while sent < data.count {
                let n = data[sent...].withUnsafeBytes { (try? e.conn.send($0)) ?? 0 }
                if n <= 0 { break }
                sent += n
            }
            if sent == data.count { e.conn.shutdownWrite() }
        default: break
        }
        got += e.receiveAll()
    }

    let limit = 600 * sec
    while sim.now < limit {
        pump(sim.client, up, &sentUp, &gotDown)
        if let server = sim.server { pump(server, down, &sentDown, &gotUp) }
        if sim.client.conn.isFinished && (sim.server?.conn.isFinished ?? false) { break }
        if !sim.step() { break }
    }
    #expect(gotUp.count == size && gotDown.count == size, "\(c): got \(gotUp.count) up, \(gotDown.count) down at \(sim.now / ms) ms")
    #expect(gotUp == up, "\(c): upstream bytes differ")
    #expect(gotDown == down, "\(c): downstream bytes differ")
    #expect(sim.client.conn.isFinished && (sim.server?.conn.isFinished ?? false),
            "\(c): states \(sim.client.conn.state) / \(String(describing: sim.server?.conn.state))")
    #expect(sim.client.conn.pendingError == nil && sim.server?.conn.pendingError == nil)
    return sim
}

@Suite("TCP: back-to-back transfers")
struct TCPTransferTests {
    @Test("bytes arrive intact both ways; retransmissions only on a lossy link", arguments: TransferCase.all)
    func transfer(_ c: TransferCase) {
        let sim = runTransfer(c, seed: 11)
        let a = sim.client.conn.info.statistics
        let b = sim.server!.conn.info.statistics
        if c.lossy {
            #expect(a.retransmittedSegments + b.retransmittedSegments > 0)
            #expect(a.retransmittedSegments < UInt64(transferSize / 1000), "\(a)")
            if c.sack { #expect(a.sackRetransmits + b.sackRetransmits > 0, "\(a) \(b)") }
        } else {
            #expect(sim.dropped == 0)
            #expect(a.retransmittedSegments == 0 && b.retransmittedSegments == 0, "\(a) \(b)")
            #expect(a.timeouts == 0 && b.timeouts == 0)
        }
        #expect(sim.client.conn.info.sackEnabled == c.sack && sim.client.conn.info.timestampsEnabled == c.timestamps)
    }
}
