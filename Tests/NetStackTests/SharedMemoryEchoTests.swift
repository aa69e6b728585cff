// SharedMemoryEchoTests.swift: two processes over NICQueues' shared-memory link, our stack
// on both ends: echo-server in a child process, a UDP client here; then the same with the
// fault injector dropping frames on our side, after which the counters of both stacks
// and of the injector must agree.
import Foundation
import NICQueues
@testable import NetProtocols
@testable import NetStack
import Testing
import TestSupport
import UThreads

/// echo-server on `shm:PATH` (10.9.0.9/24) and this process's interface (10.9.0.2/24).
func withEchoServerOverShm(drop: Double, _ body: (NetworkInterface, Runtime) throws -> Void,
                           check: (NetworkInterface, FaultStatistics?, FaultStatistics?, String) throws -> Void) throws {
    let path = "/dev/shm/netstack-test-\(uniqueTestName("l"))"
    defer { unlink(path) }
    let server = try ChildProcess([siblingExecutable("echo-server"), "--net", "shm:\(path)", "--ip", "10.9.0.9/24", "--udp", "7"])
    defer { server.kill() }
    var c = SharedMemoryConfiguration()
    c.connectTimeout = .seconds(10)
    let device = try SharedMemoryDevice(path: path, configuration: c)
    let config = InterfaceConfiguration(mac: MAC(device.info.mac), address: try IPv4CIDR(parsing: "10.9.0.2/24"))
    let interface: NetworkInterface
    let faults: SharedDevice<FaultInjector<SharedMemoryDevice>>?
    if drop > 0 {
        var f = FaultConfiguration(seed: 7)
        f.drop = drop
        f.onReceive = true
        let shared = SharedDevice(try FaultInjector(wrapping: device, configuration: f))
        faults = shared
        interface = try NetworkInterface(link: shared, configuration: config)
    } else {
        faults = nil
        interface = try NetworkInterface(device: device, configuration: config)
    }
    #expect(server.waitForOutput("echo-server: ready", seconds: 10), "\(server.output)")
    let runtime = try Runtime(RuntimeConfiguration(kthreads: 1))
    try interface.start(on: runtime)
    try body(interface, runtime)
    usleep(100_000)   // let the last frames land on both sides
    interface.stop()
    runtime.shutdown()
    #expect(server.stop() == 0)
    let stats = faults?.device.faultStatistics
    try check(interface, stats?.transmit, stats?.receive, server.output)
}

@Suite(.serialized) struct SharedMemoryEchoTests {
    @Test func udpEchoBetweenTwoProcesses() throws {
        try withEchoServerOverShm(drop: 0, { interface, runtime in
            let ok = runtime.spawn { () -> Int in
                let client = UDPSocket(interface: interface)
                client.receiveTimeout = .seconds(5)
                guard (try? client.connect(to: SocketAddress(IPv4Address(10, 9, 0, 9), 7))) != nil else { return -1 }
                var buffer = [UInt8](repeating: 0, count: 2048)
                var ok = 0
                for i in 0..<500 {
                    let m = [UInt8](repeating: UInt8(i & 0xFF), count: 1 + (i * 13) % 1400)
                    guard (try? client.send(m)) != nil, let n = try? client.receive(into: &buffer) else { break }
                    if Array(buffer[..<n]) == m { ok += 1 }
                }
                return ok
            }.join()
            #expect(ok == 500)
        }, check: { interface, _, _, out in
            let s = interface.statistics
            #expect(s.udp.sent == 500 && s.udp.received == 500)
            #expect(summaryValue(out, "udp.rx") == 500 && summaryValue(out, "udp.tx") == 500, "\(out)")
            #expect(summaryValue(out, "eth.rx") == Int(s.ethernet.framesSent), "\(out)")
            #expect(summaryValue(out, "eth.tx") == Int(s.ethernet.framesReceived), "\(out)")
        })
    }

    /// 10% of frames dropped each way: ARP retries, datagrams are lost, nothing breaks,
    /// and every frame is accounted for.
    @Test func lossFromTheFaultInjector() throws {
        let sent = 1000
        try withEchoServerOverShm(drop: 0.1, { interface, runtime in
            let got = runtime.spawn { () -> Int in
                let client = UDPSocket(interface: interface)
                guard (try? client.connect(to: SocketAddress(IPv4Address(10, 9, 0, 9), 7))) != nil else { return -1 }
                client.receiveTimeout = .milliseconds(30)
                var buffer = [UInt8](repeating: 0, count: 2048)
                var got = 0
                for burst in 0..<(sent / 50) {
                    for i in 0..<50 { _ = try? client.send([UInt8(truncatingIfNeeded: burst), UInt8(i)]) }
                    // The first burst waits for ARP, which may need its 1 s retry.
                    if burst == 0 { client.receiveTimeout = .milliseconds(2500) }
                    while (try? client.receive(into: &buffer)) != nil { got += 1; client.receiveTimeout = .milliseconds(30) }
                }
                // The socket counted every echo that arrived: those read, and any late ones still queued.
                #expect(client.statistics.received == UInt64(got + client.queuedDatagrams))
                return got
            }.join()
            #expect(got > sent / 2 && got < sent, "\(got) echoes of \(sent)")
        }, check: { interface, tx, rx, out in
            let s = interface.statistics
            let tx = try #require(tx), rx = try #require(rx)
            #expect(tx.dropped > 0 && rx.dropped > 0)
            #expect(s.udp.sent == UInt64(sent))
            // Every frame we sent went through the injector; the server got the rest.
            #expect(tx.frames == s.ethernet.framesSent)
            #expect(summaryValue(out, "eth.rx") == Int(tx.frames - tx.dropped), "\(out)")
            // Every frame the server sent reached the injector; we got the rest.
            #expect(summaryValue(out, "eth.tx") == Int(rx.frames), "\(out)")
            #expect(s.ethernet.framesReceived == rx.frames - rx.dropped)
            // The server echoed what it got; we received every echo that survived.
            #expect(summaryValue(out, "udp.rx") == summaryValue(out, "udp.tx"), "\(out)")
            #expect(s.wire.total == 0)
        })
    }

    /// The link dies with either process: a killed echo-server shows up as `isLinkDown`
    /// here (and the poller stops), and echo-server exits by itself when we go.
    @Test func aDeadPeerTakesTheLinkDown() throws {
        let path = "/dev/shm/netstack-test-\(uniqueTestName("d"))"
        defer { unlink(path) }
        let server = try ChildProcess([siblingExecutable("echo-server"), "--net", "shm:\(path)", "--ip", "10.9.0.9/24", "--udp", "7"])
        defer { server.kill() }
        do {
            let device = try SharedMemoryDevice(path: path)
            let config = InterfaceConfiguration(mac: MAC(device.info.mac), address: try IPv4CIDR(parsing: "10.9.0.2/24"))
            let interface = try NetworkInterface(device: device, configuration: config)
            #expect(server.waitForOutput("echo-server: ready", seconds: 10))
            let runtime = try Runtime(RuntimeConfiguration(kthreads: 1))
            try interface.start(on: runtime)
            #expect(!interface.isLinkDown)
            interface.stop()
            runtime.shutdown()
        }
        // Our device is gone: echo-server notices, prints its counters and exits.
        #expect(server.wait(seconds: 5) == 0)
        #expect(server.output.contains("the link is down") && server.output.contains("summary:"), "\(server.output)")

        let path2 = path + "b"
        defer { unlink(path2) }
        let server2 = try ChildProcess([siblingExecutable("echo-server"), "--net", "shm:\(path2)", "--ip", "10.9.0.9/24", "--udp", "7"])
        let device = try SharedMemoryDevice(path: path2)
        let config = InterfaceConfiguration(mac: MAC(device.info.mac), address: try IPv4CIDR(parsing: "10.9.0.2/24"))
        let interface = try NetworkInterface(device: device, configuration: config)
        #expect(server2.waitForOutput("echo-server: ready", seconds: 10))
        let runtime = try Runtime(RuntimeConfiguration(kthreads: 1))
        try interface.start(on: runtime)
        defer { interface.stop(); runtime.shutdown() }
        server2.kill()
        for _ in 0..<200 where !interface.isLinkDown { usleep(10_000) }
        #expect(interface.isLinkDown)
        if case .peerGone? = interface.lastDeviceError {} else { Issue.record("device error: \(String(describing: interface.lastDeviceError))") }
        // The poller stopped: the kthread sleeps instead of waking on the dead fd.
        let before = runtime.statistics()[0].polls
        usleep(200_000)
        #expect(runtime.statistics()[0].polls - before < 1000)
    }

    /// echo-server's own fault injector (`--drop`): 30% of its frames lost each way.
    @Test func echoServerWithItsOwnLoss() throws {
        let path = "/dev/shm/netstack-test-\(uniqueTestName("f"))"
        defer { unlink(path) }
        let server = try ChildProcess([siblingExecutable("echo-server"), "--net", "shm:\(path)", "--ip", "10.9.0.9/24",
                                       "--udp", "7", "--drop", "0.3", "--seed", "5"])
        defer { server.kill() }
        let device = try SharedMemoryDevice(path: path)
        let config = InterfaceConfiguration(mac: MAC(device.info.mac), address: try IPv4CIDR(parsing: "10.9.0.2/24"))
        let interface = try NetworkInterface(device: device, configuration: config)
        #expect(server.waitForOutput("echo-server: ready", seconds: 10))
        let runtime = try Runtime(RuntimeConfiguration(kthreads: 1))
        try interface.start(on: runtime)
        defer { interface.stop(); runtime.shutdown() }
        let got = runtime.spawn { () -> Int in
            let client = UDPSocket(interface: interface)
            guard (try? client.connect(to: SocketAddress(IPv4Address(10, 9, 0, 9), 7))) != nil else { return -1 }
            var buffer = [UInt8](repeating: 0, count: 64)
            client.receiveTimeout = .milliseconds(3500)   // ARP may need its retries
            var got = 0
            for burst in 0..<10 {
                for i in 0..<20 { _ = try? client.send([UInt8(burst), UInt8(i)]) }
                while (try? client.receive(into: &buffer)) != nil { got += 1; client.receiveTimeout = .milliseconds(30) }
                client.receiveTimeout = .milliseconds(30)
            }
            return got
        }.join()
        // 200 sent; each echo survives two 30% drops (49%), give or take.
        #expect(got > 40 && got < 160, "\(got) echoes of 200")
        #expect(server.stop() == 0)
        #expect(summaryValue(server.output, "udp.rx") == summaryValue(server.output, "udp.tx"), "\(server.output)")
    }
}
