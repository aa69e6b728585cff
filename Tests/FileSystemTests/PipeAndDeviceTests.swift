// PipeAndDeviceTests.swift: pipes (blocking, non-blocking, PIPE_BUF atomicity, EPIPE,
// readiness), /dev nodes, concurrent HostFS I/O from many uthreads, and the io_uring
// fallback when the kernel refuses io_uring.
import FileSystem
import CJunction
import Foundation
import Synchronization
import SystemPackage
import Testing
import UThreads

final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ v: T) { value = v }
}

extension FileSystem.FileHandle {
    func write(_ bytes: [UInt8], nonBlocking: Bool = false) throws(Errno) -> Int {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 8)
        defer { buf.deallocate() }
        buf.copyBytes(from: bytes)
        return try write(from: UnsafeRawBufferPointer(rebasing: buf[..<bytes.count]), at: 0, nonBlocking: nonBlocking)
    }

    func read(_ count: Int, nonBlocking: Bool = false) throws(Errno) -> [UInt8] {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, count), alignment: 8)
        defer { buf.deallocate() }
        let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buf[..<count]), at: 0, nonBlocking: nonBlocking)
        return Array(buf[..<n])
    }
}

@Suite("Pipes", .timeLimit(.minutes(2)))
struct PipeTests {
    @Test("non-blocking ends: EAGAIN when empty or full, EOF after the writer closes, EPIPE after the reader closes")
    func nonBlocking() throws {
        var (r, w): (PipeReadEnd?, PipeWriteEnd?) = Pipe.makePair()
        #expect(throws: Errno.wouldBlock) { _ = try r!.read(10, nonBlocking: true) }
        #expect(r!.readiness == [])
        #expect(w!.readiness == [.writable])
        // Fill it with whole pages: 64 KiB, then EAGAIN.
        var total = 0
        while true {
            do { total += try w!.write([UInt8](repeating: 1, count: 4096), nonBlocking: true) } catch let e as Errno { #expect(e == .wouldBlock); break }
        }
        #expect(total == Pipe.defaultCapacity)
        // A write of at most PIPE_BUF bytes that does not fit whole is refused, not split.
        _ = try r!.read(1000)
        #expect(throws: Errno.wouldBlock) { try w!.write([UInt8](repeating: 2, count: 2000), nonBlocking: true) }
        #expect(try w!.write([UInt8](repeating: 2, count: 1000), nonBlocking: true) == 1000)
        #expect(r!.readiness == [.readable])
        #expect(w!.readiness == [])
        _ = try r!.read(Pipe.defaultCapacity)
        w = nil  // last writer closes
        #expect(try r!.read(10) == [])
        #expect(r!.readiness.contains(.hangUp))
        var (r2, w2): (PipeReadEnd?, PipeWriteEnd) = Pipe.makePair()
        r2 = nil  // the only reader closes
        _ = r2
        #expect(throws: Errno.brokenPipe) { _ = try w2.write([1, 2, 3]) }
        #expect(w2.readiness.contains(.error))
        r = nil
    }

    @Test("readiness observers fire when data arrives and when the writer closes")
    func observers() throws {
        var (r, w): (PipeReadEnd, PipeWriteEnd?) = Pipe.makePair()
        let seen = Mutex<[Readiness]>([])
        let token = r.addReadinessObserver { rd in seen.withLock { $0.append(rd) } }
        _ = try w!.write([1])
        w = nil
        r.removeReadinessObserver(token)
        let events = seen.withLock { $0 }
        #expect(events.first == [.readable])
        #expect(events.last == [.readable, .hangUp])
    }

    @Test("producer and consumer uthreads on different kthreads; writes up to PIPE_BUF stay whole")
    func acrossKThreads() throws {
        let (r, w) = Pipe.makePair()
        let received = try Runtime.run(RuntimeConfiguration(kthreads: 2)) { () -> [UInt8] in
            let writers = (0..<4).map { id in
                UThread.spawn {
                    // 4096-byte records of one repeated byte each: atomic, so never interleaved.
                    for _ in 0..<50 { _ = try! w.write([UInt8](repeating: UInt8(id + 1), count: Pipe.atomicWriteLimit)) }
                }
            }
            let reader = UThread.spawn { () -> [UInt8] in
                var all: [UInt8] = []
                while all.count < 4 * 50 * Pipe.atomicWriteLimit { all += try! r.read(10_000) }
                return all
            }
            for h in writers { h.join() }
            return reader.join()
        }
        #expect(received.count == 4 * 50 * 4096)
        for record in stride(from: 0, to: received.count, by: 4096) {
            let slice = received[record..<record + 4096]
            #expect(Set(slice).count == 1, "record at \(record) was interleaved")
        }
    }
}

@Suite("DevFS")
struct DevFSTests {
    @Test("null, zero, full, urandom behave like Linux's")
    func devices() throws {
        let vfs = VFS(root: MemFS(mode: 0o755))
        let ctx = try FileSystemContext(vfs: vfs, credentials: .root)
        try ctx.makeDirectory("/dev")
        try vfs.mount(DevFS(), at: "/dev")
        let null = try ctx.open("/dev/null", flags: .readWrite)
        #expect(try null.write(bytes: [1, 2, 3]) == 3)
        #expect(try null.read(count: 10) == [])
        let zero = try ctx.open("/dev/zero", flags: [])
        #expect(try zero.read(count: 8) == [UInt8](repeating: 0, count: 8))
        let full = try ctx.open("/dev/full", flags: .writeOnly)
        #expect(throws: Errno.noSpace) { try full.write(bytes: [1]) }
        let random = try ctx.open("/dev/urandom", flags: [])
        let a = try random.read(count: 32), b = try random.read(count: 32)
        #expect(a.count == 32 && a != b)
        let st = try ctx.status("/dev/null")
        #expect(st.kind == .characterDevice && st.rdev == (1 << 8 | 3) && st.permissions == 0o666)
        #expect(try ctx.open("/dev", flags: .directory).readDirectoryNames().contains("urandom"))
        #expect(throws: Errno.fileExists) { try ctx.open("/dev/null", flags: [.create, .exclusive, .writeOnly]) }
    }
}

@Suite("HostFS I/O", .serialized, .timeLimit(.minutes(3)))
struct HostIOTests {
    @Test("64 uthreads write and read back their own files through io_uring at once")
    func concurrentFiles() throws {
        let dir = hostScratch("conc")
        defer { removeTree(dir) }
        let rt = try Runtime(RuntimeConfiguration(kthreads: 2))
        let io = HostIO(runtime: rt)
        let fs = try HostFS(hostRoot: dir, io: io)
        let ctx = try FileSystemContext(vfs: VFS(root: fs), credentials: .root)
        let bad = rt.spawn { () -> Int in
            let handles = (0..<64).map { i in
                UThread.spawn { () -> Int in
                    let name = "f\(i)"
                    let f = try! ctx.open(name, flags: [.create, .readWrite])
                    for block in 0..<16 { _ = try! f.write(bytes: [UInt8](repeating: UInt8(i), count: 4096), at: Int64(block * 4096)) }
                    try! f.handle.sync()
                    var wrong = 0
                    for block in (0..<16).reversed() where try! f.read(count: 4096, at: Int64(block * 4096)) != [UInt8](repeating: UInt8(i), count: 4096) {
                        wrong += 1
                    }
                    return wrong
                }
            }
            return handles.reduce(0) { $0 + $1.join() }
        }.join()
        #expect(bad == 0)
        let stats = io.statistics
        // Each file's open (O_CREAT), 16 writes and fsync go through the ring; its reads
        // of what the page cache holds are direct preadv2(RWF_NOWAIT) calls (HostFS).
        #expect(stats.completed >= 64 * 18)
        #expect(stats.batches < stats.submitted, "requests were batched: \(stats)")
        // The files really are on the host.
        #expect((try? FileManager.default.contentsOfDirectory(atPath: dir).count) == 64)
        rt.shutdown()
    }

    @Test("when a seccomp policy forbids io_uring, HostFS says so once and falls back to direct calls")
    func fallback() async {
        // In a child process: the seccomp filter cannot be removed again.
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            guard cj_seccomp_deny(425 /* io_uring_setup */, EPERM) == 0 else { exit(3) }
            let rt = try! Runtime(RuntimeConfiguration(kthreads: 1))
            let io = HostIO(runtime: rt)
            guard case .direct = io.mode else { exit(4) }
            _ = HostIO(runtime: rt)  // a second one must not repeat the warning
            let dir = hostScratch("fallback")
            defer { removeTree(dir) }
            let ctx = try! FileSystemContext(vfs: VFS(root: try! HostFS(hostRoot: dir, io: io)), credentials: .root)
            let ok = rt.spawn { () -> Bool in
                let f = try! ctx.open("x", flags: [.create, .readWrite])
                _ = try! f.write(bytes: [7, 8, 9])
                return (try? f.read(count: 3, at: 0)) == [7, 8, 9]
            }.join()
            rt.shutdown()
            exit(ok ? 0 : 5)
        }
        let text = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(text.contains("io_uring is unavailable (io_uring_setup: Operation not permitted)"))
        #expect(text.components(separatedBy: "io_uring is unavailable").count == 2, "warned once: \(text)")
    }
}
