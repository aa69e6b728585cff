// TcpTapBench.swift: `junction-bench tcp`'s TAP cases (root only): NetStack in this
// process on a TAP with its offloads (TSO/GRO, partial checksums), talking to Linux TCP
// on the host side of the interface: bulk both ways and 64-byte request/response; beside
// them Linux TCP between two network namespaces over a veth pair, the same three
// figures. Interfaces, namespaces and the subnets' blackhole routes are removed after.
import CJunction
import Foundation
import NetStack
import NICQueues
import Synchronization
import UThreads

extension TcpSuite {
    static let tapNames = [
        "TCP bulk host→instance over TAP (offloads), NetStack receiving",
        "TCP bulk instance→host over TAP (offloads), NetStack sending",
        "TCP 64 B request/response over TAP, median, NetStack client, Linux echo server",
    ]
    static let vethPeer = "Linux TCP veth↔veth (two netns)"

    struct TapFigures {
        var inbound = Spread(single: 0), outbound = Spread(single: 0), rr = Spread(single: 0)
    }

    /// A subnet octet for this run (10.96.X.0/24 for TAP, 10.95.X.0/24 for veth).
    static var benchOctet: Int { Int(getpid()) % 200 + 20 }

    /// A blackhole route for `subnet`.0/24 while it is in use: nothing for it leaves by
    /// another route if an interface goes away early.
    static func withBlackhole<T>(_ subnet: String, _ body: () throws -> T) throws -> T {
        try shell("ip", "route", "add", "blackhole", "\(subnet).0/24", "metric", "4000")
        defer { _ = try? shell("ip", "route", "del", "blackhole", "\(subnet).0/24", "metric", "4000") }
        return try body()
    }

    /// The host sender's rates (Gbit/s), one per repetition, from `--send-to`.
    static func hostSender(to: String, bytes: Int, wrapper: [String] = []) throws -> Spread {
        let sender = try Child(["tcp", "--send-to", to, "--bytes", "\(bytes)", "--cpu", "\(serverCPU)"], wrapper: wrapper)
        defer { sender.kill() }
        let line = try sender.waitFor("rates ", seconds: 300)
        let rates = line.dropFirst(6).split(separator: " ").compactMap { Double($0) }
        guard rates.count == repetitions else { throw BenchFailure("host sender: \(line)") }
        return Spread(rates)
    }

    func tapFigures(_ counts: Counts) throws -> TapFigures {
        let name = "jbtap\(getpid() % 100_000)"
        let subnet = "10.96.\(Self.benchOctet)"
        return try Self.withBlackhole(subnet) {
            // JUNCTION_BENCH_TAP_OFFLOADS=0: the TAP without its offloads, for comparison.
            var tapConfiguration = TapConfiguration()
            tapConfiguration.offloads = getenv("JUNCTION_BENCH_TAP_OFFLOADS").map { String(cString: $0) != "0" } ?? true
            let tap = try TapDevice(name: name, configuration: tapConfiguration)
            defer { _ = try? shell("ip", "link", "del", name) }
            _ = try? shell("sysctl", "-qw", "net.ipv6.conf.\(name).disable_ipv6=1")
            try shell("ip", "addr", "add", "\(subnet).1/24", "dev", name)
            try shell("ip", "link", "set", name, "up")
            let server = try Child(["tcp", "--serve-kernel", "--bind-address", "\(subnet).1", "--cpu", "\(Self.serverCPU)"])
            defer { server.kill() }
            let line = try server.waitFor("port ")
            guard let port = UInt16(line.dropFirst(5).trimmingCharacters(in: .whitespaces)), port != 0 else { throw BenchFailure("no port: \(line)") }
            let config = InterfaceConfiguration(mac: NetStack.MACAddress(rawValue: tap.info.mac.raw), address: try IPv4CIDR(parsing: "\(subnet).2/24"))
            let interface = try NetworkInterface(device: tap, configuration: config)
            var rc = RuntimeConfiguration(kthreads: 1)
            let client = Self.clientCPU
            rc.onKThreadStart = { _ in _ = cj_pin_to_nth_allowed_cpu(Int32(client)) }
            let runtime = try Runtime(rc)
            try interface.start(on: runtime)
            defer { interface.stop(); runtime.shutdown() }
            // Our sink for the host's bulk: read to the end, answer one byte.
            let sink = try TCPListener(interface: interface, port: Self.sinkPort, backlog: 16)
            runtime.spawn {
                while let c = try? sink.accept() {
                    UThread.spawn {
                        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
                        while let n = try? buffer.withUnsafeMutableBytes({ try c.read(into: $0) }), n > 0 {}
                        _ = try? c.write([UInt8(1)])
                        c.close()
                    }
                }
            }
            let tcp: TCPConfiguration = { var t = TCPConfiguration(); t.noDelay = true; return t }()
            let host = IPv4Address(10, 96, UInt8(Self.benchOctet), 1)
            var f = try runtime.spawn { () -> Result<TapFigures, SocketError> in
                Result { () throws(SocketError) -> TapFigures in
                    var f = TapFigures()
                    let s = try TCPSocket.connect(interface: interface, to: SocketAddress(host, port), configuration: tcp, timeout: .seconds(10))
                    s.receiveTimeout = .seconds(10)
                    let out = [UInt8](repeating: 0xA5, count: Self.message)
                    var buffer = [UInt8](repeating: 0, count: Self.message)
                    func exchange() throws(SocketError) {
                        _ = try s.write(out)
                        var got = 0
                        while got < Self.message {
                            let n = try buffer.withUnsafeMutableBytes { b in
                                Result { () throws(SocketError) in try s.read(into: UnsafeMutableRawBufferPointer(rebasing: b[got...])) }
                            }.get()
                            if n == 0 { throw SocketError.connectionReset }
                            got += n
                        }
                    }
                    for _ in 0..<1000 { try exchange() }
                    var samples = [Double](repeating: 0, count: counts.rounds)
                    for i in 0..<counts.rounds {
                        let t0 = nowNanos()
                        try exchange()
                        samples[i] = nowNanos() - t0
                    }
                    f.rr = Self.latency(samples).median
                    s.close()
                    var bulkConfiguration = tcp
                    bulkConfiguration.noDelay = false
                    let chunk = [UInt8](repeating: 0x42, count: 256 * 1024)
                    var rates: [Double] = []
                    for _ in 0..<Self.repetitions {
                        let bulk = try TCPSocket.connect(interface: interface, to: SocketAddress(host, port + 1),
                                                         configuration: bulkConfiguration, timeout: .seconds(10))
                        bulk.receiveTimeout = .seconds(120)
                        let t0 = nowNanos()
                        var left = counts.bulkBytes
                        while left > 0 {
                            let n = min(left, chunk.count)
                            _ = try chunk.withUnsafeBytes { b in Result { () throws(SocketError) in try bulk.write(UnsafeRawBufferPointer(rebasing: b[..<n])) } }.get()
                            left -= n
                        }
                        try bulk.shutdown(.write)
                        var one = [UInt8](repeating: 0, count: 1)
                        guard try bulk.read(into: &one) == 1 else { throw SocketError.connectionReset }
                        rates.append(Double(counts.bulkBytes) * 8 / (nowNanos() - t0))
                        bulk.close()
                    }
                    f.outbound = Spread(rates)
                    return f
                }
            }.join().get()
            f.inbound = try Self.hostSender(to: "\(subnet).2:\(Self.sinkPort)", bytes: counts.bulkBytes)
            sink.close()
            if getenv("JUNCTION_BENCH_VERBOSE") != nil {
                FileHandle.standardError.write("tap: \(interface.statistics)\n".data(using: .utf8)!)
            }
            return f
        }
    }

    /// Linux on both ends: a veth pair, one end in a namespace of its own (the "instance"),
    /// its echo server and sink there, the client and the host sender's sink in ours.
    func vethFigures(_ counts: Counts) throws -> TapFigures {
        let id = getpid() % 100_000
        let ns = "jbns\(id)", a = "jbva\(id)", b = "jbvb\(id)"
        let subnet = "10.95.\(Self.benchOctet)"
        return try Self.withBlackhole(subnet) {
            try shell("ip", "netns", "add", ns)
            defer { _ = try? shell("ip", "netns", "del", ns) }
            try shell("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            defer { _ = try? shell("ip", "link", "del", a) }
            try shell("ip", "link", "set", b, "netns", ns)
            try shell("ip", "addr", "add", "\(subnet).1/24", "dev", a)
            try shell("ip", "link", "set", a, "up")
            try shell("ip", "netns", "exec", ns, "ip", "addr", "add", "\(subnet).2/24", "dev", b)
            try shell("ip", "netns", "exec", ns, "ip", "link", "set", b, "up")
            try shell("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            let inside = try Child(["tcp", "--serve-kernel", "--bind-address", "\(subnet).2", "--cpu", "\(Self.serverCPU)"], wrapper: ["ip", "netns", "exec", ns])
            defer { inside.kill() }
            let line = try inside.waitFor("port ")
            guard let port = UInt16(line.dropFirst(5).trimmingCharacters(in: .whitespaces)), port != 0 else { throw BenchFailure("no port: \(line)") }
            let address = UInt32(10) << 24 | UInt32(95) << 16 | UInt32(Self.benchOctet) << 8 | 2
            let k = try onPinnedThread(Self.clientCPU) {
                try Self.kernelClient(echoPort: port, sinkPort: port + 1, counts, spinning: false, address: address)
            }
            var f = TapFigures()
            f.rr = k.median
            f.outbound = k.bulk
            // Inbound: a sink here, the sender in the namespace.
            let outside = try Child(["tcp", "--serve-kernel", "--bind-address", "\(subnet).1", "--cpu", "\(Self.clientCPU)"])
            defer { outside.kill() }
            let l2 = try outside.waitFor("port ")
            guard let p2 = UInt16(l2.dropFirst(5).trimmingCharacters(in: .whitespaces)), p2 != 0 else { throw BenchFailure("no port: \(l2)") }
            f.inbound = try Self.hostSender(to: "\(subnet).1:\(p2 + 1)", bytes: counts.bulkBytes, wrapper: ["ip", "netns", "exec", ns])
            return f
        }
    }

    /// The child: connects to ADDR:PORT `repetitions` times, writes `bytes` each time,
    /// shuts down and waits for the sink's byte; prints "rates R1 R2 ..." (Gbit/s).
    static func sendBulk(to: String, bytes: Int, cpu: Int) -> Never {
        _ = cj_die_with_parent()
        _ = cj_pin_to_nth_allowed_cpu(Int32(cpu))
        let parts = to.split(separator: ":")
        guard parts.count == 2, let address = ipv4(String(parts[0])), let port = UInt16(parts[1]) else {
            print("rates bad address \(to)"); fflush(nil); Glibc.exit(2)
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 18, alignment: 64)
        buffer.initializeMemory(as: UInt8.self, repeating: 0x42, count: 1 << 18)
        var rates: [String] = []
        for _ in 0..<repetitions {
            guard let fd = try? kernelConnect(port, address: address) else { print("rates connect failed \(errno)"); fflush(nil); Glibc.exit(1) }
            var zero: Int32 = 0
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &zero, socklen_t(MemoryLayout<Int32>.size))
            let t0 = nowNanos()
            var left = bytes
            while left > 0 {
                let k = write(fd, buffer, min(left, 1 << 18))
                if k <= 0 { print("rates write failed \(errno)"); fflush(nil); Glibc.exit(1) }
                left -= k
            }
            shutdown(fd, Int32(SHUT_WR))
            var one: UInt8 = 0
            guard read(fd, &one, 1) == 1 else { print("rates no answer"); fflush(nil); Glibc.exit(1) }
            rates.append(String(Double(bytes) * 8 / (nowNanos() - t0)))
            close(fd)
        }
        print("rates " + rates.joined(separator: " "))
        fflush(nil)
        while true { pause() }
    }
}

/// An IPv4 address in dotted-quad form as a host-order value.
func ipv4(_ s: String) -> UInt32? {
    let parts = s.split(separator: ".").compactMap { UInt8($0) }
    guard parts.count == 4 else { return nil }
    return parts.reduce(0) { $0 << 8 | UInt32($1) }
}
