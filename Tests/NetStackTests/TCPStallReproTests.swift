// TCPStallReproTests.swift: a reproduction for the core (not a regular test; runs only
// with JUNCTION_STALL_PROBE=1): rounds of 32 MB echoed between two in-process interfaces,
// one behind a fault injector dropping 5% each way, until one stalls; then both ends'
// TCP_INFO is printed (seen: the server's srtt inflated to seconds, RTO ~21 s, its ACK
// lost, while the client backs off against a full receive window).
import Foundation
import NICQueues
@testable import NetProtocols
@testable import NetStack
import Synchronization
import Testing
import UThreads

@Suite struct TCPStallReproTests {
    @Test func echoRoundsUntilAStall() throws {
        guard ProcessInfo.processInfo.environment["JUNCTION_STALL_PROBE"] == "1" else { return }
        let pair = try LoopbackDevice.pair()
        let da = pair.a, db = pair.b
        var f = FaultConfiguration(seed: 11)
        f.drop = 0.05; f.onTransmit = true; f.onReceive = true
        let ca = InterfaceConfiguration(mac: MAC(da.info.mac), address: try IPv4CIDR(parsing: "10.9.0.2/24"))
        let cb = InterfaceConfiguration(mac: MAC(db.info.mac), address: try IPv4CIDR(parsing: "10.9.0.9/24"))
        let a = try NetworkInterface(link: SharedDevice(try FaultInjector(wrapping: da, configuration: f)), configuration: ca)
        let b = try NetworkInterface(device: db, configuration: cb)
        let runtime = try Runtime(RuntimeConfiguration(kthreads: 2))
        try a.start(on: runtime); try b.start(on: runtime)
        defer { a.stop(); b.stop(); runtime.shutdown() }
        let listener = try TCPListener(interface: b, port: 7, configuration: testTCPConfiguration())
        defer { listener.close() }   // first: the last round's accept uthread must not outlive the runtime
        let serverSocket = Mutex<TCPSocket?>(nil)
        runtime.spawn {
            guard let c = try? listener.accept() else { return }
            serverSocket.withLock { $0 = c }
            var buffer = [UInt8](repeating: 0, count: 65536)
            while let n = try? c.read(into: &buffer), n > 0 { if writePrefix(c, buffer, n) != nil { break } }
            c.close()
        }
        for round in 0..<6 {
            let r = echoTransfer(a, runtime: runtime, size: 32 << 20, seed: round)
            print("round \(round): \(r.bytes) in \(r.seconds) s \(r.error ?? "ok")")
            #expect(r.error == nil, "round \(round) stalled")
            if r.error != nil {
                if let s = serverSocket.withLock({ $0 }) { print("SERVER: state \(s.state) readable \(s.readableBytes) info \(s.info)") }
                break
            }
            // No acceptor after the last round: parked in accept() with nothing to wake it,
            // it would fail Runtime.shutdown()'s deadlock check.
            if round == 5 { break }
            // next round needs a new server connection
            let deadline = Date().addingTimeInterval(5)
            while Date() < deadline && a.tcpConnectionCount > 0 { usleep(10000) }
            runtime.spawn {
                guard let c = try? listener.accept() else { return }
                serverSocket.withLock { $0 = c }
                var buffer = [UInt8](repeating: 0, count: 65536)
                while let n = try? c.read(into: &buffer), n > 0 { if writePrefix(c, buffer, n) != nil { break } }
                c.close()
            }
        }
    }
}
