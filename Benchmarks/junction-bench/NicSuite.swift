// NicSuite.swift: `junction-bench nic`: packets per second through NICQueues' shm link,
// loopback pair, AF_XDP on a veth pair and TAP, beside the kernel's AF_PACKET on the
// same veth and UDP sendmmsg/recvmmsg on loopback; one core, batches of 32.
import ArgumentParser
import CJunction
import CNICQueues
import Dispatch
import Foundation
import NICQueues

struct NicSuite: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nic",
        abstract: "NIC queues (shm, loopback, AF_XDP, TAP) versus AF_PACKET and UDP sendmmsg/recvmmsg.")
    @OptionGroup var options: SuiteOptions

    static let batch = 32
    static let afPacketPeer = "kernel: AF_PACKET sendmmsg/recvmmsg on the same veth"
    static let udpPeer = "kernel: UDP sendmmsg/recvmmsg on 127.0.0.1"

    func run() throws {
        _ = cj_pin_to_nth_allowed_cpu(0)   // one core: sender and receiver take turns on it
        let o = options
        let root = geteuid() == 0
        if !root { FileHandle.standardError.write(Data("junction-bench nic: not root: AF_XDP, AF_PACKET and TAP figures skipped\n".utf8)) }
        let veth = root ? try VethPair() : nil
        var results: [BenchResult] = []
        for size in [64, 1500] {
            let packets = o.iterations(size == 64 ? 4_000_000 : 1_000_000)
            var peers: [String: Spread] = [:]
            let shmName = "shm link, \(size)-byte frames"
            let loopName = "loopback pair, \(size)-byte frames"
            let xdpName = "AF_XDP (copy mode) veth to veth, \(size)-byte frames"
            let tapName = "TAP, \(size)-byte frames written into the kernel"
            let tapInName = "TAP, \(size)-byte frames read from the kernel"
            if ![shmName, loopName, xdpName, tapName, tapInName].contains(where: { o.wants($0) }) { continue }   // no peers to measure
            if let veth { peers[Self.afPacketPeer] = try afPacket(veth, size: size, packets: packets / 4) }
            peers[Self.udpPeer] = try udp(size: size, packets: packets / 4)
            if o.wants(shmName) {
                results.append(BenchResult(name: shmName, unit: "Mpps",
                                           spread: try shm(size: size, packets: packets), peers: peers, lowerIsBetter: false))
            }
            if o.wants(loopName) {
                let pair = try LoopbackDevice.pair()
                results.append(BenchResult(name: loopName, unit: "Mpps",
                                           spread: median { pump(pair.a, pair.b, size: size, packets: packets) }, peers: peers, lowerIsBetter: false))
            }
            if o.wants(xdpName), let veth {
                var c = XDPConfiguration()
                c.frames = 8192
                let a = try XDPDevice(interface: veth.a, configuration: c)
                let b = try XDPDevice(interface: veth.b, configuration: c)
                results.append(BenchResult(name: xdpName, unit: "Mpps",
                                           spread: median { pump(a, b, size: size, packets: packets / 4) },
                                           peers: peers.filter { $0.key == Self.afPacketPeer }, lowerIsBetter: false))
            }
            if o.wants(tapName), root {
                results.append(BenchResult(name: tapName, unit: "Mpps",
                                           spread: try median { try tapTransmit(size: size, packets: packets / 4) }, peers: peers, lowerIsBetter: false))
            }
            if o.wants(tapInName), root {
                results.append(BenchResult(name: tapInName, unit: "Mpps",
                                           spread: try tapReceive(size: size, packets: packets / 4), peers: peers, lowerIsBetter: false))
            }
        }
        o.emit(SuiteReport(suite: "nic", results: results))
    }

    /// Three runs of a rate: min, median, max.
    func median(_ body: () throws -> Double) rethrows -> Spread { try repeated(3, body) }

    /// Sends `packets` frames from `tx` to `rx` in batches, one thread taking turns;
    /// returns millions of frames received per second.
    func pump<T: NetworkDevice & ~Copyable, R: NetworkDevice & ~Copyable>(_ tx: borrowing T, _ rx: borrowing R,
                                                                         size: Int, packets: Int) -> Double {
        var out = PacketBatch(capacity: Self.batch), incoming = PacketBatch(capacity: Self.batch)
        let dst = rx.info.mac, src = tx.info.mac
        var sent = 0, received = 0
        let start = nowNanos()
        var lastProgress = start
        while received < packets {
            if sent < packets {
                tx.pool.allocate(Self.batch - out.count, into: &out)
                for i in 0..<out.count {
                    try? out.setLength(size, at: i)
                    out.withMutableBytes(at: i) { f in
                        dst.store(to: f.baseAddress!)
                        src.store(to: f.baseAddress! + 6)
                        f[12] = 0x88; f[13] = 0xB5
                    }
                }
                sent += (try? tx.transmit(queue: 0, from: &out)) ?? 0
            }
            let n = (try? rx.receive(queue: 0, into: &incoming, limit: Self.batch)) ?? 0
            received += n
            incoming.removeAll()
            _ = try? tx.reclaim(queue: 0)
            let now = nowNanos()
            if n > 0 { lastProgress = now } else if sent >= packets && now - lastProgress > 20e6 { break }   // the rest were lost
        }
        out.removeAll()
        return Double(received) / (nowNanos() - start) * 1e3
    }

    func shm(size: Int, packets: Int) throws -> Spread {
        let path = "/dev/shm/junction-bench-\(getpid())"
        let box = DeviceBox<SharedMemoryDevice>()
        let done = DispatchSemaphore(value: 0)
        Thread { box.value = try? SharedMemoryDevice(path: path); done.signal() }.start()
        usleep(20_000)
        let near = try SharedMemoryDevice(path: path)
        done.wait()
        guard let far = box.value.take() else { throw NICError.timeout("shm benchmark set-up") }
        return median { pump(near, far, size: size, packets: packets) }
    }

    func tapTransmit(size: Int, packets: Int) throws -> Double {
        let name = "jnqbt\(getpid() % 100_000)"
        let tap = try TapDevice(name: name)
        defer { _ = try? shell("ip", "link", "del", name) }
        try shell("ip", "link", "set", name, "up")
        var out = PacketBatch(capacity: Self.batch)
        var sent = 0
        let start = nowNanos()
        while sent < packets {
            tap.pool.allocate(Self.batch - out.count, into: &out)
            for i in 0..<out.count {
                try? out.setLength(size, at: i)
                out.withMutableBytes(at: i) { f in
                    MACAddress.broadcast.store(to: f.baseAddress!)
                    tap.info.mac.store(to: f.baseAddress! + 6)
                    f[12] = 0x88; f[13] = 0xB5
                }
            }
            sent += try tap.transmit(queue: 0, from: &out)
        }
        return Double(sent) / (nowNanos() - start) * 1e3
    }

    /// The kernel sends out of the TAP interface (an AF_PACKET socket on it, sendmmsg);
    /// we read the frames from the TAP descriptor.
    func tapReceive(size: Int, packets: Int) throws -> Spread {
        let name = "jnqbr\(getpid() % 100_000)"
        let tap = try TapDevice(name: name)
        defer { _ = try? shell("ip", "link", "del", name) }
        try shell("ip", "link", "set", name, "up")
        let tx = cnq_packet_socket(cnq_if_index(name), false)
        guard tx >= 0 else { throw NICError.system(call: "socket(AF_PACKET)", errno: -tx, detail: "benchmark") }
        defer { close(tx) }
        let stride = 2048
        let frames = UnsafeMutablePointer<UInt8>.allocate(capacity: stride * Self.batch)
        defer { frames.deallocate() }
        var lens = [UInt32](repeating: UInt32(size), count: Self.batch)
        for i in 0..<Self.batch {
            let f = frames + i * stride
            for k in 0..<6 { f[k] = 0xFF; f[6 + k] = 0x02 }
            f[12] = 0x88; f[13] = 0xB5
        }
        return median {
            var incoming = PacketBatch(capacity: Self.batch)
            var sent = 0, received = 0
            let start = nowNanos()
            var lastProgress = start
            while received < packets {
                if sent < packets {
                    let n = cnq_send_batch(tx, frames, stride, &lens, UInt32(Self.batch))
                    if n > 0 { sent += Int(n) }
                }
                let n = (try? tap.receive(queue: 0, into: &incoming, limit: Self.batch)) ?? 0
                received += n
                incoming.removeAll()
                let now = nowNanos()
                if n > 0 { lastProgress = now } else if sent >= packets && now - lastProgress > 20e6 { break }
            }
            return Double(received) / (nowNanos() - start) * 1e3
        }
    }

    /// AF_PACKET: sendmmsg on one end of the veth pair, recvmmsg on the other.
    func afPacket(_ veth: VethPair, size: Int, packets: Int) throws -> Spread {
        let tx = cnq_packet_socket(cnq_if_index(veth.a), false), rx = cnq_packet_socket(cnq_if_index(veth.b), true)
        guard tx >= 0, rx >= 0 else { throw NICError.system(call: "socket(AF_PACKET)", errno: -min(tx, rx), detail: "benchmark") }
        defer { close(tx); close(rx) }
        var rcvbuf: Int32 = 8 << 20
        setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &rcvbuf, 4)
        return median { mmsgPump(tx: tx, rx: rx, size: size, frame: true, packets: packets) }
    }

    /// UDP on loopback: datagrams whose frames would be `size` bytes (payload size - 42).
    func udp(size: Int, packets: Int) throws -> Spread {
        var fds: [Int32] = [0, 0]
        let r = cnq_udp_pair(&fds)
        guard r == 0 else { throw NICError.system(call: "socket(UDP)", errno: -r, detail: "benchmark") }
        defer { close(fds[0]); close(fds[1]) }
        return median { mmsgPump(tx: fds[0], rx: fds[1], size: size - 42, frame: false, packets: packets) }
    }

    func mmsgPump(tx: Int32, rx: Int32, size: Int, frame: Bool, packets: Int) -> Double {
        let stride = 2048
        let sendBuf = UnsafeMutablePointer<UInt8>.allocate(capacity: stride * Self.batch)
        let recvBuf = UnsafeMutablePointer<UInt8>.allocate(capacity: stride * Self.batch)
        defer { sendBuf.deallocate(); recvBuf.deallocate() }
        var lens = [UInt32](repeating: UInt32(size), count: Self.batch)
        var rlens = [UInt32](repeating: 0, count: Self.batch)
        for i in 0..<Self.batch where frame {
            let f = sendBuf + i * stride
            for k in 0..<12 { f[k] = k < 6 ? 0xFF : 0x02 }
            f[12] = 0x88; f[13] = 0xB5
        }
        var sent = 0, received = 0
        let start = nowNanos()
        var lastProgress = start
        while received < packets {
            if sent < packets {
                let n = cnq_send_batch(tx, sendBuf, stride, &lens, UInt32(Self.batch))
                if n > 0 { sent += Int(n) }
            }
            let n = cnq_recv_batch(rx, recvBuf, stride, stride, &rlens, UInt32(Self.batch))
            let now = nowNanos()
            if n > 0 { received += Int(n); lastProgress = now } else if sent >= packets && now - lastProgress > 20e6 { break }
        }
        return Double(received) / (nowNanos() - start) * 1e3
    }
}

/// Carries a noncopyable device from the thread that opened it.
final class DeviceBox<D: ~Copyable>: @unchecked Sendable {
    var value: D? = nil
}

/// A veth pair the benchmark creates in the root namespace and deletes when done.
final class VethPair {
    let a: String, b: String
    init() throws {
        a = "jnqbA\(getpid() % 100_000)"
        b = "jnqbB\(getpid() % 100_000)"
        try shell("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        for n in [a, b] {
            _ = try? shell("sysctl", "-qw", "net.ipv6.conf.\(n).disable_ipv6=1")
            try shell("ip", "link", "set", n, "up")
        }
    }
    deinit { _ = try? shell("ip", "link", "del", a) }
}

@discardableResult
func shell(_ args: String...) throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    if p.terminationStatus != 0 { throw NICError.system(call: args.joined(separator: " "), errno: EIO, detail: "exit \(p.terminationStatus)") }
    return p.terminationStatus
}
