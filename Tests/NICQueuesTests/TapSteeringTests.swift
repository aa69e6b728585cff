// TapSteeringTests.swift: the TAP steering program's choices, seen on the queues of a
// TAP the test creates: the kernel's SYNs (from connect(2) on the host, to an address
// with a static neighbour entry, under a blackhole route for the subnet) reach a queue
// accepting on the port and are recorded as its flows; a flow a process opened is
// recorded; a released process's queue gets nothing more.
import Foundation
import NICQueues
import TestSupport
import Testing

@Suite(.enabled(if: isRoot, "needs root: creates TAP devices and routes"), .serialized)
struct TapSteeringTests {
    /// Starts a TCP connection from the host to `ip`:`port` (its SYN goes out of the TAP);
    /// returns the socket and its local port.
    func connectFromHost(_ ip: String, _ port: UInt16) throws -> (Int32, UInt16) {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        try #require(s >= 0)
        var to = sockaddr_in()
        to.sin_family = sa_family_t(AF_INET)
        to.sin_port = port.bigEndian
        inet_pton(AF_INET, ip, &to.sin_addr)
        let r = withUnsafePointer(to: &to) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let e = errno
        #expect(r < 0 && e == EINPROGRESS)
        var local = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        return (s, UInt16(bigEndian: local.sin_port))
    }

    /// The SYNs to `port` read from `fd` within a few seconds (the first ends the wait).
    /// Frames start with a virtio-net header: the TAP has IFF_VNET_HDR (offloads, the
    /// default), and the steered queues take queue 0's flags.
    func synSeen(on fd: Int32, port: UInt16, seconds: Double = 10) -> Bool {
        let v = VirtioNetHeader.length
        let deadline = Date().addingTimeInterval(seconds)
        var buf = [UInt8](repeating: 0, count: 2048)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            while true {
                let n = read(fd, &buf, buf.count)
                if n <= 0 { break }
                guard n >= v + 54, buf[v + 12] == 0x08, buf[v + 13] == 0x00, buf[v + 23] == 6 else { continue }
                let tcp = v + 14 + Int(buf[v + 14] & 0xf) * 4
                guard n >= tcp + 14 else { continue }
                let dst = UInt16(buf[tcp + 2]) << 8 | UInt16(buf[tcp + 3])
                if dst == port && buf[tcp + 13] & 0x12 == 0x02 { return true }
            }
        }
        return false
    }

    @Test func synsGoToAnAcceptingQueueAndFlowsFollowTheirOwner() throws {
        let name = uniqueName("jnqs")
        let octet = subnetOctet()
        let subnet = "10.202.\(octet)"
        try runCommand("ip", "route", "add", "blackhole", "\(subnet).0/24", "metric", "4000")
        defer { _ = try? runCommand("ip", "route", "del", "blackhole", "\(subnet).0/24", "metric", "4000") }
        var c = TapConfiguration()
        c.multiQueue = true
        #expect(c.offloads, "synSeen expects a virtio-net header before each frame")
        let tap = try TapDevice(name: name, configuration: c)
        defer { _ = try? runCommand("ip", "link", "del", name) }
        let steering = try TapSteering(queue0FD: tap.notificationFD(queue: 0), interfaceName: name)
        try runCommand("ip", "addr", "add", "\(subnet).1/24", "dev", name)
        try runCommand("ip", "link", "set", name, "up")
        try runCommand("ip", "neigh", "replace", "\(subnet).2", "lladdr", "02:00:00:00:00:02", "dev", name, "nud", "permanent")
        let host = UInt32(10) << 24 | UInt32(202) << 16 | UInt32(octet) << 8 | 1

        // Nobody accepts on the port: the SYN goes to queue 0, and nothing is recorded.
        let (s0, p0) = try connectFromHost("\(subnet).2", 7001)
        defer { close(s0) }
        #expect(synSeen(on: tap.notificationFD(queue: 0), port: 7001))
        #expect(steering.queue(ofRemote: host, remotePort: p0, localPort: 7001) == nil)

        // This process takes queue 1 (as a forked child would) and accepts on the port.
        let fd = try #require(steering.claimQueue())
        defer { close(fd) }
        #expect(steering.queue == 1)
        steering.accepting(port: 7002, true)
        let (s1, p1) = try connectFromHost("\(subnet).2", 7002)
        defer { close(s1) }
        #expect(synSeen(on: fd, port: 7002))
        #expect(steering.queue(ofRemote: host, remotePort: p1, localPort: 7002) == 1)

        // A connection it opens itself is recorded as its own.
        steering.connecting(remote: host, remotePort: 80, localPort: 40000)
        #expect(steering.queue(ofRemote: host, remotePort: 80, localPort: 40000) == 1)

        // Once released (its process exited), its flows and its port are forgotten.
        steering.release(pid: getpid())
        #expect(steering.queue(ofRemote: host, remotePort: 80, localPort: 40000) == nil)
        #expect(steering.queue(ofRemote: host, remotePort: p1, localPort: 7002) == nil)
        let (s2, _) = try connectFromHost("\(subnet).2", 7002)
        defer { close(s2) }
        #expect(synSeen(on: tap.notificationFD(queue: 0), port: 7002))
    }
}
