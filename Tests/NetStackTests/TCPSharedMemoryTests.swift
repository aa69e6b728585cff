// TCPSharedMemoryTests.swift: TCP between two processes over NICQueues' shared-memory
// link, our stack on both ends (echo-server --tcp in a child process): bulk transfers
// through the fault injector (loss, reordering, duplication) arrive intact with
// retransmission counters that fit the faults; 10,000 connections open at once.
import Foundation
import NICQueues
@testable import NetProtocols
@testable import NetStack
import Synchronization
import Testing
import TestSupport
import UThreads

/// JUNCTION_LONG_TESTS=1 runs the long variants (larger transfers).
let longTests = ProcessInfo.processInfo.environment["JUNCTION_LONG_TESTS"] == "1"

/// echo-server --tcp 7 on `shm:PATH` (10.9.0.9/24), this process at 10.9.0.2/24, our
/// side's frames (both ways) through a fault injector when `faults` is given.
func withTCPEchoServerOverShm(faults: FaultConfiguration?, serverArguments: [String] = [], kthreads: Int = 1,
                              serverStarted: (pid_t) -> Void = { _ in },
                              _ body: (NetworkInterface, Runtime) throws -> Void) throws -> (server: String, faults: (transmit: FaultStatistics, receive: FaultStatistics)?) {
    let path = "/dev/shm/netstack-tcp-\(uniqueTestName("t"))"
    defer { unlink(path) }
    let server = try ChildProcess([siblingExecutable("echo-server"), "--net", "shm:\(path)", "--ip", "10.9.0.9/24", "--tcp", "7"]
                                  + serverArguments)
    defer { server.kill() }
    var c = SharedMemoryConfiguration()
    c.connectTimeout = .seconds(10)
    let device = try SharedMemoryDevice(path: path, configuration: c)
    let config = InterfaceConfiguration(mac: MAC(device.info.mac), address: try IPv4CIDR(parsing: "10.9.0.2/24"))
    let interface: NetworkInterface
    var injector: SharedDevice<FaultInjector<SharedMemoryDevice>>? = nil
    if let faults {
        let shared = SharedDevice(try FaultInjector(wrapping: device, configuration: faults))
        injector = shared
        interface = try NetworkInterface(link: shared, configuration: config)
    } else {
        interface = try NetworkInterface(device: device, configuration: config)
    }
    guard server.waitForOutput("echo-server: ready", seconds: 10) else { throw CommandFailure("echo-server: \(server.output)") }
    serverStarted(server.pid)
    let runtime = try Runtime(RuntimeConfiguration(kthreads: kthreads))
    try interface.start(on: runtime)
    try body(interface, runtime)
    // Our connections end after the server's FIN (and TIME_WAIT): the server is done too.
    _ = eventually(seconds: 15) { interface.tcpConnectionCount == 0 }
    usleep(100_000)
    interface.stop()
    runtime.shutdown()
    _ = server.stop()
    return (server.output, injector?.device.faultStatistics)
}

/// What one echoed transfer measured.
struct TransferResult: Sendable {
    var intact: Bool
    var bytes: Int
    var seconds: Double
    var statistics: TCPStatistics
    var error: String?
}

/// Sends `size` pattern bytes to the echo server on one connection while reading the
/// echo, checking every byte; closes when done.
func echoTransfer(_ interface: NetworkInterface, runtime: Runtime, size: Int, seed: Int = 0) -> TransferResult {
    runtime.spawn { () -> TransferResult in
        let start = MonotonicInstant.now
        var config = testTCPConfiguration()
        config.maximumRetransmissions = 30
        let c: TCPSocket
        do { c = try TCPSocket.connect(interface: interface, to: SocketAddress(IPv4Address(10, 9, 0, 9), 7), configuration: config) } catch {
            return TransferResult(intact: false, bytes: 0, seconds: 0, statistics: TCPStatistics(), error: "connect: \(error)")
        }
        c.receiveTimeout = .seconds(20)
        c.sendTimeout = .seconds(20)
        let writer = UThread.spawn { () -> String? in
            var chunk = [UInt8](repeating: 0, count: 65536)
            var offset = 0
            while offset < size {
                let n = min(chunk.count, size - offset)
                for k in 0..<n { chunk[k] = patternByte(offset + k, seed: seed) }
                if let e = writePrefix(c, chunk, n) { return "write at \(offset): \(e)" }
                offset += n
            }
            return nil
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var got = 0
        var intact = true
        var failure: String? = nil
        while got < size {
            let n: Int
            do throws(SocketError) { n = try c.read(into: &buffer) } catch { failure = "read at \(got): \(error)"; break }
            if n == 0 { failure = "end of stream at \(got)"; break }
            for k in 0..<n where buffer[k] != patternByte(got + k, seed: seed) { intact = false; break }
            got += n
        }
        if let e = writer.join(), failure == nil { failure = e }
        let statistics = c.info.statistics
        if failure != nil { failure! += " (state \(c.state), info \(c.info))" }
        c.close()
        let seconds = Double(MonotonicInstant.now.nanoseconds - start.nanoseconds) / 1e9
        return TransferResult(intact: intact && got == size, bytes: got, seconds: seconds, statistics: statistics, error: failure)
    }.join()
}

/// A fault mix for the parameterised transfer test.
struct FaultCase: Sendable, CustomTestStringConvertible {
    var name: String
    var drop = 0.0
    var reorder = 0.0
    var duplicate = 0.0
    var testDescription: String { name }
    var configuration: FaultConfiguration? {
        if drop == 0 && reorder == 0 && duplicate == 0 { return nil }
        var f = FaultConfiguration(seed: 11)
        f.drop = drop
        f.reorder = reorder
        f.duplicate = duplicate
        f.onTransmit = true
        f.onReceive = true
        return f
    }
}

@Suite(.serialized) struct TCPSharedMemoryTests {
    @Test(arguments: [
        FaultCase(name: "no faults"),
        FaultCase(name: "1% loss", drop: 0.01),
        FaultCase(name: "5% loss", drop: 0.05),
        FaultCase(name: "5% reordering", reorder: 0.05),
        FaultCase(name: "5% duplication", duplicate: 0.05),
    ])
    func transferThroughFaults(_ fault: FaultCase) throws {
        // JUNCTION_TCP_FAULT_CASE="5% loss" runs that case alone (to reproduce one).
        if let only = ProcessInfo.processInfo.environment["JUNCTION_TCP_FAULT_CASE"], only != fault.name { return }
        let size = fault.drop >= 0.05 ? (longTests ? 32 << 20 : 4 << 20) : (longTests ? 256 << 20 : 16 << 20)
        var result: TransferResult? = nil
        var counters = InterfaceCounters()
        let (out, stats) = try withTCPEchoServerOverShm(faults: fault.configuration) { interface, runtime in
            result = echoTransfer(interface, runtime: runtime, size: size, seed: Int(fault.drop * 1000))
            counters = interface.statistics
        }
        let r = try #require(result)
        print("TCP over shm, \(fault.name): \(r.bytes) bytes echoed in \(String(format: "%.2f", r.seconds)) s; client \(r.statistics)")
        #expect(r.intact, "\(r.error ?? "data differ") \(out)")
        #expect(r.error == nil)
        if fault.drop == 0 && fault.reorder == 0 && fault.duplicate == 0 {
            // A clean link drops nothing (a window rounded up by scaling never offers more
            // than the receive ring stores), so every retransmission is a timeout's: a peer
            // that got no CPU for an RTO on a loaded machine, not a lost segment.
            // (The link's counters exist only under fault injection.)
            if let s = stats { #expect(s.transmit.dropped + s.receive.dropped == 0, "\(counters.description)\n\(out)") }
            #expect(r.statistics.retransmittedSegments == 0 || r.statistics.timeouts > 0,
                    "\(r.statistics)\n\(counters.description)\n\(out)")
        }
        if fault.drop > 0 {
            let s = try #require(stats)
            #expect(s.transmit.dropped + s.receive.dropped > 0)
            #expect(r.statistics.retransmittedSegments > 0, "\(r.statistics)")
        }
        if fault.duplicate > 0 {
            #expect(r.statistics.duplicateSegments > 0, "\(r.statistics)")
        }
        if fault.reorder > 0 {
            #expect(r.statistics.outOfOrderSegments > 0, "\(r.statistics)")
        }
        #expect(summaryValue(out, "tcp.connections") == 1, "\(out)")
    }

    /// 10,000 connections established at the same time between two processes, each
    /// echoing one message, then all closed.
    @Test func tenThousandConcurrentConnections() throws {
        let count = 10_000
        let established = Atomic<Int>(0)
        let echoed = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
        var peak = 0
        let start = MonotonicInstant.now
        let (out, _) = try withTCPEchoServerOverShm(faults: nil, serverArguments: ["--backlog", "4096", "--tcp-buffer", "4096"]) {
            interface, runtime in
            let handles = (0..<count).map { i in
                runtime.spawn { () -> Void in
                    var config = testTCPConfiguration(buffer: 4096)
                    config.timeWaitDuration = .milliseconds(500)
                    let c: TCPSocket
                    do { c = try TCPSocket.connect(interface: interface, to: SocketAddress(IPv4Address(10, 9, 0, 9), 7), configuration: config) } catch {
                        failures.withLock { $0.append("connect \(i): \(error)") }
                        established.add(1, ordering: .relaxed)   // so the others do not wait for ever
                        return
                    }
                    c.receiveTimeout = .seconds(60)   // under load a lost segment backs off: 1+2+4+8+16 s
                    established.add(1, ordering: .relaxed)
                    let message = Array("connection \(i)".utf8)
                    var buffer = [UInt8](repeating: 0, count: 64)
                    var got: [UInt8] = []
                    if (try? c.write(message)) == message.count {
                        while got.count < message.count, let n = try? c.read(into: &buffer), n > 0 { got.append(contentsOf: buffer[..<n]) }
                    }
                    if got == message { echoed.add(1, ordering: .relaxed) } else { failures.withLock { $0.append("echo \(i): \(got.count) bytes") } }
                    // Everyone is connected before anyone closes.
                    while established.load(ordering: .relaxed) < count { UThread.sleep(for: .milliseconds(20)) }
                    c.close()
                }
            }
            // The peak of simultaneously open connections, seen from here.
            while established.load(ordering: .relaxed) < count && MonotonicInstant.now.nanoseconds - start.nanoseconds < 50_000_000_000 {
                peak = max(peak, interface.tcpConnectionCount)
                usleep(20_000)
            }
            peak = max(peak, interface.tcpConnectionCount)
            for h in handles { h.join() }
            // Our closes go first (TIME_WAIT 500 ms here), the server's follow. Under load a
            // FIN or its ACK dropped at a full ring is retransmitted with backoff
            // (1+2+4+8+16 s), so the bound is generous; it is left as soon as all are gone.
            _ = eventually(seconds: 60) { interface.tcpConnectionCount == 0 }
            #expect(interface.tcpConnectionCount == 0)
        }
        let seconds = Double(MonotonicInstant.now.nanoseconds - start.nanoseconds) / 1e9
        print("10,000 TCP connections over shm: peak \(peak) open at once, \(String(format: "%.1f", seconds)) s")
        let f = failures.withLock { $0 }
        #expect(f.isEmpty, "\(f.prefix(10))")
        #expect(echoed.load(ordering: .relaxed) == count)
        #expect(peak >= count - 100, "peak \(peak)")
        #expect(summaryValue(out, "tcp.passive") == count, "\(out)")
        #expect(summaryValue(out, "tcp.connections") == count, "\(out)")
    }
}
