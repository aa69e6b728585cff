// SharedMemoryTests.swift: the shared-memory link between this process and a nic-peer
// process: both directions, contents and counts, a peer that dies, a peer that never comes.
import Foundation
import NICQueues
import TestSupport
import Testing

/// Starts nic-peer with `args`; its stdout is collected.
func startPeer(_ args: [String], in directory: String? = nil) throws -> (Process, Pipe) {
    let p = Process()
    if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
    p.executableURL = URL(fileURLWithPath: siblingExecutable("nic-peer"))
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    try runUnmasked(p)
    return (p, out)
}

func finish(_ p: Process, _ out: Pipe) -> (status: Int32, output: String) {
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
    return (status, String(decoding: data, as: UTF8.self))
}

func linkPath(_ tag: String) -> String { "/dev/shm/jnq-test-\(getpid())-\(tag)" }

func shmConfiguration() -> SharedMemoryConfiguration {
    var c = SharedMemoryConfiguration()
    c.connectTimeout = .seconds(20)
    c.buffersPerSide = 2048
    return c
}

@Suite struct SharedMemoryTests {
    @Test(arguments: [64, 1514])
    func echoThroughAnotherProcess(size: Int) throws {
        let path = linkPath("echo\(size)")
        let total = 3000
        let (peer, out) = try startPeer(["echo", "shm:\(path)", "\(total)"])
        defer { if peer.isRunning { peer.terminate() } }
        let device = try SharedMemoryDevice(path: path, configuration: shmConfiguration())
        let mac = device.info.mac
        var echoed: [[UInt8]] = []
        for chunk in stride(from: 0, to: total, by: 250) {
            let frames = (chunk..<min(total, chunk + 250)).map { numberedFrame(UInt32($0), size: size, from: mac) }
            try transmitFrames(device, frames)
            echoed += try receiveFrames(device, count: frames.count)
        }
        #expect(echoed.count == total)
        for (i, f) in echoed.enumerated() {
            var expected = numberedFrame(UInt32(i), size: size, from: mac)
            for k in 0..<6 { expected.swapAt(k, 6 + k) }
            if f != expected { Issue.record("frame \(i) differs"); break }
        }
        #expect(device.statistics.txPackets == UInt64(total) && device.statistics.rxPackets == UInt64(total))
        #expect(device.statistics.rxBytes == UInt64(total * size))
        let r = finish(peer, out)
        #expect(r.status == 0 && r.output == "echoed \(total)\n")
        _ = try device.reclaim(queue: 0)
        #expect(device.pool.freeCount == device.pool.count)
    }

    @Test func framesFromThePeerArriveInOrder() throws {
        let path = linkPath("send")
        let (peer, out) = try startPeer(["send", "shm:\(path)", "20000", "100"])
        defer { if peer.isRunning { peer.terminate() } }
        let device = try SharedMemoryDevice(path: path, configuration: shmConfiguration())
        let frames = try receiveFrames(device, count: 20000)
        #expect(frames.count == 20000)
        #expect(frames.map(sequenceNumber) == (0..<20000).map(UInt32.init))
        #expect(frames.allSatisfy { $0.count == 100 })
        let r = finish(peer, out)
        #expect(r.status == 0 && r.output == "sent 20000\n")
    }

    @Test func aPeerThatDiesDoesNotHangUs() throws {
        let path = linkPath("die")
        let (peer, out) = try startPeer(["die", "shm:\(path)", "100"])
        defer { if peer.isRunning { peer.terminate() } }
        let device = try SharedMemoryDevice(path: path, configuration: shmConfiguration())
        // What it sent before dying is still delivered...
        let frames = try receiveFrames(device, count: 100)
        #expect(frames.count == 100)
        #expect(finish(peer, out).status == 128 + SIGKILL)
        // ...then waiting and sending report the dead peer instead of hanging.
        #expect(throws: NICError.peerGone("shm:\(path)")) {
            for _ in 0..<100 { _ = try device.waitForFrames(timeoutMs: 100) }
        }
        let alive = device.peerAlive
        #expect(!alive)
        #expect(throws: NICError.peerGone("shm:\(path)")) {
            try transmitFrames(device, (0..<5000).map { numberedFrame(UInt32($0), size: 60, from: device.info.mac) })
        }
    }

    @Test func relativeAndAbsolutePathsMeet() throws {
        let name = "jnq-test-\(getpid())-relative"
        let (peer, out) = try startPeer(["send", "shm:\(name)", "10", "64"], in: "/dev/shm")
        defer { if peer.isRunning { peer.terminate() } }
        let device = try SharedMemoryDevice(path: "/dev/shm/\(name)", configuration: shmConfiguration())
        #expect(try receiveFrames(device, count: 10).count == 10)
        #expect(finish(peer, out).status == 0)
    }

    @Test func noPeerIsATimeoutNotAHang() throws {
        var c = shmConfiguration()
        c.connectTimeout = .milliseconds(200)
        let path = linkPath("alone")
        #expect(throws: NICError.timeout("shm:\(path): no peer joined within 0.2 seconds")) {
            _ = try SharedMemoryDevice(path: path, configuration: c)
        }
        #expect(throws: NICError.noSuchDevice("/nonexistent-dir/x", detail: "open: No such file or directory")) {
            _ = try SharedMemoryDevice(path: "/nonexistent-dir/x", configuration: c)
        }
    }
}
