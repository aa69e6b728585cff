// main.swift: echo-server, a UDP and TCP echo server on NICQueues + NetStack + UThreads:
//   echo-server --net DEVICE --ip A.B.C.D/NN [--gateway G] [--host-ip H/NN] [--udp PORT]
//               [--tcp PORT [--backlog N] [--tcp-buffer BYTES]] [--kthreads N] [--drop P] [--seed S]
// At least one of --udp and --tcp. TCP: one uthread per connection echoes until the
// peer's FIN, then closes.
// With --net tap:NAME the TAP interface is created and brought up, and --host-ip gives
// the kernel's side its address. Prints "echo-server: ready ..." when it answers, and its
// counters (netstat -s style) when SIGINT or SIGTERM stops it.
import Glibc
import NetStack
import NICQueues
import Synchronization
import UThreads

func fail(_ message: String, status: Int32 = 1) -> Never {
    let text = "echo-server: \(message)\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    exit(status)
}

let usage = "usage: echo-server --net DEVICE --ip A.B.C.D/NN [--gateway G] [--host-ip H/NN] [--udp PORT] [--tcp PORT [--backlog N] [--tcp-buffer BYTES]] [--kthreads N] [--drop P] [--seed S]"

struct Options {
    var net: String?
    var ip: String?
    var gateway: String?
    var hostIP: String?
    var udp: UInt16?
    var tcp: UInt16?
    var backlog = 128
    var tcpBuffer: Int?
    var kthreads = 1
    var drop = 0.0
    var seed: UInt64 = 1
}

func parse(_ args: [String]) -> Options {
    var o = Options()
    var i = 1
    func value(_ flag: String) -> String {
        i += 1
        guard i < args.count else { fail("\(flag) needs a value\n\(usage)", status: 2) }
        return args[i]
    }
    while i < args.count {
        let a = args[i]
        switch a {
        case "--net": o.net = value(a)
        case "--ip": o.ip = value(a)
        case "--gateway": o.gateway = value(a)
        case "--host-ip": o.hostIP = value(a)
        case "--udp":
            let v = value(a)
            guard let p = UInt16(v), p != 0 else { fail("--udp: '\(v)' is not a port from 1 to 65535", status: 2) }
            o.udp = p
        case "--tcp":
            let v = value(a)
            guard let p = UInt16(v), p != 0 else { fail("--tcp: '\(v)' is not a port from 1 to 65535", status: 2) }
            o.tcp = p
        case "--backlog":
            let v = value(a)
            guard let n = Int(v), n >= 1 else { fail("--backlog: '\(v)' is not a positive number", status: 2) }
            o.backlog = n
        case "--tcp-buffer":
            let v = value(a)
            guard let n = Int(v), n >= 1024 else { fail("--tcp-buffer: '\(v)' is not a size of at least 1024 bytes", status: 2) }
            o.tcpBuffer = n
        case "--kthreads":
            let v = value(a)
            guard let n = Int(v), (1...64).contains(n) else { fail("--kthreads: '\(v)' is not a number from 1 to 64", status: 2) }
            o.kthreads = n
        case "--drop":
            let v = value(a)
            guard let p = Double(v), (0...1).contains(p) else { fail("--drop: '\(v)' is not a probability from 0 to 1", status: 2) }
            o.drop = p
        case "--seed":
            let v = value(a)
            guard let s = UInt64(v) else { fail("--seed: '\(v)' is not a number", status: 2) }
            o.seed = s
        case "-h", "--help":
            print(usage)
            exit(0)
        default:
            fail("unknown argument '\(a)'\n\(usage)", status: 2)
        }
        i += 1
    }
    return o
}

/// Runs a command (`ip`), failing with its name and status.
func run(_ argv: [String]) throws(NetStackError) {
    var pid: pid_t = 0
    let cargs = argv.map { strdup($0) } + [nil]
    defer { for a in cargs { free(a) } }
    let r = posix_spawnp(&pid, argv[0], nil, nil, cargs, environ)
    guard r == 0 else { throw .device("\(argv.joined(separator: " ")): \(String(cString: strerror(r)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    guard status == 0 else { throw .device("\(argv.joined(separator: " ")) failed (status \(status >> 8))") }
}

let stopRequested = Atomic<Bool>(false)
/// Bytes echoed over TCP, and connections served to their end.
let tcpEchoed = Atomic<Int>(0)
let tcpServed = Atomic<Int>(0)
/// Sums of the served connections' statistics: retransmitted, out-of-order kept, dropped
/// (window, memory), duplicate ACKs received.
let tcpRetransmitted = Atomic<Int>(0)
let tcpOutOfOrder = Atomic<Int>(0)
let tcpDropped = Atomic<Int>(0)
let tcpDuplicateACKs = Atomic<Int>(0)

/// Echoes one TCP connection until the peer's FIN (or an error), then closes it.
func tcpEcho(_ connection: TCPSocket, bufferSize: Int) {
    var buffer = [UInt8](repeating: 0, count: bufferSize)
    defer {
        let s = connection.info.statistics
        tcpRetransmitted.add(Int(s.retransmittedSegments), ordering: .relaxed)
        tcpOutOfOrder.add(Int(s.outOfOrderSegments), ordering: .relaxed)
        tcpDropped.add(Int(s.droppedSegments), ordering: .relaxed)
        tcpDuplicateACKs.add(Int(s.duplicateACKsReceived), ordering: .relaxed)
        connection.close()
    }
    while true {
        let n: Int
        do { n = try connection.read(into: &buffer) } catch { return }
        if n == 0 { break }
        do { _ = try buffer.withUnsafeBytes { b throws(SocketError) in try connection.write(UnsafeRawBufferPointer(rebasing: b[..<n])) } } catch { return }
        tcpEchoed.add(n, ordering: .relaxed)
    }
    tcpServed.add(1, ordering: .relaxed)
}

func main() throws(NetStackError) {
    let o = parse(CommandLine.arguments)
    guard let net = o.net else { fail("--net is required\n\(usage)", status: 2) }
    guard let ip = o.ip else { fail("--ip is required\n\(usage)", status: 2) }
    guard o.udp != nil || o.tcp != nil else { fail("--udp or --tcp is required\n\(usage)", status: 2) }
    let cidr = try IPv4CIDR(parsing: ip)
    var gateway: IPv4Address? = nil
    if let g = o.gateway {
        guard let a = IPv4Address(g) else { throw .invalidConfiguration("--gateway '\(g)' is not an IPv4 address") }
        gateway = a
    }
    let host = try o.hostIP.map { h throws(NetStackError) in try IPv4CIDR(parsing: h) }
    let spec: DeviceSpec
    do { spec = try DeviceSpec(parsing: net) } catch { throw .device(error.description) }
    if host != nil, case .tap = spec {} else if host != nil { throw .invalidConfiguration("--host-ip is for --net tap:NAME only") }

    let device: AnyNetworkDevice
    do { device = try spec.open(shmTimeout: .seconds(30)) } catch { throw .device(error.description) }
    if case .tap(let name, _) = spec {
        _ = try? run(["sysctl", "-qw", "net.ipv6.conf.\(name).disable_ipv6=1"])   // no router solicitations
        if let host { try run(["ip", "addr", "replace", host.description, "dev", name]) }
        try run(["ip", "link", "set", name, "up"])
    }
    let info = device.info
    let mac = MACAddress(rawValue: info.mac.raw)
    var config = InterfaceConfiguration(mac: mac, address: cidr, gateway: gateway, mtu: info.mtu)
    config.udpReceiveQueueLength = 1024
    let interface: NetworkInterface
    if o.drop > 0 {
        var f = FaultConfiguration(seed: o.seed)
        f.drop = o.drop
        f.onReceive = true
        let faulty: FaultInjector<AnyNetworkDevice>
        do { faulty = try FaultInjector(wrapping: device, configuration: f) } catch { throw .device(error.description) }
        interface = try NetworkInterface(device: faulty, configuration: config)
    } else {
        interface = try NetworkInterface(device: device, configuration: config)
    }
    let runtime: Runtime
    do { runtime = try Runtime(RuntimeConfiguration(kthreads: o.kthreads)) } catch { throw .runtime(error.description) }
    try interface.start(on: runtime)
    if let port = o.udp {
        let socket: UDPSocket
        do { socket = try UDPSocket(interface: interface, port: port) } catch { throw .invalidConfiguration("--udp \(port): \(error)") }
        runtime.spawn {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                do throws(SocketError) {
                    let (n, from) = try socket.receiveFrom(into: &buffer)
                    _ = try? socket.send(buffer[..<n], to: from)
                } catch .closed {
                    return
                } catch {
                    continue
                }
            }
        }
    }
    if let port = o.tcp {
        var tcpConfig = TCPConfiguration()
        if let b = o.tcpBuffer {
            tcpConfig.receiveBufferSize = b
            tcpConfig.sendBufferSize = b
        }
        let listener: TCPListener
        do { listener = try TCPListener(interface: interface, port: port, backlog: o.backlog, configuration: tcpConfig) } catch {
            throw .invalidConfiguration("--tcp \(port): \(error)")
        }
        let bufferSize = min(o.tcpBuffer ?? 65536, 65536)
        runtime.spawn {
            while true {
                let connection: TCPSocket
                do { connection = try listener.accept() } catch { return }
                _ = UThread.spawn { tcpEcho(connection, bufferSize: bufferSize) }
            }
        }
    }
    for s in [SIGINT, SIGTERM] { signal(s) { _ in stopRequested.store(true, ordering: .releasing) } }
    print("echo-server: ready on \(info.name) mac \(mac) ip \(cidr)" + (o.udp.map { " udp \($0)" } ?? "") + (o.tcp.map { " tcp \($0)" } ?? ""))
    fflush(nil)
    runtime.spawn {
        while !stopRequested.load(ordering: .acquiring) && !interface.isLinkDown { UThread.sleep(for: .milliseconds(20)) }
        if interface.isLinkDown { print("echo-server: the link is down (\(interface.lastDeviceError.map { "\($0)" } ?? "peer gone"))") }
        let c = interface.statistics
        print(c.description, terminator: "")
        print("summary: eth.rx=\(c.ethernet.framesReceived) eth.tx=\(c.ethernet.framesSent) udp.rx=\(c.udp.received) udp.tx=\(c.udp.sent) udp.noports=\(c.udp.noPorts) icmp.echo=\(c.icmp.echoRepliesSent) tcp.in=\(c.tcp.segmentsReceived) tcp.out=\(c.tcp.segmentsSent) tcp.passive=\(c.tcp.passiveOpens) tcp.rst=\(c.tcp.resetsSent) tcp.cookies=\(c.tcp.synCookiesSent) tcp.echoed=\(tcpEchoed.load(ordering: .relaxed)) tcp.connections=\(tcpServed.load(ordering: .relaxed)) tcp.retrans=\(tcpRetransmitted.load(ordering: .relaxed)) tcp.ooo=\(tcpOutOfOrder.load(ordering: .relaxed)) tcp.dropped=\(tcpDropped.load(ordering: .relaxed)) tcp.dupacks=\(tcpDuplicateACKs.load(ordering: .relaxed)) tcp.outdiscards=\(c.tcp.outDiscards) ip.outdiscards=\(c.ipv4.outDiscards)")
        if let e = interface.lastDeviceError { print("device error: \(e)") }
        fflush(nil)
        if case .sharedMemory(let path) = spec { unlink(path) }   // exit skips the device's own clean-up
        exit(0)
    }
    while true { pause() }
}

do { try main() } catch { fail(error.description) }
