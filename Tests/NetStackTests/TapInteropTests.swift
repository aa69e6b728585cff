// TapInteropTests.swift: NetStack against the Linux stack over TAP interfaces the tests
// create (unique names, unique 10.x.y.0/24 subnets, removed afterwards): Linux ping gets
// echo replies, a Linux UDP client gets echoes from echo-server, our UDP client talks to
// a Linux UDP echo server, and port unreachable reaches a Linux sender as ECONNREFUSED.
import Foundation
import NICQueues
@testable import NetProtocols
@testable import NetStack
import Testing
import TestSupport
import UThreads

/// An echo-server process on a fresh TAP interface, the kernel's side at .1, ours at .2.
final class EchoServerOnTap {
    let name: String
    let octet: UInt8
    let process: ChildProcess
    var ours: String { "10.213.\(octet).2" }
    var kernels: String { "10.213.\(octet).1" }

    init(port: UInt16 = 7, gateway: Bool = false, queues: Int = 1) throws {
        name = uniqueTestName("jnst")
        octet = testSubnetOctet()
        process = try ChildProcess([siblingExecutable("echo-server"), "--net", queues == 1 ? "tap:\(name)" : "tap:\(name):\(queues)",
                                    "--ip", "10.213.\(octet).2/24", "--host-ip", "10.213.\(octet).1/24", "--udp", "\(port)",
                                    "--kthreads", "\(queues)"]
                                   + (gateway ? ["--gateway", "10.213.\(octet).1"] : []))
        guard process.waitForOutput("echo-server: ready", seconds: 10) else {
            let out = process.output
            process.kill()
            _ = try? runCommand("ip", "link", "del", name)
            throw InterfaceTestFailure("echo-server did not start: \(out)")
        }
    }

    /// Stops the server (SIGTERM) and returns what it printed (its counters).
    func finish() -> String {
        process.stop()
        _ = try? runCommand("ip", "link", "del", name)   // normally gone with the process
        return process.output
    }

    deinit { _ = finish() }
}

/// Reads `summary: key=value ...` from echo-server's output.
func summaryValue(_ output: String, _ key: String) -> Int? {
    guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("summary:") }) else { return nil }
    for field in line.split(separator: " ") where field.hasPrefix(key + "=") { return Int(field.dropFirst(key.count + 1)) }
    return nil
}

@Suite(.enabled(if: runningAsRoot, "needs root: creates TAP interfaces"), .serialized)
struct TapInteropTests {
    @Test func linuxPingGetsEchoReplies() throws {
        let server = try EchoServerOnTap()
        // busybox-static is in scripts/deps.sh; its ping exits 0 only if replies came.
        let r = try runChild(["busybox", "ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "200", server.ours], seconds: 15)
        let out = server.finish()
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("3 packets received"), "\(r.output)")
        #expect(r.output.contains("208 bytes from \(server.ours)"), "\(r.output)")
        #expect(summaryValue(out, "icmp.echo") == 3, "\(out)")
    }

    @Test func linuxUDPClientGetsEchoes() throws {
        let server = try EchoServerOnTap()
        let script = """
        import socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        ok = 0
        for i in range(50):
            m = bytes([i]) * (1 + i * 29)
            s.sendto(m, (sys.argv[1], 7))
            d, a = s.recvfrom(65536)
            if d == m and a == (sys.argv[1], 7): ok += 1
        print("echoed", ok)
        """
        let r = try runChild(["python3", "-c", script, server.ours], seconds: 20)
        let out = server.finish()
        #expect(r.output.contains("echoed 50"), "\(r.output)")
        #expect(summaryValue(out, "udp.rx") == 50 && summaryValue(out, "udp.tx") == 50, "\(out)")
    }

    /// Two TAP queues polled from two kthreads: flows from 16 client sockets spread over
    /// the queues, and every echo comes back.
    @Test func twoQueuesOnTwoKThreads() throws {
        let server = try EchoServerOnTap(queues: 2)
        let script = """
        import socket, sys
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(16)]
        ok = 0
        for s in socks:
            s.settimeout(3)
            for i in range(10):
                s.sendto(bytes([i]) * 100, (sys.argv[1], 7))
                d, a = s.recvfrom(1000)
                if d == bytes([i]) * 100: ok += 1
        print("echoed", ok)
        """
        let r = try runChild(["python3", "-c", script, server.ours], seconds: 20)
        let out = server.finish()
        #expect(r.output.contains("echoed 160"), "\(r.output)")
        #expect(summaryValue(out, "udp.rx") == 160, "\(out)")
    }

    @Test func portUnreachableReachesALinuxSender() throws {
        let server = try EchoServerOnTap()
        let script = """
        import socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.connect((sys.argv[1], 9))
        s.send(b"anyone?")
        try:
            s.recv(100)
            print("no error")
        except ConnectionRefusedError:
            print("refused")
        except socket.timeout:
            print("timeout")
        """
        let r = try runChild(["python3", "-c", script, server.ours], seconds: 10)
        let out = server.finish()
        #expect(r.output.contains("refused"), "\(r.output)")
        #expect(summaryValue(out, "udp.noports") == 1, "\(out)")
    }

    /// Our stack in this process (a TAP device, a runtime) talks to a python3 echo server
    /// bound to the kernel's address on that TAP.
    @Test func ourClientTalksToALinuxEchoServer() throws {
        let name = uniqueTestName("jnsc")
        let octet = testSubnetOctet()
        let tap = try TapDevice(name: name)
        defer { _ = try? runCommand("ip", "link", "del", name) }
        _ = try? runCommand("sysctl", "-qw", "net.ipv6.conf.\(name).disable_ipv6=1")
        try runCommand("ip", "addr", "add", "10.214.\(octet).1/24", "dev", name)
        try runCommand("ip", "link", "set", name, "up")
        let script = """
        import socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((sys.argv[1], 7007))
        print("listening", flush=True)
        s.settimeout(10)
        while True:
            d, a = s.recvfrom(65536)
            s.sendto(d, a)
        """
        let linux = try ChildProcess(["python3", "-u", "-c", script, "10.214.\(octet).1"])
        defer { linux.kill() }
        #expect(linux.waitForOutput("listening", seconds: 10), "\(linux.output)")

        let config = InterfaceConfiguration(mac: MAC(tap.info.mac), address: try IPv4CIDR(parsing: "10.214.\(octet).2/24"))
        let interface = try NetworkInterface(device: tap, configuration: config)
        let runtime = try Runtime(RuntimeConfiguration(kthreads: 1))
        try interface.start(on: runtime)
        defer { interface.stop(); runtime.shutdown() }
        let results = runtime.spawn { () -> Result<[Bool], SocketError> in
            Result { () throws(SocketError) -> [Bool] in
                let client = UDPSocket(interface: interface)
                try client.connect(to: SocketAddress(IPv4Address(10, 214, octet, 1), 7007))
                client.receiveTimeout = .seconds(3)
                var buffer = [UInt8](repeating: 0, count: 2048)
                var ok: [Bool] = []
                for i in 0..<20 {
                    let m = [UInt8](repeating: UInt8(i), count: 10 + i * 70)
                    try client.send(m)
                    let n = try client.receive(into: &buffer)
                    ok.append(Array(buffer[..<n]) == m)
                }
                return ok
            }
        }.join()
        let ok = try results.get()
        #expect(ok == [Bool](repeating: true, count: 20))
        let s = interface.statistics
        #expect(s.udp.sent == 20 && s.udp.received == 20 && s.arp.repliesReceived >= 1)
        #expect(s.wire.total == 0, "\(s.wire)")   // Linux's checksums all verified
    }

    /// A client on an address off echo-server's subnet (a second address of the kernel's,
    /// on the TAP): the echo goes back through the gateway (the kernel's side).
    @Test func offLinkClientIsAnsweredThroughTheGateway() throws {
        let server = try EchoServerOnTap(gateway: true)
        let client = "10.215.\(server.octet).1"
        try runCommand("ip", "addr", "add", "\(client)/32", "dev", server.name)
        let script = """
        import socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((sys.argv[2], 0))
        s.settimeout(3)
        s.sendto(b"via the gateway", (sys.argv[1], 7))
        d, a = s.recvfrom(100)
        print("echo", d.decode(), a[0])
        """
        let r = try runChild(["python3", "-c", script, server.ours, client], seconds: 10)
        let out = server.finish()
        #expect(r.output.contains("echo via the gateway \(server.ours)"), "\(r.output)")
        #expect(summaryValue(out, "udp.tx") == 1, "\(out)")
    }
}

/// echo-server's command line (no root needed).
@Suite struct EchoServerArgumentTests {
    @Test func badArgumentsAreRefusedClearly() throws {
        let cases: [([String], String)] = [
            (["--ip", "10.0.0.2/24", "--udp", "7"], "echo-server: --net is required"),
            (["--net", "loopback", "--ip", "10.0.0.2", "--udp", "7"], "echo-server: invalid network configuration: '10.0.0.2' is not A.B.C.D/NN"),
            (["--net", "bogus:x", "--ip", "10.0.0.2/24", "--udp", "7"], "echo-server: network device: bad device 'bogus:x': unknown device kind 'bogus'"),
            (["--net", "loopback", "--ip", "10.0.0.2/24", "--udp", "0"], "echo-server: --udp: '0' is not a port from 1 to 65535"),
            (["--net", "loopback", "--ip", "10.0.0.2/24", "--udp", "7", "--gateway", "10.1.0.1"],
             "echo-server: invalid network configuration: gateway 10.1.0.1 is not another address on 10.0.0.0/24"),
            (["--net", "loopback", "--ip", "10.0.0.2/24"], "echo-server: --udp or --tcp is required"),
            (["--net", "loopback", "--ip", "10.0.0.2/24", "--tcp", "0"], "echo-server: --tcp: '0' is not a port from 1 to 65535"),
            (["--net", "loopback", "--ip", "10.0.0.2/24", "--udp", "7", "--host-ip", "10.0.0.1/24"], "echo-server: invalid network configuration: --host-ip is for --net tap:NAME only"),
        ]
        for (args, message) in cases {
            let r = try runChild([siblingExecutable("echo-server")] + args, seconds: 10)
            #expect(r.status == 1 || r.status == 2, "\(args): \(r.status)")
            #expect(r.output.hasPrefix(message), "\(args): \(r.output)")
        }
    }

    @Test(.enabled(if: runningAsRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "needs root to drop to an unprivileged user"))
    func missingPrivilegesAreReportedClearly() throws {
        let name = uniqueTestName("jnsp")
        defer { _ = try? runCommand("ip", "link", "del", name) }   // it must not exist, but never leave one
        let r = try runChild(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              siblingExecutable("echo-server"), "--net", "tap:\(name)", "--ip", "10.0.0.2/24", "--udp", "7"])
        #expect(r.status == 1)
        #expect(r.output == "echo-server: network device: tap:\(name): permission denied (creating or attaching a TAP interface needs root or CAP_NET_ADMIN)\n", "\(r.output)")
    }
}
