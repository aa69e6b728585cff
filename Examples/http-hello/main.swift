// main.swift: http-hello, a minimal HTTP/1.1 server on NetStack alone (NICQueues device,
// NetStack's TCP, UThreads), one uthread per connection:
//   http-hello --net DEVICE --ip A.B.C.D/NN [--gateway G] [--host-ip H/NN] [--port P] [--kthreads N]
// `GET /` (and HEAD) answers "Hello from Junction NetStack\n"; other paths 404, other
// methods 405. Keep-alive is the HTTP/1.1 default; "Connection: close" (or HTTP/1.0
// without keep-alive) closes after the response. With --net tap:NAME the TAP interface
// is created and --host-ip gives the kernel's side its address, so curl on the host can
// reach us. Prints "http-hello: ready ..." when it answers, its counters on SIGTERM.
import Glibc
import NetStack
import NICQueues
import Synchronization
import UThreads

// Tunables.
/// Largest request head we accept (request line and headers); longer ones get 431.
let maximumHeadLength = 16 * 1024
/// An idle keep-alive connection is closed after this long.
let idleTimeout: Duration = .seconds(30)

let body = "Hello from Junction NetStack\n"
let usage = "usage: http-hello --net DEVICE --ip A.B.C.D/NN [--gateway G] [--host-ip H/NN] [--port P] [--kthreads N]"

func fail(_ message: String, status: Int32 = 1) -> Never {
    let text = "http-hello: \(message)\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    exit(status)
}

struct Options {
    var net: String?
    var ip: String?
    var gateway: String?
    var hostIP: String?
    var port: UInt16 = 80
    var kthreads = 1
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
        case "--net", "--device": o.net = value(a)
        case "--ip": o.ip = value(a)
        case "--gateway": o.gateway = value(a)
        case "--host-ip": o.hostIP = value(a)
        case "--port":
            let v = value(a)
            guard let p = UInt16(v), p != 0 else { fail("--port: '\(v)' is not a port from 1 to 65535", status: 2) }
            o.port = p
        case "--kthreads":
            let v = value(a)
            guard let n = Int(v), (1...64).contains(n) else { fail("--kthreads: '\(v)' is not a number from 1 to 64", status: 2) }
            o.kthreads = n
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
let requestsServed = Atomic<Int>(0)
let connectionsServed = Atomic<Int>(0)

/// One parsed request head.
struct Request {
    var method: Substring
    var target: Substring
    var version: Substring
    /// Whether the connection stays open after the response (RFC 9112 §9.3).
    var keepAlive: Bool
}

/// Parses the head in `bytes` (without the final CRLF CRLF); nil when malformed.
func parseHead(_ bytes: ArraySlice<UInt8>) -> Request? {
    let text = String(decoding: bytes, as: UTF8.self)
    var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
    guard !lines.isEmpty else { return nil }
    let requestLine = lines.removeFirst().split(separator: " ")
    guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1.") else { return nil }
    var connection = ""
    for line in lines {
        guard let colon = line.firstIndex(of: ":") else { continue }
        if line[..<colon].lowercased() == "connection" {
            connection = line[line.index(after: colon)...].trimmingCharacters(in: " \t").lowercased()
        }
    }
    let tokens = connection.split(separator: ",").map { $0.trimmingCharacters(in: " \t") }
    let keepAlive = requestLine[2] == "HTTP/1.0" ? tokens.contains("keep-alive") : !tokens.contains("close")
    return Request(method: requestLine[0], target: requestLine[1], version: requestLine[2], keepAlive: keepAlive)
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

/// The response to `request` (nil: malformed, 400).
func response(to request: Request?) -> (bytes: [UInt8], keepAlive: Bool) {
    let status: String
    var payload = ""
    var keepAlive = request?.keepAlive ?? false
    var head = false
    var allow = ""
    switch request {
    case nil:
        status = "400 Bad Request"
        keepAlive = false
    case let r? where r.method == "GET" || r.method == "HEAD":
        head = r.method == "HEAD"
        if r.target == "/" {
            status = "200 OK"
            payload = body
        } else {
            status = "404 Not Found"
            payload = "Not found\n"
        }
    case _?:
        status = "405 Method Not Allowed"
        payload = "Method not allowed\n"
        allow = "Allow: GET, HEAD\r\n"
    }
    var text = "HTTP/1.1 \(status)\r\nServer: junction-http-hello\r\nContent-Type: text/plain\r\n"
    text += "Content-Length: \(payload.utf8.count)\r\n" + allow
    text += keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n"
    text += "\r\n"
    if !head { text += payload }
    return (Array(text.utf8), keepAlive)
}

/// Serves requests on one connection until it closes (or asks to).
func serve(_ connection: TCPSocket) {
    defer { connection.close(); connectionsServed.add(1, ordering: .relaxed) }
    connection.noDelay = true
    connection.receiveTimeout = idleTimeout
    var pending: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    let terminator: [UInt8] = Array("\r\n\r\n".utf8)
    while true {
        // A complete head in what we have? (Requests with bodies are not expected: GET.)
        if let end = pending.firstRange(of: terminator) {
            let request = parseHead(pending[..<end.lowerBound])
            pending.removeSubrange(..<end.upperBound)
            let (bytes, keepAlive) = response(to: request)
            guard (try? connection.write(bytes)) != nil else { return }
            requestsServed.add(1, ordering: .relaxed)
            if !keepAlive {
                try? connection.shutdown(.write)
                return
            }
            continue
        }
        if pending.count > maximumHeadLength {
            _ = try? connection.write(Array("HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
            return
        }
        let n: Int
        do { n = try connection.read(into: &buffer) } catch { return }
        if n == 0 { return }
        pending.append(contentsOf: buffer[..<n])
    }
}

func main() throws(NetStackError) {
    let o = parse(CommandLine.arguments)
    guard let net = o.net else { fail("--net is required\n\(usage)", status: 2) }
    guard let ip = o.ip else { fail("--ip is required\n\(usage)", status: 2) }
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
        _ = try? run(["sysctl", "-qw", "net.ipv6.conf.\(name).disable_ipv6=1"])
        if let host { try run(["ip", "addr", "replace", host.description, "dev", name]) }
        try run(["ip", "link", "set", name, "up"])
    }
    let info = device.info
    let mac = MACAddress(rawValue: info.mac.raw)
    let config = InterfaceConfiguration(mac: mac, address: cidr, gateway: gateway, mtu: info.mtu)
    let interface = try NetworkInterface(device: device, configuration: config)
    let runtime: Runtime
    do { runtime = try Runtime(RuntimeConfiguration(kthreads: o.kthreads)) } catch { throw .runtime(error.description) }
    try interface.start(on: runtime)
    let listener: TCPListener
    do { listener = try TCPListener(interface: interface, port: o.port) } catch { throw .invalidConfiguration("--port \(o.port): \(error)") }
    runtime.spawn {
        while true {
            guard let connection = try? listener.accept() else { return }
            _ = UThread.spawn { serve(connection) }
        }
    }
    for s in [SIGINT, SIGTERM] { signal(s) { _ in stopRequested.store(true, ordering: .releasing) } }
    print("http-hello: ready on \(info.name) mac \(mac) ip \(cidr) port \(o.port)")
    fflush(nil)
    runtime.spawn {
        while !stopRequested.load(ordering: .acquiring) && !interface.isLinkDown { UThread.sleep(for: .milliseconds(20)) }
        let c = interface.statistics
        print(c.description, terminator: "")
        print("summary: requests=\(requestsServed.load(ordering: .relaxed)) connections=\(connectionsServed.load(ordering: .relaxed)) tcp.in=\(c.tcp.segmentsReceived) tcp.out=\(c.tcp.segmentsSent) tcp.passive=\(c.tcp.passiveOpens) tcp.rst=\(c.tcp.resetsSent)")
        fflush(nil)
        if case .sharedMemory(let path) = spec { unlink(path) }
        exit(0)
    }
    while true { pause() }
}

do { try main() } catch { fail(error.description) }
