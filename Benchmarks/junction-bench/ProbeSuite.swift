// ProbeSuite.swift: `junction-bench rr-probe`: a fixed number of 64-byte request/response
// rounds, TCP or UDP, between two NetStack interfaces over one shm link inside one
// process, on one kthread (client and echo server are uthreads of the same runtime), so
// that the instructions a round trip costs can be counted: run it under
// `valgrind --tool=callgrind` or `perf stat -e instructions:u` with two round counts and
// divide the difference by the difference of rounds (startup cancels out). Everything a
// round trip runs on the real link is there (socket calls, parking and unparking, the
// scheduler, the poll hook, device rings, both stacks, timers) except the doorbells: with
// one kthread the frame is always waiting when the poll hook runs.
import ArgumentParser
import CJunction
import Foundation
import NetStack
import NICQueues
import UThreads

struct ProbeSuite: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rr-probe",
        abstract: "A fixed number of 64-byte TCP or UDP round trips inside one process, for counting instructions.")

    @Option(help: "tcp or udp.") var proto: String = "tcp"
    @Option(help: "Round trips.") var rounds: Int = 10_000

    static let message = 64

    func run() throws {
        let path = "/dev/shm/junction-bench-probe-\(getpid())"
        defer { unlink(path) }
        var link = SharedMemoryConfiguration()
        link.buffersPerSide = 1024
        // The second side joins from another thread (the first waits for it).
        let joined = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var peer: NetworkInterface? = nil
        let config = link
        Thread.detachNewThread {
            do {
                let d = try SharedMemoryDevice(path: path, configuration: config)
                let c = InterfaceConfiguration(mac: NetStack.MACAddress(rawValue: d.info.mac.raw), address: try IPv4CIDR(parsing: "10.96.0.2/24"))
                peer = try NetworkInterface(device: d, configuration: c)
            } catch { FileHandle.standardError.write("rr-probe: \(error)\n".data(using: .utf8)!) }
            joined.signal()
        }
        let device = try SharedMemoryDevice(path: path, configuration: link)
        let clientConfiguration = InterfaceConfiguration(mac: NetStack.MACAddress(rawValue: device.info.mac.raw),
                                                         address: try IPv4CIDR(parsing: "10.96.0.1/24"))
        let client = try NetworkInterface(device: device, configuration: clientConfiguration)
        joined.wait()
        guard let server = peer else { throw BenchFailure("the second side of the link did not open") }
        let runtime = try Runtime(RuntimeConfiguration(kthreads: 1))
        try client.start(on: runtime)
        try server.start(on: runtime)
        defer { client.stop(); server.stop(); runtime.shutdown() }
        let rounds = self.rounds, tcp = proto == "tcp"
        let result = runtime.spawn { () -> Result<Int, SocketError> in
            Result { () throws(SocketError) -> Int in
                var out = [UInt8](repeating: 0xA5, count: Self.message)
                var buffer = [UInt8](repeating: 0, count: 4096)
                let destination = SocketAddress(IPv4Address(10, 96, 0, 2), 7)
                if tcp {
                    var configuration = TCPConfiguration()
                    configuration.noDelay = true
                    let listener = try TCPListener(interface: server, port: 7, configuration: configuration)
                    UThread.spawn {
                        guard let c = try? listener.accept() else { return }
                        var b = [UInt8](repeating: 0, count: 4096)
                        while let n = try? c.read(into: &b), n > 0 {
                            guard (try? b.withUnsafeBytes({ try c.write(UnsafeRawBufferPointer(rebasing: $0[..<n])) })) != nil else { break }
                        }
                        c.close()
                    }
                    let s = try TCPSocket.connect(interface: client, to: destination, configuration: configuration, timeout: .seconds(10))
                    s.receiveTimeout = .seconds(10)
                    var done = 0
                    for _ in 0..<rounds {
                        _ = try s.write(out)
                        var got = 0
                        while got < Self.message {
                            let n = try s.read(into: &buffer)
                            if n == 0 { throw SocketError.connectionReset }
                            got += n
                        }
                        done += 1
                    }
                    s.close()
                    listener.close()
                    out[0] = 0
                    return done
                } else {
                    let echo = try UDPSocket(interface: server, port: 7)
                    UThread.spawn {
                        var b = [UInt8](repeating: 0, count: 2048)
                        while let (n, from) = try? echo.receiveFrom(into: &b) { _ = try? echo.send(b[..<n], to: from) }
                    }
                    let s = UDPSocket(interface: client)
                    try s.connect(to: destination)
                    s.receiveTimeout = .seconds(10)
                    var done = 0
                    for _ in 0..<rounds {
                        _ = try s.send(out)
                        if try s.receive(into: &buffer) == Self.message { done += 1 }
                    }
                    echo.close()
                    s.close()
                    return done
                }
            }
        }.join()
        let done = try result.get()
        print("\(proto): \(done) round trips of \(Self.message) bytes")
    }
}
