// FilesSuite.swift: `junction-bench files`: 4 KiB random reads of a host file by 64
// uthreads through HostFS (io_uring) beside 64 pthreads and one thread doing pread, and
// MemFS small/large file I/O beside the kernel's tmpfs.
import ArgumentParser
import FileSystem
import Foundation
import Synchronization
import SystemPackage
import UThreads

struct FilesSuite: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "files",
                                                    abstract: "HostFS and MemFS versus the kernel.")
    @OptionGroup var options: SuiteOptions

    static let fileSize = 64 << 20
    static let block = 4096
    static let workers = 64

    func run() throws {
        let o = options
        var results: [BenchResult] = []
        let dir = "/tmp/junction-bench-files-\(getpid())"
        mkdir(dir, 0o755)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let perWorker = o.iterations(4000)
        let total = perWorker * Self.workers
        if o.wants("random") {
            let path = dir + "/data"
            let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            for i in 0..<(Self.fileSize >> 20) {
                for j in stride(from: 0, to: chunk.count, by: 4096) { chunk[j] = UInt8(truncatingIfNeeded: i &+ j) }
                _ = chunk.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(i << 20)) }
            }
            fsync(fd)
            close(fd)
            let hostfs = try repeated(3) { try hostFSRandomReads(dir: dir, perWorker: perWorker) }
            let pthreads = repeated(3) { pthreadRandomReads(path: path, threads: Self.workers, perThread: perWorker) }
            let single = repeated(3) { pthreadRandomReads(path: path, threads: 1, perThread: total) }
            results.append(BenchResult(name: "4 KiB random reads, 64 uthreads via HostFS (io_uring, 2 kthreads)",
                                       unit: "reads/s", spread: hostfs,
                                       peers: ["kernel: 64 pthreads pread": pthreads, "kernel: 1 thread pread": single],
                                       lowerIsBetter: false))
        }
        if o.wants("memfs") {
            let shm = "/dev/shm/junction-bench-\(getpid())"
            mkdir(shm, 0o755)
            defer { try? FileManager.default.removeItem(atPath: shm) }
            let small = o.iterations(20000)
            results.append(BenchResult(name: "MemFS small file: create, write 4 KiB, close", unit: "files/s",
                                       spread: repeated(3) { memFSSmallWrites(small) },
                                       peers: ["kernel tmpfs (/dev/shm)": repeated(3) { tmpfsSmallWrites(shm, small) }], lowerIsBetter: false))
            results.append(BenchResult(name: "MemFS small file: open, read 4 KiB, close", unit: "files/s",
                                       spread: repeated(3) { memFSSmallReads(small) },
                                       peers: ["kernel tmpfs (/dev/shm)": repeated(3) { tmpfsSmallReads(shm, small) }], lowerIsBetter: false))
            let mb = o.iterations(256)
            results.append(BenchResult(name: "MemFS large file: write \(mb) MiB in 1 MiB writes", unit: "MiB/s",
                                       spread: repeated(3) { memFSLarge(mb, write: true) },
                                       peers: ["kernel tmpfs (/dev/shm)": repeated(3) { tmpfsLarge(shm, mb, write: true) }], lowerIsBetter: false))
            results.append(BenchResult(name: "MemFS large file: read \(mb) MiB in 1 MiB reads", unit: "MiB/s",
                                       spread: repeated(3) { memFSLarge(mb, write: false) },
                                       peers: ["kernel tmpfs (/dev/shm)": repeated(3) { tmpfsLarge(shm, mb, write: false) }], lowerIsBetter: false))
        }
        o.emit(SuiteReport(suite: "files", results: results))
    }

    // MARK: HostFS

    func hostFSRandomReads(dir: String, perWorker: Int) throws -> Double {
        let rt = try Runtime(RuntimeConfiguration(kthreads: 2))
        defer { rt.shutdown() }
        let io = HostIO(runtime: rt)
        let ctx = try FileSystemContext(vfs: VFS(root: try HostFS(hostRoot: dir, io: io)), credentials: .root)
        let blocks = Self.fileSize / Self.block
        return rt.spawn { () -> Double in
            let file = try! ctx.open("data", flags: [])
            let start = nowNanos()
            let hs = (0..<Self.workers).map { w in
                UThread.spawn {
                    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.block, alignment: 4096)
                    defer { buf.deallocate() }
                    var rng = UInt64(w + 1) &* 0x9E37_79B9_7F4A_7C15
                    for _ in 0..<perWorker {
                        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
                        let at = Int64(Int(rng % UInt64(blocks)) * Self.block)
                        _ = try! file.read(into: buf, at: at)
                    }
                }
            }
            for h in hs { h.join() }
            return Double(Self.workers * perWorker) / ((nowNanos() - start) / 1e9)
        }.join()
    }

    func pthreadRandomReads(path: String, threads: Int, perThread: Int) -> Double {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        let blocks = Self.fileSize / Self.block
        let start = nowNanos()
        let ts = (0..<threads).map { t in
            startPThread {
                let buf = UnsafeMutableRawPointer.allocate(byteCount: Self.block, alignment: 4096)
                defer { buf.deallocate() }
                var rng = UInt64(t + 1) &* 0x9E37_79B9_7F4A_7C15
                for _ in 0..<perThread {
                    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
                    _ = pread(fd, buf, Self.block, off_t(Int(rng % UInt64(blocks)) * Self.block))
                }
            }
        }
        for t in ts { pthread_join(t, nil) }
        return Double(threads * perThread) / ((nowNanos() - start) / 1e9)
    }

    // MARK: MemFS versus tmpfs

    func memContext() -> FileSystemContext {
        try! FileSystemContext(vfs: VFS(root: MemFS(mode: 0o755)), credentials: .root)
    }

    func memFSSmallWrites(_ n: Int) -> Double {
        let ctx = memContext()
        let data = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.block, alignment: 64)
        defer { data.deallocate() }
        data.initializeMemory(as: UInt8.self, repeating: 7)
        let start = nowNanos()
        for i in 0..<n {
            let f = try! ctx.open("f\(i % 1000)", flags: [.create, .writeOnly, .truncate])
            _ = try! f.write(from: UnsafeRawBufferPointer(data))
        }
        return Double(n) / ((nowNanos() - start) / 1e9)
    }

    func memFSSmallReads(_ n: Int) -> Double {
        let ctx = memContext()
        let data = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.block, alignment: 64)
        defer { data.deallocate() }
        for i in 0..<1000 {
            let f = try! ctx.open("f\(i)", flags: [.create, .writeOnly])
            _ = try! f.write(from: UnsafeRawBufferPointer(data))
        }
        let start = nowNanos()
        for i in 0..<n {
            let f = try! ctx.open("f\(i % 1000)", flags: [])
            _ = try! f.read(into: data)
        }
        return Double(n) / ((nowNanos() - start) / 1e9)
    }

    func tmpfsSmallWrites(_ dir: String, _ n: Int) -> Double {
        let data = UnsafeMutableRawPointer.allocate(byteCount: Self.block, alignment: 64)
        defer { data.deallocate() }
        let start = nowNanos()
        for i in 0..<n {
            let fd = open("\(dir)/f\(i % 1000)", O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
            _ = write(fd, data, Self.block)
            close(fd)
        }
        return Double(n) / ((nowNanos() - start) / 1e9)
    }

    func tmpfsSmallReads(_ dir: String, _ n: Int) -> Double {
        let data = UnsafeMutableRawPointer.allocate(byteCount: Self.block, alignment: 64)
        defer { data.deallocate() }
        let start = nowNanos()
        for i in 0..<n {
            let fd = open("\(dir)/f\(i % 1000)", O_RDONLY | O_CLOEXEC)
            _ = read(fd, data, Self.block)
            close(fd)
        }
        return Double(n) / ((nowNanos() - start) / 1e9)
    }

    func memFSLarge(_ mb: Int, write: Bool) -> Double {
        let ctx = memContext()
        let data = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { data.deallocate() }
        data.initializeMemory(as: UInt8.self, repeating: 3)
        let f = try! ctx.open("big", flags: [.create, .readWrite])
        if !write { for _ in 0..<mb { _ = try! f.write(from: UnsafeRawBufferPointer(data)) } }
        let start = nowNanos()
        for i in 0..<mb {
            if write { _ = try! f.write(from: UnsafeRawBufferPointer(data)) } else { _ = try! f.read(into: data, at: Int64(i << 20)) }
        }
        return Double(mb) / ((nowNanos() - start) / 1e9)
    }

    func tmpfsLarge(_ dir: String, _ mb: Int, write: Bool) -> Double {
        let data = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { data.deallocate() }
        memset(data, 3, 1 << 20)
        let path = "\(dir)/big-\(write)"
        let fd = open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0o644)
        defer { close(fd); unlink(path) }
        if !write { for i in 0..<mb { _ = pwrite(fd, data, 1 << 20, off_t(i << 20)) } }
        let start = nowNanos()
        for i in 0..<mb {
            if write { _ = pwrite(fd, data, 1 << 20, off_t(i << 20)) } else { _ = pread(fd, data, 1 << 20, off_t(i << 20)) }
        }
        return Double(mb) / ((nowNanos() - start) / 1e9)
    }
}
