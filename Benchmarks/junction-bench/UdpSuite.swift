// UdpSuite.swift: `junction-bench udp`: UDP echo between two processes, round-trip
// latency (median, p99) and messages per second with 32 in flight: NetStack on both ends
// of NICQueues' shm link, beside Linux UDP on 127.0.0.1 (blocking, and busy-polling),
// all measured in the same run. The echo servers are this binary in a child process.
import ArgumentParser
import CJunction
import Dispatch
import Foundation
import NetStack
import NICQueues
import Synchronization
import UThreads

struct UdpSuite: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "udp",
        abstract: "UDP echo round trip and rate: NetStack over the shm link versus Linux UDP on loopback.")
    @OptionGroup var options: SuiteOptions

    @Option(help: .hidden) var serveShm: String?
    @Option(help: .hidden) var serveKernel: String?
    @Option(help: .hidden) var cpu: Int = 0
    @Option(help: .hidden) var allocationProbe: Int?

    static let payload = 32
    static let window = 32
    static let blockingPeer = "Linux UDP on 127.0.0.1, blocking recv"
    static let spinningPeer = "Linux UDP on 127.0.0.1, busy-polling recv (MSG_DONTWAIT)"
    /// Client on the first allowed CPU, server on the second (when there is one); the
    /// main thread stays unpinned so the children can pin themselves elsewhere.
    static let clientCPU = 0
    static var serverCPU: Int { Int(cj_allowed_cpu_count()) > 1 ? 1 : 0 }

    func run() throws {
        if let n = allocationProbe { try Self.allocationProbe(n) }
        if let path = serveShm { try Self.serveOverShm(path, cpu: cpu) }
        if let mode = serveKernel { Self.serveKernel(spinning: mode == "spin", cpu: cpu) }
        let o = options
        let rounds = o.iterations(20_000), messages = o.iterations(200_000)
        let latencyNames = ["UDP echo round trip, median, NetStack both ends over shm", "UDP echo round trip, p99, NetStack both ends over shm"]
        let rateName = "UDP echo rate, \(Self.window) in flight, NetStack both ends over shm"
        guard (latencyNames + [rateName]).contains(where: { o.wants($0) }) else { o.emit(SuiteReport(suite: "udp", results: [])); return }

        var blocking = try kernelFigures(spinning: false, rounds: rounds, messages: messages)
        var spinning = try kernelFigures(spinning: true, rounds: rounds, messages: messages)
        let ours = try shmFigures(rounds: rounds, messages: messages)
        // A second kernel run after ours: the machine's state drifts; keep each peer's best.
        let blocking2 = try kernelFigures(spinning: false, rounds: rounds, messages: messages)
        let spinning2 = try kernelFigures(spinning: true, rounds: rounds, messages: messages)
        blocking = blocking.best(blocking2)
        spinning = spinning.best(spinning2)

        var results: [BenchResult] = []
        func peers(_ f: (Figures) -> Spread) -> [String: Spread] { [Self.blockingPeer: f(blocking), Self.spinningPeer: f(spinning)] }
        if o.wants(latencyNames[0]) { results.append(BenchResult(name: latencyNames[0], unit: "µs", spread: ours.median, peers: peers(\.median))) }
        if o.wants(latencyNames[1]) { results.append(BenchResult(name: latencyNames[1], unit: "µs", spread: ours.p99, peers: peers(\.p99))) }
        if o.wants(rateName) {
            results.append(BenchResult(name: rateName, unit: "kmsg/s", spread: ours.rate, peers: peers(\.rate), lowerIsBetter: false))
        }
        o.emit(SuiteReport(suite: "udp", results: results))
    }

    /// The latency samples are cut into `repetitions` runs (a median and a p99 each); the
    /// rate is measured `repetitions` times.
    static let repetitions = 5

    struct Figures {
        var median: Spread, p99: Spread, rate: Spread
        func best(_ o: Figures) -> Figures {
            Figures(median: median.median <= o.median.median ? median : o.median, p99: p99.median <= o.p99.median ? p99 : o.p99,
                    rate: rate.median >= o.rate.median ? rate : o.rate)
        }
        /// Microseconds: the median and the p99 of each run of samples.
        static func from(_ samples: [Double], rates: [Double]) -> Figures {
            let (median, p99) = latencySpreads(samples, runs: repetitions)
            return Figures(median: median, p99: p99, rate: Spread(rates))
        }
    }

    // MARK: NetStack over shm

    func shmFigures(rounds: Int, messages: Int) throws -> Figures {
        let path = "/dev/shm/junction-bench-udp-\(getpid())"
        defer { unlink(path) }
        let child = try Child(["udp", "--serve-shm", path, "--cpu", "\(Self.serverCPU)"])
        defer { child.kill() }
        let device = try SharedMemoryDevice(path: path)
        let config = InterfaceConfiguration(mac: NetStack.MACAddress(rawValue: device.info.mac.raw), address: try IPv4CIDR(parsing: "10.99.0.1/24"))
        let interface = try NetworkInterface(device: device, configuration: config)
        _ = try child.waitFor("ready")
        var rc = RuntimeConfiguration(kthreads: 1)
        let client = Self.clientCPU
        rc.onKThreadStart = { _ in _ = cj_pin_to_nth_allowed_cpu(Int32(client)) }
        let runtime = try Runtime(rc)
        try interface.start(on: runtime)
        defer { interface.stop(); runtime.shutdown() }
        let result = runtime.spawn { () -> Result<Figures, SocketError> in
            Result { () throws(SocketError) -> Figures in
                let socket = UDPSocket(interface: interface)
                try socket.connect(to: SocketAddress(IPv4Address(10, 99, 0, 2), 7))
                socket.receiveTimeout = .seconds(5)
                let message = [UInt8](repeating: 0xA5, count: Self.payload)
                var buffer = [UInt8](repeating: 0, count: 2048)
                for _ in 0..<1000 { try socket.send(message); _ = try socket.receive(into: &buffer) }   // ARP, warm caches
                var samples = [Double](repeating: 0, count: rounds)
                for i in 0..<rounds {
                    let t0 = nowNanos()
                    try socket.send(message)
                    _ = try socket.receive(into: &buffer)
                    samples[i] = nowNanos() - t0
                }
                var rates: [Double] = []
                let perRun = max(Self.window, messages / Self.repetitions)
                for _ in 0..<Self.repetitions {
                    let t0 = nowNanos()
                    for _ in 0..<Self.window { try socket.send(message) }
                    for i in 0..<perRun {
                        _ = try socket.receive(into: &buffer)
                        if i + Self.window < perRun { try socket.send(message) }
                    }
                    rates.append(Double(perRun) / ((nowNanos() - t0) / 1e9) / 1000)
                }
                return Figures.from(samples, rates: rates)
            }
        }.join()
        return try result.get()
    }

    /// The child: NetStack on `shm:PATH` at 10.99.0.2, echoing UDP port 7 until killed.
    static func serveOverShm(_ path: String, cpu: Int) throws -> Never {
        _ = cj_die_with_parent()
        let device = try SharedMemoryDevice(path: path)
        let config = InterfaceConfiguration(mac: NetStack.MACAddress(rawValue: device.info.mac.raw), address: try IPv4CIDR(parsing: "10.99.0.2/24"))
        let interface = try NetworkInterface(device: device, configuration: config)
        var rc = RuntimeConfiguration(kthreads: 1)
        rc.onKThreadStart = { _ in _ = cj_pin_to_nth_allowed_cpu(Int32(cpu)) }
        let runtime = try Runtime(rc)
        try interface.start(on: runtime)
        let socket = try UDPSocket(interface: interface, port: 7)
        runtime.spawn {
            var buffer = [UInt8](repeating: 0, count: 2048)
            while let (n, from) = try? socket.receiveFrom(into: &buffer) { _ = try? socket.send(buffer[..<n], to: from) }
        }
        print("ready")
        fflush(nil)
        while true { pause() }
    }

    // MARK: allocations

    /// `n` UDP round trips between two interfaces over a loopback pair, polled by hand on
    /// one thread (no runtime), for valgrind to count heap allocations: run it with two
    /// values of `n` (Benchmarks/netstack-allocations/measure-interface.sh); the same count
    /// means the per-packet path (socket send, interface output, device, interface input,
    /// socket queue, receive) allocates nothing.
    static func allocationProbe(_ n: Int) throws -> Never {
        let pair = try LoopbackDevice.pair()
        let da = pair.a, db = pair.b
        let clock = ManualClock()
        let ca = InterfaceConfiguration(mac: NetStack.MACAddress(rawValue: da.info.mac.raw), address: try IPv4CIDR(parsing: "10.98.0.1/24"))
        let cb = InterfaceConfiguration(mac: NetStack.MACAddress(rawValue: db.info.mac.raw), address: try IPv4CIDR(parsing: "10.98.0.2/24"))
        let a = try NetworkInterface(device: da, configuration: ca, clock: .manual(clock))
        let b = try NetworkInterface(device: db, configuration: cb, clock: .manual(clock))
        let client = try UDPSocket(interface: a, port: 1000), server = try UDPSocket(interface: b, port: 7)
        client.isNonBlocking = true
        server.isNonBlocking = true
        let message = [UInt8](repeating: 0x5A, count: Self.payload)
        var buffer = [UInt8](repeating: 0, count: 2048)
        let destination = SocketAddress(IPv4Address(10, 98, 0, 2), 7)
        var echoed = 0
        for _ in 0..<(n + 10) {   // 10 more: the first resolves ARP
            try client.send(message, to: destination)
            var reply = 0
            for _ in 0..<8 where reply == 0 {
                b.poll()
                if let (k, from) = try? server.receiveFrom(into: &buffer) { try server.send(buffer[..<k], to: from) }
                a.poll()
                if let k = try? client.receive(into: &buffer) { reply = k }
            }
            if reply == Self.payload { echoed += 1 }
        }
        if echoed != n + 10 { print("echoed \(echoed) of \(n + 10)"); Glibc.exit(1) }   // no output otherwise: it allocates
        Glibc.exit(0)
    }

    // MARK: Linux UDP on loopback

    func kernelFigures(spinning: Bool, rounds: Int, messages: Int) throws -> Figures {
        let child = try Child(["udp", "--serve-kernel", spinning ? "spin" : "block", "--cpu", "\(Self.serverCPU)"])
        defer { child.kill() }
        let line = try child.waitFor("port ")
        guard let port = UInt16(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) else { throw BenchFailure("no port: \(line)") }
        return try onPinnedThread(Self.clientCPU) { try Self.kernelClient(port: port, spinning: spinning, rounds: rounds, messages: messages) }
    }

    static func kernelClient(port: UInt16, spinning: Bool, rounds: Int, messages: Int) throws -> Figures {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw BenchFailure("socket: \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw BenchFailure("connect: \(errno)") }
        var message = [UInt8](repeating: 0xA5, count: Self.payload)
        var buffer = [UInt8](repeating: 0, count: 2048)
        let flags = spinning ? Int32(MSG_DONTWAIT) : 0
        func receive() {
            while recv(fd, &buffer, buffer.count, flags) < 0 {}
        }
        for _ in 0..<1000 { _ = send(fd, &message, message.count, 0); receive() }
        var samples = [Double](repeating: 0, count: rounds)
        for i in 0..<rounds {
            let t0 = nowNanos()
            _ = send(fd, &message, message.count, 0)
            receive()
            samples[i] = nowNanos() - t0
        }
        var rates: [Double] = []
        let perRun = max(Self.window, messages / Self.repetitions)
        for _ in 0..<Self.repetitions {
            let t0 = nowNanos()
            for _ in 0..<Self.window { _ = send(fd, &message, message.count, 0) }
            for i in 0..<perRun {
                receive()
                if i + Self.window < perRun { _ = send(fd, &message, message.count, 0) }
            }
            rates.append(Double(perRun) / ((nowNanos() - t0) / 1e9) / 1000)
        }
        return Figures.from(samples, rates: rates)
    }

    /// The child: a UDP echo server on 127.0.0.1 (port printed), blocking or spinning.
    static func serveKernel(spinning: Bool, cpu: Int) -> Never {
        _ = cj_die_with_parent()
        _ = cj_pin_to_nth_allowed_cpu(Int32(cpu))
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { a in
                _ = bind(fd, a, len)
                _ = getsockname(fd, a, &len)
            }
        }
        print("port \(UInt16(bigEndian: addr.sin_port))")
        fflush(nil)
        var buffer = [UInt8](repeating: 0, count: 2048)
        var from = sockaddr_storage()
        let flags = spinning ? Int32(MSG_DONTWAIT) : 0
        while true {
            var fromLen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = withUnsafeMutablePointer(to: &from) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buffer, buffer.count, flags, $0, &fromLen) }
            }
            if n < 0 { continue }
            _ = withUnsafePointer(to: &from) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, &buffer, n, 0, $0, fromLen) }
            }
        }
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// This binary run again as an echo server; its stdout read line by line.
final class Child {
    let process = Process()
    let out = Pipe()
    var text = ""

    /// - Parameter wrapper: a command that runs this binary (`ip netns exec NS`), or none.
    init(_ args: [String], wrapper: [String] = []) throws {
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        if wrapper.isEmpty {
            process.executableURL = me
            process.arguments = args
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = wrapper + [me.path] + args
        }
        process.standardOutput = out
        try process.run()
    }

    /// The first output line starting with `prefix` (`seconds` at most).
    func waitFor(_ prefix: String, seconds: Double = 10) throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) { return String(line) }
            let data = out.fileHandleForReading.availableData
            if data.isEmpty { if !process.isRunning { break }; usleep(1000); continue }
            text += String(decoding: data, as: UTF8.self)
        }
        throw BenchFailure("the echo server child did not say '\(prefix)': \(text)")
    }

    func kill() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// Runs `body` on a new thread pinned to the `nth` allowed CPU, and waits for it. (The
/// main thread stays unpinned: the echo-server children inherit its mask.)
func onPinnedThread<T>(_ nth: Int, _ body: @escaping @Sendable () throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    let t = Thread {
        _ = cj_pin_to_nth_allowed_cpu(Int32(nth))
        box.result = Result { try body() }
        done.signal()
    }
    t.start()
    done.wait()
    return try box.result!.get()
}

final class ResultBox<T>: @unchecked Sendable { var result: Result<T, Error>? }
