// TCPServerMemoryTests.swift: a server's memory after its connections are gone (issue
// 21): echo-server over shm serves rounds of 800 concurrent connections, all closed
// after each round; its resident size must come back to within 10% of what it was
// before the first (a leak, or memory kept and never returned, grows it round by round).
import Foundation
import NICQueues
@testable import NetStack
import Synchronization
import Testing
import TestSupport
import UThreads

/// VmRSS of `pid` in KiB (0 if unreadable).
func residentKiB(_ pid: pid_t) -> Int {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
    }
    return 0
}

@Suite("TCP server memory", .serialized, .timeLimit(.minutes(5)))
struct TCPServerMemoryTests {
    static let rounds = 9
    static let connections = 800

    @Test("echo-server's resident size returns to within 10% of its start after rounds of 800 connections")
    func residentSizeAfterRounds() throws {
        var serverPID: pid_t = 0
        var before = 0
        var after: [Int] = []
        var final = 0
        var returned = false
        let failures = Mutex<[String]>([])
        let (out, _) = try withTCPEchoServerOverShm(faults: nil, serverArguments: ["--backlog", "1024"],
                                                    serverStarted: { pid in serverPID = pid; before = residentKiB(pid) }) {
            interface, runtime in
            for round in 0..<Self.rounds {
                let established = Atomic<Int>(0)
                let handles = (0..<Self.connections).map { i in
                    runtime.spawn { () -> Void in
                        var config = testTCPConfiguration()
                        config.timeWaitDuration = .milliseconds(100)
                        let c: TCPSocket
                        do { c = try TCPSocket.connect(interface: interface, to: SocketAddress(IPv4Address(10, 9, 0, 9), 7), configuration: config) } catch {
                            failures.withLock { $0.append("round \(round) connect \(i): \(error)") }
                            established.add(1, ordering: .relaxed)
                            return
                        }
                        c.receiveTimeout = .seconds(60)
                        established.add(1, ordering: .relaxed)
                        // Enough to fill the server's buffers a little: 16 KiB each way.
                        let message = [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: 16384)
                        var buffer = [UInt8](repeating: 0, count: 16384)
                        var got = 0
                        if (try? c.write(message)) == message.count {
                            while got < message.count, let n = try? c.read(into: &buffer), n > 0 { got += n }
                        }
                        if got != message.count { failures.withLock { $0.append("round \(round) echo \(i): \(got) bytes") } }
                        // All open at once before any closes.
                        while established.load(ordering: .relaxed) < Self.connections { UThread.sleep(for: .milliseconds(20)) }
                        c.close()
                    }
                }
                for h in handles { h.join() }
                _ = eventually(seconds: 60) { interface.tcpConnectionCount == 0 }
                #expect(interface.tcpConnectionCount == 0)
                after.append(residentKiB(serverPID))
            }
            // The server's last frees may trail our view of the closes: waited for, bounded.
            returned = eventually(seconds: 10) { final = residentKiB(serverPID); return Double(final) <= Double(before) * 1.1 }
        }
        let f = failures.withLock { $0 }
        #expect(f.isEmpty, "\(f.prefix(10))")
        #expect(summaryValue(out, "tcp.connections") == Self.rounds * Self.connections, "\(out)")
        print("echo-server VmRSS: before \(before) KiB, after each round \(after) KiB, at the end \(final) KiB")
        #expect(before > 0)
        #expect(returned, "before \(before) KiB, after each round \(after) KiB, at the end \(final) KiB")
    }
}
