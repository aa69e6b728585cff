// TcpSuite.swift: `junction-bench tcp`: two processes, NetStack TCP on both ends of
// NICQueues' shm link, beside two processes over Linux TCP on 127.0.0.1, in the same run:
// 64-byte request/response latency (median, p99), requests per second over 1 and 64
// connections, one-way bulk throughput, and connections per second (connect, one 64-byte
// exchange, close). The servers are this binary in a child process, pinned to the second
// CPU; the clients run on the first. As root, also NetStack on a TAP (offloads on)
// against Linux TCP on the host side, beside Linux TCP over a veth pair between two
// network namespaces (TcpTapBench.swift). Linux's side uses epoll on one thread on each end,
// blocking, and again busy-polling (reads with MSG_DONTWAIT, epoll with timeout 0: what
// our kthreads do before they sleep); ours one kthread with a uthread per connection on
// each end.
import ArgumentParser
import CJunction
import Dispatch
import Foundation
import NetStack
import NICQueues
import Synchronization
import UThreads

struct TcpSuite: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcp",
        abstract: "TCP latency, request rate, bulk throughput and connection rate: NetStack over the shm link versus Linux TCP on loopback.")
    @OptionGroup var options: SuiteOptions

    @Option(help: .hidden) var serveShm: String?
    @Flag(help: .hidden) var serveKernel = false
    @Flag(help: .hidden) var spin = false
    @Option(help: .hidden) var cpu: Int = 0
    @Option(help: .hidden) var bindAddress: String = "127.0.0.1"
    @Option(help: .hidden) var sendTo: String?
    @Option(help: .hidden) var bytes: Int = 0
    @Option(help: "Congestion control of our stack: newreno or cubic.")
    var congestion: String = "cubic"
    @Option(help: "MTU of the shm link (Linux's loopback has 65536; 9000 is a jumbo-frame Ethernet).")
    var mtu: Int = 9000

    static let message = 64
    static let manyConnections = 64
    /// The echo port and the sink port (reads to end of stream, then answers one byte).
    static let echoPort: UInt16 = 7, sinkPort: UInt16 = 9
    static let linuxPeer = "Linux TCP on 127.0.0.1 (epoll)"
    static let spinningPeer = "Linux TCP on 127.0.0.1, busy-polling (MSG_DONTWAIT, epoll timeout 0)"
    static let clientCPU = 0
    static var serverCPU: Int { Int(cj_allowed_cpu_count()) > 1 ? 1 : 0 }

    /// Repetitions of each figure: the latency samples are cut into this many runs, the
    /// request rates and the bulk transfer run this many times.
    static let repetitions = 5

    struct Figures {
        var median = Spread(single: 0), p99 = Spread(single: 0), rps1 = Spread(single: 0), rps64 = Spread(single: 0),
            bulk = Spread(single: 0), cps = Spread(single: 0)
        func best(_ o: Figures) -> Figures {
            func low(_ a: Spread, _ b: Spread) -> Spread { a.median <= b.median ? a : b }
            func high(_ a: Spread, _ b: Spread) -> Spread { a.median >= b.median ? a : b }
            return Figures(median: low(median, o.median), p99: low(p99, o.p99), rps1: high(rps1, o.rps1), rps64: high(rps64, o.rps64),
                           bulk: high(bulk, o.bulk), cps: high(cps, o.cps))
        }
    }

    struct Counts {
        var rounds: Int, requests: Int, bulkBytes: Int, connections: Int
    }

    func run() throws {
        if let path = serveShm { try Self.serveOverShm(path, cpu: cpu, congestion: congestion, mtu: mtu) }
        if serveKernel { Self.serveKernel(cpu: cpu, spinning: spin, bindAddress: bindAddress) }
        if let to = sendTo { Self.sendBulk(to: to, bytes: bytes, cpu: cpu) }
        let o = options
        let names = [
            "TCP 64 B request/response, median, NetStack both ends over shm",
            "TCP 64 B request/response, p99, NetStack both ends over shm",
            "TCP requests/s, 1 connection, NetStack both ends over shm",
            "TCP requests/s, 64 connections, NetStack both ends over shm",
            "TCP bulk throughput one way, NetStack both ends over shm",
            "TCP connections/s (connect, 64 B exchange, close), NetStack over shm",
        ] + Self.tapNames
        guard names.contains(where: { o.wants($0) }) else { o.emit(SuiteReport(suite: "tcp", results: [])); return }
        // Sections not asked for (--only) still run, with token counts.
        let rounds = o.wants(names[0]) || o.wants(names[1]) ? o.iterations(20_000) : 1
        let requests = o.wants(names[2]) || o.wants(names[3]) ? o.iterations(200_000) : Self.manyConnections
        let counts = Counts(rounds: rounds, requests: requests,
                            bulkBytes: o.wants(names[4]) ? o.iterations(1 << 30) : 1 << 16,
                            connections: o.wants(names[5]) ? o.iterations(5_000) : 1)
        // As root: the TAP cases first (they need no shm child).
        let tapWanted = Self.tapNames.contains(where: { o.wants($0) })
        var results: [BenchResult] = []
        if tapWanted && geteuid() == 0 {
            let tapCounts = Counts(rounds: o.iterations(20_000), requests: Self.manyConnections, bulkBytes: o.iterations(1 << 30), connections: 1)
            let veth = try vethFigures(tapCounts)
            let tap = try tapFigures(tapCounts)
            let peers = { (f: KeyPath<TapFigures, Spread>) in [Self.vethPeer: veth[keyPath: f]] }
            for (i, name) in Self.tapNames.enumerated() where o.wants(name) {
                switch i {
                case 0: results.append(BenchResult(name: name, unit: "Gbit/s", spread: tap.inbound, peers: peers(\.inbound), lowerIsBetter: false))
                case 1: results.append(BenchResult(name: name, unit: "Gbit/s", spread: tap.outbound, peers: peers(\.outbound), lowerIsBetter: false))
                default: results.append(BenchResult(name: name, unit: "µs", spread: tap.rr, peers: peers(\.rr), lowerIsBetter: true))
                }
            }
        } else if tapWanted {
            FileHandle.standardError.write("junction-bench tcp: the TAP cases need root; skipped\n".data(using: .utf8)!)
        }
        if !names[0..<6].contains(where: { o.wants($0) }) { o.emit(SuiteReport(suite: "tcp", results: results)); return }
        var linux = try kernelFigures(counts, spinning: false)
        var spinning = try kernelFigures(counts, spinning: true)
        let ours = try shmFigures(counts)
        // A second Linux run after ours (the machine drifts); Linux keeps its best.
        linux = linux.best(try kernelFigures(counts, spinning: false))
        spinning = spinning.best(try kernelFigures(counts, spinning: true))
        func add(_ i: Int, _ unit: String, _ f: KeyPath<Figures, Spread>, lowerIsBetter: Bool) {
            guard o.wants(names[i]) else { return }
            results.append(BenchResult(name: names[i], unit: unit, spread: ours[keyPath: f], peers: [Self.linuxPeer: linux[keyPath: f], Self.spinningPeer: spinning[keyPath: f]],
                                       lowerIsBetter: lowerIsBetter))
        }
        add(0, "µs", \.median, lowerIsBetter: true)
        add(1, "µs", \.p99, lowerIsBetter: true)
        add(2, "kreq/s", \.rps1, lowerIsBetter: false)
        add(3, "kreq/s", \.rps64, lowerIsBetter: false)
        add(4, "Gbit/s", \.bulk, lowerIsBetter: false)
        add(5, "kconn/s", \.cps, lowerIsBetter: false)
        o.emit(SuiteReport(suite: "tcp", results: tcpOrder(results)))
    }

    /// The shm figures first, then the TAP ones, as the names list them.
    func tcpOrder(_ r: [BenchResult]) -> [BenchResult] {
        r.filter { !Self.tapNames.contains($0.name) } + r.filter { Self.tapNames.contains($0.name) }
    }

    /// Microseconds: the median and the p99 of each of `repetitions` runs of samples.
    static func latency(_ samples: [Double]) -> (median: Spread, p99: Spread) {
        latencySpreads(samples, runs: repetitions)
    }

    /// Requests per second over `repetitions` runs of `requests / repetitions` each.
    static func rate<E: Error>(_ requests: Int, _ body: (Int) throws(E) -> Void) throws(E) -> Spread {
        let per = max(1, requests / repetitions)
        var rates: [Double] = []
        for _ in 0..<repetitions {
            let t0 = nowNanos()
            try body(per)
            rates.append(Double(per) / ((nowNanos() - t0) / 1e9) / 1000)
        }
        return Spread(rates)
    }

    // MARK: NetStack over shm

    /// The shm link's geometry for `mtu`: buffers big enough for one frame.
    static func link(mtu: Int) -> SharedMemoryConfiguration {
        var c = SharedMemoryConfiguration()
        c.mtu = mtu
        c.bufferSize = mtu <= 1500 ? 2048 : 16384
        c.buffersPerSide = mtu <= 1500 ? 8192 : 4096
        return c
    }

    func shmFigures(_ counts: Counts) throws -> Figures {
        let path = "/dev/shm/junction-bench-tcp-\(getpid())"
        defer { unlink(path) }
        let child = try Child(["tcp", "--serve-shm", path, "--cpu", "\(Self.serverCPU)", "--congestion", congestion, "--mtu", "\(mtu)"])
        defer { child.kill() }
        let device = try SharedMemoryDevice(path: path, configuration: Self.link(mtu: mtu))
        let config = InterfaceConfiguration(mac: NetStack.MACAddress(rawValue: device.info.mac.raw), address: try IPv4CIDR(parsing: "10.97.0.1/24"), mtu: mtu)
        let interface: NetworkInterface
        if let p = getenv("JUNCTION_BENCH_PCAP") {   // headers of every frame, for diagnosis
            interface = try NetworkInterface(device: try PcapCapture(wrapping: device, path: String(cString: p), snapLength: 96), configuration: config)
        } else {
            interface = try NetworkInterface(device: device, configuration: config)
        }
        _ = try child.waitFor("ready")
        var rc = RuntimeConfiguration(kthreads: 1)
        let client = Self.clientCPU
        rc.onKThreadStart = { _ in _ = cj_pin_to_nth_allowed_cpu(Int32(client)) }
        let runtime = try Runtime(rc)
        try interface.start(on: runtime)
        defer { interface.stop(); runtime.shutdown() }
        var configuration = TCPConfiguration()
        configuration.noDelay = true
        configuration.congestionControl = CongestionControlAlgorithm(rawValue: congestion) ?? .cubic
        let tcp = configuration
        let server = IPv4Address(10, 97, 0, 2)
        let echo = SocketAddress(server, Self.echoPort), sink = SocketAddress(server, Self.sinkPort)
        let result = runtime.spawn { () -> Result<Figures, SocketError> in
            Result { () throws(SocketError) -> Figures in
                var f = Figures()
                // Latency and 1-connection rate.
                let socket = try TCPSocket.connect(interface: interface, to: echo, configuration: tcp, timeout: .seconds(10))
                socket.receiveTimeout = .seconds(10)
                var out = [UInt8](repeating: 0xA5, count: Self.message)
                var buffer = [UInt8](repeating: 0, count: Self.message)
                func exchange(_ s: TCPSocket) throws(SocketError) {
                    _ = try out.withUnsafeBytes { b in Result { () throws(SocketError) in try s.write(b) } }.get()
                    var got = 0
                    while got < Self.message {
                        let n = try buffer.withUnsafeMutableBytes { b in
                            Result { () throws(SocketError) in try s.read(into: UnsafeMutableRawBufferPointer(rebasing: b[got...])) }
                        }.get()
                        if n == 0 { throw SocketError.connectionReset }
                        got += n
                    }
                }
                for _ in 0..<1000 { try exchange(socket) }
                var samples = [Double](repeating: 0, count: counts.rounds)
                for i in 0..<counts.rounds {
                    let t0 = nowNanos()
                    try exchange(socket)
                    samples[i] = nowNanos() - t0
                }
                (f.median, f.p99) = Self.latency(samples)
                f.rps1 = try Self.rate(counts.requests) { (n) throws(SocketError) in for _ in 0..<n { try exchange(socket) } }
                socket.close()
                _ = out.count

                // 64 connections, one request outstanding on each.
                var sockets: [TCPSocket] = []
                for _ in 0..<Self.manyConnections {
                    let s = try TCPSocket.connect(interface: interface, to: echo, configuration: tcp, timeout: .seconds(10))
                    s.receiveTimeout = .seconds(10)
                    sockets.append(s)
                }
                let perConnection = max(1, counts.requests / Self.manyConnections / Self.repetitions)
                let failures = Atomic<Int>(0)
                var rates: [Double] = []
                for _ in 0..<Self.repetitions {
                let t0 = nowNanos()
                let workers = sockets.map { s in
                    UThread.spawn {
                        var o = [UInt8](repeating: 0x5A, count: Self.message), b = [UInt8](repeating: 0, count: Self.message)
                        for _ in 0..<perConnection {
                            guard (try? o.withUnsafeBytes({ try s.write($0) })) == Self.message else { failures.add(1, ordering: .relaxed); return }
                            var got = 0
                            while got < Self.message {
                                guard let n = try? b.withUnsafeMutableBytes({ try s.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[got...])) }), n > 0 else {
                                    failures.add(1, ordering: .relaxed); return
                                }
                                got += n
                            }
                        }
                        _ = o.count
                    }
                }
                for w in workers { w.join() }
                rates.append(Double(perConnection * Self.manyConnections) / ((nowNanos() - t0) / 1e9) / 1000)
                }
                f.rps64 = Spread(rates)
                for s in sockets { s.close() }
                if failures.load(ordering: .relaxed) > 0 { throw SocketError.connectionReset }

                // Bulk: write, shut down, wait for the sink's one-byte answer; a new
                // connection each repetition.
                var bulkRates: [Double] = []
                for _ in 0..<Self.repetitions {
                var bulkConfiguration = tcp
                bulkConfiguration.noDelay = false
                let bulk = try TCPSocket.connect(interface: interface, to: sink, configuration: bulkConfiguration, timeout: .seconds(10))
                bulk.receiveTimeout = .seconds(60)
                let chunk = [UInt8](repeating: 0x42, count: 64 * 1024)
                let bulkDone = Atomic<Bool>(false)
                if getenv("JUNCTION_BENCH_VERBOSE") != nil {
                    UThread.spawn {
                        while !bulkDone.load(ordering: .relaxed) {
                            UThread.sleep(for: .milliseconds(500))
                            let i = bulk.info
                            FileHandle.standardError.write("bulk: \(i.state) inflight \(i.bytesInFlight) peerWindow \(i.peerWindow) cwnd \(i.congestionWindow) rto \(i.rto) sent \(i.statistics.bytesSent) segs \(i.statistics.segmentsSent) acks \(i.statistics.segmentsReceived)\n".data(using: .utf8)!)
                        }
                    }
                }
                defer { bulkDone.store(true, ordering: .relaxed) }
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
                bulkRates.append(Double(counts.bulkBytes) * 8 / (nowNanos() - t0))
                if getenv("JUNCTION_BENCH_VERBOSE") != nil {
                    FileHandle.standardError.write("bulk sender: \(bulk.info)\ninterface: \(interface.statistics)\n".data(using: .utf8)!)
                }
                bulk.close()
                }
                f.bulk = Spread(bulkRates)

                // Connections per second.
                let t0 = nowNanos()
                for _ in 0..<counts.connections {
                    let s = try TCPSocket.connect(interface: interface, to: echo, configuration: tcp, timeout: .seconds(10))
                    s.receiveTimeout = .seconds(10)
                    try exchange(s)
                    s.close()
                }
                f.cps = Spread(single: Double(counts.connections) / ((nowNanos() - t0) / 1e9) / 1000)
                return f
            }
        }.join()
        return try result.get()
    }

    /// The child: NetStack on `shm:PATH` at 10.97.0.2: an echo listener on port 7 and a
    /// sink on port 9, a uthread per connection, until killed.
    static func serveOverShm(_ path: String, cpu: Int, congestion: String, mtu: Int) throws -> Never {
        _ = cj_die_with_parent()
        let device = try SharedMemoryDevice(path: path, configuration: link(mtu: mtu))
        let config = InterfaceConfiguration(mac: NetStack.MACAddress(rawValue: device.info.mac.raw), address: try IPv4CIDR(parsing: "10.97.0.2/24"), mtu: mtu)
        let interface = try NetworkInterface(device: device, configuration: config)
        var rc = RuntimeConfiguration(kthreads: 1)
        rc.onKThreadStart = { _ in _ = cj_pin_to_nth_allowed_cpu(Int32(cpu)) }
        let runtime = try Runtime(rc)
        try interface.start(on: runtime)
        var tcp = TCPConfiguration()
        tcp.noDelay = true
        tcp.congestionControl = CongestionControlAlgorithm(rawValue: congestion) ?? .cubic
        let echo = try TCPListener(interface: interface, port: echoPort, backlog: 1024, configuration: tcp)
        let sink = try TCPListener(interface: interface, port: sinkPort, backlog: 16, configuration: tcp)
        runtime.spawn {
            while let c = try? echo.accept() {
                UThread.spawn {
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    while let n = try? buffer.withUnsafeMutableBytes({ try c.read(into: $0) }), n > 0 {
                        guard (try? buffer.withUnsafeBytes({ try c.write(UnsafeRawBufferPointer(rebasing: $0[..<n])) })) != nil else { break }
                    }
                    c.close()
                }
            }
        }
        runtime.spawn {
            while let c = try? sink.accept() {
                UThread.spawn {
                    var buffer = [UInt8](repeating: 0, count: 256 * 1024)
                    let done = Atomic<Bool>(false)
                    if getenv("JUNCTION_BENCH_VERBOSE") != nil {
                        UThread.spawn {
                            while !done.load(ordering: .relaxed) {
                                UThread.sleep(for: .milliseconds(500))
                                let i = c.info
                                FileHandle.standardError.write("sink: \(i.state) readable \(c.readableBytes) received \(i.statistics.bytesReceived) segs \(i.statistics.segmentsReceived) acks-sent \(i.statistics.segmentsSent) dropped \(i.statistics.droppedSegments) updates \(i.statistics.windowUpdates) tcp \(interface.statistics.tcp) ipv4-outDiscards \(interface.statistics.ipv4.outDiscards)\n".data(using: .utf8)!)
                            }
                        }
                    }
                    defer { done.store(true, ordering: .relaxed) }
                    while let n = try? buffer.withUnsafeMutableBytes({ try c.read(into: $0) }), n > 0 {}
                    _ = try? c.write([UInt8(1)])
                    c.close()
                }
            }
        }
        print("ready")
        fflush(nil)
        while true { pause() }
    }

    // MARK: Linux TCP on loopback

    func kernelFigures(_ counts: Counts, spinning: Bool) throws -> Figures {
        let child = try Child(["tcp", "--serve-kernel", "--cpu", "\(Self.serverCPU)"] + (spinning ? ["--spin"] : []))
        defer { child.kill() }
        let line = try child.waitFor("port ")
        guard let port = UInt16(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) else { throw BenchFailure("no port: \(line)") }
        return try onPinnedThread(Self.clientCPU) { try Self.kernelClient(echoPort: port, sinkPort: port + 1, counts, spinning: spinning) }
    }

    static func kernelConnect(_ port: UInt16, address: UInt32 = 0x7F00_0001) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchFailure("socket: \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = address.bigEndian
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { close(fd); throw BenchFailure("connect: \(errno)") }
        return fd
    }

    /// Writes `n` bytes and reads `n` back (blocking).
    static func kernelExchange(_ fd: Int32, _ out: UnsafeRawPointer, _ into: UnsafeMutableRawPointer, _ n: Int, spinning: Bool = false) throws {
        guard write(fd, out, n) == n else { throw BenchFailure("write: \(errno)") }
        var got = 0
        while got < n {
            let k = recv(fd, into + got, n - got, spinning ? Int32(MSG_DONTWAIT) : 0)
            if k < 0 && spinning && errno == EAGAIN { continue }
            guard k > 0 else { throw BenchFailure("read: \(k) \(errno)") }
            got += k
        }
    }

    static func kernelClient(echoPort: UInt16, sinkPort: UInt16, _ counts: Counts, spinning: Bool,
                             address: UInt32 = 0x7F00_0001) throws -> Figures {
        func kernelConnect(_ port: UInt16) throws -> Int32 { try Self.kernelConnect(port, address: address) }
        var f = Figures()
        let out = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 64)
        let into = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 64)
        defer { out.deallocate(); into.deallocate() }
        out.initializeMemory(as: UInt8.self, repeating: 0xA5, count: 1 << 16)
        let fd = try kernelConnect(echoPort)
        for _ in 0..<1000 { try kernelExchange(fd, out, into, message, spinning: spinning) }
        var samples = [Double](repeating: 0, count: counts.rounds)
        for i in 0..<counts.rounds {
            let t0 = nowNanos()
            try kernelExchange(fd, out, into, message, spinning: spinning)
            samples[i] = nowNanos() - t0
        }
        (f.median, f.p99) = latency(samples)
        f.rps1 = try rate(counts.requests) { (n) throws in for _ in 0..<n { try kernelExchange(fd, out, into, message, spinning: spinning) } }
        close(fd)

        // 64 connections on one epoll: each one request outstanding.
        let ep = epoll_create1(0)
        defer { close(ep) }
        var fds: [Int32] = []
        for i in 0..<manyConnections {
            let c = try kernelConnect(echoPort)
            _ = fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK)
            var ev = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: UInt64(i)))
            epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev)
            fds.append(c)
        }
        let perConnection = max(1, counts.requests / manyConnections / repetitions)
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        var rates: [Double] = []
        for _ in 0..<repetitions {
        var done = [Int](repeating: 0, count: manyConnections), got = [Int](repeating: 0, count: manyConnections)
        var finished = 0
        let t0 = nowNanos()
        for c in fds { _ = write(c, out, message) }
        while finished < manyConnections {
            let n = epoll_wait(ep, &events, 64, spinning ? 0 : 10_000)
            if n == 0 && spinning { continue }
            guard n > 0 else { throw BenchFailure("epoll_wait: \(n) \(errno)") }
            for e in events[0..<Int(n)] {
                let i = Int(e.data.u64), c = fds[i]
                let k = read(c, into, 4096)
                if k <= 0 { continue }
                got[i] += k
                while got[i] >= message {
                    got[i] -= message
                    done[i] += 1
                    if done[i] == perConnection { finished += 1 } else { _ = write(c, out, message) }
                }
            }
        }
        rates.append(Double(perConnection * manyConnections) / ((nowNanos() - t0) / 1e9) / 1000)
        }
        f.rps64 = Spread(rates)
        for c in fds { close(c) }

        // Bulk to the sink, a new connection each repetition.
        var bulkRates: [Double] = []
        for _ in 0..<repetitions {
        let bulk = try kernelConnect(sinkPort)
        var zero: Int32 = 0
        setsockopt(bulk, Int32(IPPROTO_TCP), TCP_NODELAY, &zero, socklen_t(MemoryLayout<Int32>.size))
        let t0 = nowNanos()
        var left = counts.bulkBytes
        while left > 0 {
            let k = write(bulk, out, min(left, 1 << 16))
            guard k > 0 else { throw BenchFailure("bulk write: \(errno)") }
            left -= k
        }
        shutdown(bulk, Int32(SHUT_WR))
        guard read(bulk, into, 1) == 1 else { throw BenchFailure("sink did not answer") }
        bulkRates.append(Double(counts.bulkBytes) * 8 / (nowNanos() - t0))
        close(bulk)
        }
        f.bulk = Spread(bulkRates)

        let t0 = nowNanos()
        for _ in 0..<counts.connections {
            let c = try kernelConnect(echoPort)
            try kernelExchange(c, out, into, message, spinning: spinning)
            close(c)
        }
        f.cps = Spread(single: Double(counts.connections) / ((nowNanos() - t0) / 1e9) / 1000)
        return f
    }

    /// The child: an epoll echo server on 127.0.0.1:PORT and a sink on PORT+1 (reads to end
    /// of stream, answers one byte), one thread, until killed.
    static func serveKernel(cpu: Int, spinning: Bool, bindAddress address: String = "127.0.0.1") -> Never {
        _ = cj_die_with_parent()
        _ = cj_pin_to_nth_allowed_cpu(Int32(cpu))
        let host = ipv4(address) ?? 0x7F00_0001
        func listener(_ port: UInt16) -> Int32? {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = port.bigEndian
            addr.sin_addr.s_addr = host.bigEndian
            let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if ok != 0 { close(fd); return nil }
            listen(fd, 4096)
            return fd
        }
        // Two adjacent free ports.
        var echo: Int32 = -1, sink: Int32 = -1, port: UInt16 = 0
        for p in stride(from: UInt16(20000 + getpid() % 20000), to: 60000, by: 2) {
            guard let e = listener(p) else { continue }
            guard let s = listener(p + 1) else { close(e); continue }
            echo = e; sink = s; port = p
            break
        }
        print("port \(port)")
        fflush(nil)
        let ep = epoll_create1(0)
        // data: fd in the low 32 bits, kind in the high (0 listener echo, 1 listener sink, 2 echo conn, 3 sink conn).
        func add(_ fd: Int32, _ kind: UInt64) {
            var ev = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: kind << 32 | UInt64(UInt32(bitPattern: fd))))
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)
        }
        add(echo, 0)
        add(sink, 1)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 18, alignment: 64)
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        while true {
            let n = epoll_wait(ep, &events, 256, spinning ? 0 : -1)
            if n <= 0 { continue }
            for e in events[0..<Int(n)] {
                let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: e.data.u64)), kind = e.data.u64 >> 32
                switch kind {
                case 0, 1:
                    while true {
                        let c = accept(fd, nil, nil)
                        if c < 0 { break }
                        _ = fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK)
                        var one: Int32 = 1
                        setsockopt(c, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                        add(c, kind + 2)
                    }
                case 2:
                    let k = read(fd, buffer, 1 << 18)
                    if k <= 0 { if k == 0 || errno != EAGAIN { close(fd) }; continue }
                    var sent = 0
                    while sent < k {   // 64-byte messages: the socket buffer never fills
                        let w = write(fd, buffer + sent, k - sent)
                        if w <= 0 { break }
                        sent += w
                    }
                default:
                    while true {
                        let k = read(fd, buffer, 1 << 18)
                        if k > 0 { continue }
                        if k == 0 { var one: UInt8 = 1; _ = write(fd, &one, 1); close(fd) }
                        break
                    }
                }
            }
        }
    }
}
