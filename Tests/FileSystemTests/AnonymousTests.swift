// AnonymousTests.swift: files without a path: eventfd counters (plain and semaphore, limits,
// blocking and EINTR), and the nodes fstat sees.
import FileSystem
import Foundation
import SystemPackage
import Testing
import UThreads

@Suite("Anonymous files", .timeLimit(.minutes(1)))
struct AnonymousTests {
    @Test("eventfd: reads return and reset the counter (or 1 as a semaphore); limits; EAGAIN")
    func eventCounter() throws {
        let e = EventCounter(initial: 2, semaphore: false)
        func value(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } }
        func word(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
        #expect(e.readiness == [.readable, .writable])
        #expect(try e.write(word(5)) == 8)
        #expect(value(try e.read(8)) == 7)
        #expect(throws: Errno.wouldBlock) { _ = try e.read(8, nonBlocking: true) }
        #expect(throws: Errno.invalidArgument) { _ = try e.read(4) }
        #expect(throws: Errno.invalidArgument) { _ = try e.write(word(UInt64.max)) }
        #expect(try e.write(word(EventCounter.maximum)) == 8)
        #expect(throws: Errno.wouldBlock) { _ = try e.write(word(1), nonBlocking: true) }
        #expect(!e.readiness.contains(.writable))
        let s = EventCounter(initial: 2, semaphore: true)
        #expect(value(try s.read(8)) == 1)
        #expect(value(try s.read(8)) == 1)
        #expect(throws: Errno.wouldBlock) { _ = try s.read(8, nonBlocking: true) }
    }

    @Test("a blocked eventfd read parks the uthread, wakes on a write, and ends with EINTR when interrupted")
    func eventCounterBlocking() throws {
        let (got, interrupted) = try Runtime.run { () -> (UInt64, Bool) in
            let e = EventCounter(initial: 0, semaphore: false)
            let reader = UThread.spawn { () -> UInt64 in
                let bytes = (try? e.read(8)) ?? []
                return bytes.count == 8 ? bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } : 0
            }
            UThread.sleep(for: .milliseconds(5))
            _ = try? e.write(withUnsafeBytes(of: UInt64(42)) { Array($0) })
            let v = reader.join()
            let blocked = UThread.spawn { () -> Bool in
                do throws(Errno) { _ = try e.read(8); return false } catch { return error == .interrupted }
            }
            UThread.sleep(for: .milliseconds(5))
            blocked.uthread.interrupt()
            return (v, blocked.join())
        }
        #expect(got == 42)
        #expect(interrupted)
    }

    @Test("anonymous nodes: a pipe is a FIFO, a socket a socket, an anonymous inode has no type bits")
    func nodes() throws {
        #expect(try AnonymousNode.pipe().status().mode & 0o170000 == 0o010000)
        #expect(try AnonymousNode.socket().status().mode & 0o170000 == 0o140000)
        #expect(try AnonymousNode.anonymousInode().status().mode == 0o600)
        #expect(try AnonymousNode.pipe().status().inode != AnonymousNode.pipe().status().inode)
    }
}
