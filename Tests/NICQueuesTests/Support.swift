// Support.swift: frame builders and helpers shared by the NICQueues tests.
import Foundation
import NICQueues
import Testing

/// An Ethernet frame: destination, source, EtherType, then `payload`.
func ethernetFrame(to dst: MACAddress, from src: MACAddress, type: UInt16, payload: [UInt8]) -> [UInt8] {
    dst.bytes + src.bytes + [UInt8(type >> 8), UInt8(type & 0xFF)] + payload
}

/// A test frame with a sequence number and a recognisable pattern, `size` bytes in all.
func numberedFrame(_ seq: UInt32, size: Int, to dst: MACAddress = .broadcast, from src: MACAddress) -> [UInt8] {
    var payload = withUnsafeBytes(of: seq.bigEndian) { Array($0) }
    while payload.count < size - 14 { payload.append(UInt8(truncatingIfNeeded: Int(seq) &+ payload.count)) }
    return ethernetFrame(to: dst, from: src, type: 0x88B5, payload: payload)   // local experimental EtherType
}

func sequenceNumber(of frame: [UInt8]) -> UInt32 {
    frame[14..<18].reduce(0) { $0 << 8 | UInt32($1) }
}

/// Receives until `count` frames arrived or `timeoutMs` passed without progress.
func receiveFrames(_ device: borrowing some NetworkDevice & ~Copyable, count: Int, queue: Int = 0,
                   timeoutMs: Int32 = 5000) throws -> [[UInt8]] {
    var out: [[UInt8]] = []
    var batch = PacketBatch(capacity: 32)
    while out.count < count {
        let n = try device.receive(queue: queue, into: &batch, limit: 32)
        if n == 0 {
            if try !device.waitForFrames(queue: queue, timeoutMs: timeoutMs) { break }
            continue
        }
        while let f = batch.popFirst() { out.append(f.bytes) }
    }
    return out
}

/// Transmits every frame, retrying while the queue is full; reclaims completions.
func transmitFrames(_ device: borrowing some NetworkDevice & ~Copyable, _ frames: [[UInt8]], queue: Int = 0) throws {
    var batch = PacketBatch(capacity: 32)
    var i = 0
    var stalls = 0
    while i < frames.count || !batch.isEmpty {
        while i < frames.count && !batch.isFull {
            batch.append(try device.pool.allocate(copying: frames[i]))
            i += 1
        }
        let sent = try device.transmit(queue: queue, from: &batch)
        _ = try device.reclaim(queue: queue)
        if sent == 0 {
            stalls += 1
            if stalls > 200_000 { throw TestFailure("transmit stalled with \(batch.count) frames left") }
            usleep(10)
        } else { stalls = 0 }
    }
    for _ in 0..<100 { if try device.reclaim(queue: queue) == 0 { break } }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// True when running as root (network tests need it).
let isRoot = getuid() == 0

/// Runs a command (for `ip`), throwing with its output when it fails.
@discardableResult
func sh(_ args: String...) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    if p.terminationStatus != 0 { throw TestFailure("\(args.joined(separator: " ")): \(text)") }
    return text
}

/// An ARP request: who has `targetIP`? tell `senderIP` at `mac`.
func arpRequest(from mac: MACAddress, senderIP: [UInt8], targetIP: [UInt8]) -> [UInt8] {
    var arp: [UInt8] = [0, 1, 8, 0, 6, 4, 0, 1]   // Ethernet, IPv4, sizes, request
    arp += mac.bytes + senderIP + [0, 0, 0, 0, 0, 0] + targetIP
    return ethernetFrame(to: .broadcast, from: mac, type: 0x0806, payload: arp)
}

/// The sender MAC of an ARP reply from `ip` to `mac`, if `frame` is one.
func arpReplySender(_ frame: [UInt8], from ip: [UInt8], to mac: MACAddress) -> MACAddress? {
    guard frame.count >= 42, frame[12] == 0x08, frame[13] == 0x06, frame[20] == 0, frame[21] == 2,
          Array(frame[28..<32]) == ip, Array(frame[32..<38]) == mac.bytes else { return nil }
    return MACAddress(Array(frame[22..<28]))
}

/// A name unique to this test process and call, for interfaces and namespaces.
func uniqueName(_ prefix: String) -> String {
    let n = nameCounter.add()
    return "\(prefix)\(getpid() % 100_000)\(n)"
}

final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func add(_ n: Int = 1) -> Int { lock.lock(); defer { lock.unlock() }; value += n; return value }
    var current: Int { lock.lock(); defer { lock.unlock() }; return value }
}
let nameCounter = Counter()

/// A third octet for test subnets, unlikely to meet another test run's.
func subnetOctet() -> UInt8 { UInt8(truncatingIfNeeded: (Int(getpid()) &* 7 &+ nameCounter.add()) % 200 + 20) }

/// A child process started with default signal dispositions and an empty signal mask
/// (the test runner blocks signals its children would otherwise inherit, which stops
/// tools like ping that pace themselves with SIGALRM).
struct CleanChild {
    let pid: pid_t

    init(_ args: [String]) throws {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd in 0...2 { posix_spawn_file_actions_addopen(&actions, Int32(fd), "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0) }
        let argv = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var p: pid_t = 0
        let r = posix_spawn(&p, args[0], &actions, &attr, argv, environ)
        if r != 0 { throw TestFailure("posix_spawn \(args[0]): \(String(cString: strerror(r)))") }
        pid = p
    }

    /// The exit status once it has exited, or nil while it runs.
    func poll() -> Int32? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
        return r < 0 ? -1 : nil
    }

    /// Kills it (SIGKILL) and reaps it.
    func kill() -> Int32 {
        if let s = poll() { return s }
        _ = Glibc.kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return 128 + SIGKILL
    }
}
