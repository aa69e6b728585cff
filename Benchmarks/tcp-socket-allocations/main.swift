// main.swift: request/response rounds between a TCPSocket and an accepted socket on two
// interfaces over an in-process loopback pair, polled by hand on one thread (manual clock,
// non-blocking sockets, no runtime): socket write, segment output, device, interface
// input, the 4-tuple lookup, the connection, timers, socket read. Under valgrind
// (measure.sh) the heap allocation count must not grow with the number of rounds.
import Glibc
import NetStack
import NICQueues

let rounds = Int(CommandLine.arguments.dropFirst().first ?? "1000") ?? 1000
let clock = ManualClock()

func makeInterfaces() throws -> (NetworkInterface, NetworkInterface) {
    let pair = try LoopbackDevice.pair()
    let da = pair.a, db = pair.b
    let ca = InterfaceConfiguration(mac: NetStack.MACAddress(rawValue: da.info.mac.raw), address: try IPv4CIDR(parsing: "10.98.0.1/24"))
    let cb = InterfaceConfiguration(mac: NetStack.MACAddress(rawValue: db.info.mac.raw), address: try IPv4CIDR(parsing: "10.98.0.2/24"))
    return (try NetworkInterface(device: da, configuration: ca, clock: .manual(clock)),
            try NetworkInterface(device: db, configuration: cb, clock: .manual(clock)))
}
let (a, b) = try makeInterfaces()
var config = TCPConfiguration()
config.noDelay = true
let listener = try TCPListener(interface: b, port: 80, configuration: config)
listener.isNonBlocking = true
let client = TCPSocket(interface: a, configuration: config)
client.isNonBlocking = true
do { try client.connect(to: SocketAddress(IPv4Address(10, 98, 0, 2), 80)) } catch SocketError.inProgress {}

func pollBoth() {
    clock.advance(by: .microseconds(200))
    b.poll()
    a.poll()
}

var server: TCPSocket? = nil
for _ in 0..<100 where server == nil {
    pollBoth()
    server = try? listener.accept()
}
guard let server else { print("no connection"); exit(1) }
server.isNonBlocking = true
let size = 1000
let message = [UInt8](repeating: 0x5A, count: size)
var buffer = [UInt8](repeating: 0, count: 4096)

/// Reads `count` bytes from `socket`, polling; false if they do not come.
func readAll(_ socket: TCPSocket, _ count: Int) -> Bool {
    var got = 0
    for _ in 0..<100 {
        while got < count, let n = try? socket.read(into: &buffer), n > 0 { got += n }
        if got >= count { return true }
        pollBoth()
    }
    return false
}

for i in 0..<(rounds + 10) {   // 10 more: the first ones grow buffers and resolve ARP
    guard (try? client.write(message)) == size else { print("client write failed at \(i)"); exit(1) }
    pollBoth()
    guard readAll(server, size) else { print("server read failed at \(i)"); exit(1) }
    guard (try? server.write(message)) == size else { print("server write failed at \(i)"); exit(1) }
    pollBoth()
    guard readAll(client, size) else { print("client read failed at \(i)"); exit(1) }
}
exit(0)   // no output otherwise: printing allocates
