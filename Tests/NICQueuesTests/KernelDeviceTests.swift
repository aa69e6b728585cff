// KernelDeviceTests.swift: TAP against the Linux stack and AF_XDP on a veth pair in a
// network namespace the test creates; both need root and skip cleanly without it.
import Foundation
import TestSupport
import NICQueues
import Testing

@Suite(.enabled(if: isRoot, "needs root: creates TAP devices, veth pairs and network namespaces"))
struct KernelDeviceTests {
    /// Sends ARP requests for `targetIP` until the kernel answers; returns the frames seen.
    func arpExchange(_ device: borrowing some NetworkDevice & ~Copyable, senderIP: [UInt8], targetIP: [UInt8],
                     expectFrom kernelMAC: MACAddress) throws -> Bool {
        let request = arpRequest(from: device.info.mac, senderIP: senderIP, targetIP: targetIP)
        var batch = PacketBatch(capacity: 32)
        for _ in 0..<30 {
            try transmitFrames(device, [request])
            let deadline = Date().addingTimeInterval(0.3)
            while Date() < deadline {
                if try device.receive(queue: 0, into: &batch, limit: 32) == 0 {
                    _ = try device.waitForFrames(timeoutMs: 50)
                    continue
                }
                while let f = batch.popFirst() {
                    if arpReplySender(f.bytes, from: targetIP, to: device.info.mac) == kernelMAC { return true }
                }
            }
        }
        return false
    }

    @Test func tapFramesReachTheKernelAndItsAnswersReachUs() throws {
        let name = uniqueName("jnqt")
        let octet = subnetOctet()
        var c = TapConfiguration()
        c.bufferSize = 512   // room for 384-byte frames: larger ones arrive truncated
        let tap = try TapDevice(name: name, configuration: c)
        defer { _ = try? runCommand("ip", "link", "del", name) }
        #expect(tap.interfaceName == name && tap.info.mtu == 1500)
        try runCommand("ip", "addr", "add", "10.201.\(octet).1/24", "dev", name)
        try runCommand("ip", "link", "set", name, "up")
        let linuxMAC = try #require(MACAddress(try runCommand("cat", "/sys/class/net/\(name)/address").trimmingCharacters(in: .whitespacesAndNewlines)))
        // Our ARP request reaches the kernel, which answers it on the TAP.
        #expect(try arpExchange(tap, senderIP: [10, 201, octet, 2], targetIP: [10, 201, octet, 1], expectFrom: linuxMAC))
        #expect(tap.statistics.txPackets >= 1 && tap.statistics.rxPackets >= 1)
        // The kernel counted what we sent.
        let rxByKernel = Int(try runCommand("cat", "/sys/class/net/\(name)/statistics/rx_packets").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(rxByKernel >= 1)
        // A frame larger than our buffers (the kernel now knows our address and pings it
        // with 1000 bytes) is dropped and counted, not delivered cut short.
        let ping = try ChildProcess(["/usr/bin/busybox", "ping", "-c", "1", "-s", "1000", "10.201.\(octet).2"])
        defer { _ = ping.kill() }
        var batch = PacketBatch(capacity: 32)
        for _ in 0..<50 where tap.statistics.rxDropped == 0 {
            if try tap.receive(queue: 0, into: &batch, limit: 32) == 0 { _ = try tap.waitForFrames(timeoutMs: 100) }
            while let f = batch.popFirst() { #expect(f.length <= 384) }
        }
        #expect(tap.statistics.rxDropped >= 1)
    }

    @Test func tapWithSeveralQueues() throws {
        let name = uniqueName("jnqm")
        let tap = try DeviceSpec(parsing: "tap:\(name):2").open()
        defer { _ = try? runCommand("ip", "link", "del", name) }
        #expect(tap.info.queueCount == 2)
        try runCommand("ip", "link", "set", name, "up")
        let frame = numberedFrame(1, size: 60, from: tap.info.mac)
        try transmitFrames(tap, [frame], queue: 0)
        try transmitFrames(tap, [frame, frame], queue: 1)
        #expect(tap.statistics.txPackets == 3)
        let rxByKernel = Int(try runCommand("cat", "/sys/class/net/\(name)/statistics/rx_packets").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(rxByKernel == 3)
        #expect(tap.notificationFD(queue: 0) != tap.notificationFD(queue: 1))
    }

    @Test func tapNeedsAName() throws {
        #expect(throws: NICError.badSpec("tap:", reason: "an interface name has 1 to 15 characters, no '/' or space")) {
            _ = try TapDevice(name: "")
        }
    }

    @Test(arguments: [false, true])
    func xdpOnAVethPairInANamespace(ownProgram: Bool) throws {
        let ns = uniqueName("jnqns")
        let ours = uniqueName("jnqa"), theirs = uniqueName("jnqb")
        let octet = subnetOctet()
        try runCommand("ip", "netns", "add", ns)
        defer {
            _ = try? runCommand("ip", "link", "del", ours)
            _ = try? runCommand("ip", "netns", "del", ns)
        }
        try runCommand("ip", "link", "add", ours, "type", "veth", "peer", "name", theirs)
        try runCommand("ip", "link", "set", theirs, "netns", ns)
        try runCommand("ip", "-n", ns, "addr", "add", "10.202.\(octet).1/24", "dev", theirs)
        try runCommand("ip", "-n", ns, "link", "set", theirs, "up")
        try runCommand("ip", "link", "set", ours, "up")
        let linuxMAC = try #require(MACAddress(try runCommand("ip", "netns", "exec", ns, "cat", "/sys/class/net/\(theirs)/address").trimmingCharacters(in: .whitespacesAndNewlines)))

        var c = XDPConfiguration()
        c.ownProgram = ownProgram
        c.frames = 4096
        c.ringSize = 512
        let xdp = try XDPDevice(interface: ours, configuration: c)
        #expect(xdp.programSource == (ownProgram ? "own" : "libxdp"))
        let zeroCopy = xdp.zeroCopy
        #expect(!zeroCopy)   // veth has no zero-copy: copy mode
        // Ours arrive there (the namespace's kernel answers), theirs arrive in our RX ring.
        #expect(try arpExchange(xdp, senderIP: [10, 202, octet, 2], targetIP: [10, 202, octet, 1], expectFrom: linuxMAC))
        // Traffic the other end starts: it now knows our address, so its pings come to us,
        // and our replies go back (ping exits 0 only if all three replies arrived).
        let ping = try ChildProcess(["/usr/sbin/ip", "netns", "exec", ns, "busybox", "ping", "-c", "3", "-i", "0.2", "10.202.\(octet).2"])   // busybox-static is in deps.sh
        var pingStatus: Int32? = nil
        defer { if pingStatus == nil { _ = ping.kill() } }
        var echoRequests = 0
        var batch = PacketBatch(capacity: 32)
        let deadline = Date().addingTimeInterval(10)
        while pingStatus == nil && Date() < deadline {
            pingStatus = ping.poll()
            if try xdp.receive(queue: 0, into: &batch, limit: 32) == 0 { _ = try xdp.waitForFrames(timeoutMs: 100); continue }
            var replies = PacketBatch(capacity: 32)
            while var f = batch.popFirst() {
                let isEchoRequest = f.withUnsafeBytes { b in
                    b.count >= 42 && b[12] == 8 && b[13] == 0 && b[23] == 1 && b[34] == 8 && Array(b[0..<6]) == xdp.info.mac.bytes
                }
                if !isEchoRequest { continue }
                echoRequests += 1
                f.withUnsafeMutableBytes { b in
                    for k in 0..<6 { b.swapAt(k, 6 + k) }          // Ethernet addresses
                    for k in 0..<4 { b.swapAt(26 + k, 30 + k) }    // IPv4 addresses (checksum unchanged)
                    b[34] = 0                                      // echo reply
                    var sum = UInt32(b[36]) << 8 | UInt32(b[37])   // RFC 1624: the type word dropped by 0x0800
                    sum += 0x0800
                    sum = (sum & 0xFFFF) + (sum >> 16)
                    b[36] = UInt8(sum >> 8); b[37] = UInt8(sum & 0xFF)
                }
                replies.append(f)
            }
            while !replies.isEmpty { if try xdp.transmit(queue: 0, from: &replies) == 0 { _ = try xdp.reclaim(queue: 0) } }
            _ = try xdp.reclaim(queue: 0)
        }
        if pingStatus == nil { pingStatus = ping.kill() }
        #expect(echoRequests == 3)
        #expect(pingStatus == 0)   // ping got all three replies
        #expect(xdp.statistics.rxPackets >= 4 && xdp.statistics.txPackets >= 1)
        _ = try xdp.reclaim(queue: 0)
    }

    @Test func xdpOnAMissingInterface() throws {
        #expect(throws: NICError.noSuchDevice("jnq-none0", detail: "no such network interface")) {
            _ = try XDPDevice(interface: "jnq-none0")
        }
    }
}

extension KernelDeviceTests {
    @Test func xdpZeroCopyOnlyFailsClearlyOnVeth() throws {
        let ours = uniqueName("jnqz"), theirs = uniqueName("jnqy")
        try runCommand("ip", "link", "add", ours, "type", "veth", "peer", "name", theirs)
        defer { _ = try? runCommand("ip", "link", "del", ours) }
        try runCommand("ip", "link", "set", ours, "up")
        try runCommand("ip", "link", "set", theirs, "up")
        var c = XDPConfiguration()
        c.mode = .zeroCopy
        c.frames = 1024
        c.ringSize = 256
        do {
            _ = try XDPDevice(interface: ours, configuration: c)
            Issue.record("zero-copy AF_XDP on veth succeeded")
        } catch {
            #expect(error.description.contains("zero-copy"), "\(error)")
        }
        // No program is left behind: copy mode works on the same interface afterwards.
        c.mode = .automatic
        let d = try XDPDevice(interface: ours, configuration: c)
        let zeroCopy = d.zeroCopy
        #expect(!zeroCopy)
    }
}
