// SpliceCalls.swift: splice(2), tee(2) and vmsplice(2) on the libOS's pipes: bytes move through
// a bounce buffer (no page gifting), one pipe-sized transfer per call, as Linux returns.
import CJunction
import FileSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension Handlers {
    static let spliceNonBlock: UInt64 = 2

    static func isPipe(_ file: OpenFile) -> Bool {
        file.handle is PipeReadEnd || file.handle is PipeWriteEnd || file.handle is PipeBothEnds
            || file.location.node.kind == .fifo
    }

    static func registerSplice(_ d: Dispatcher) {
        d.register(.splice) { f, p throws(LinuxError) in try splice(f, p) }
        // tee(fd_in, fd_out, len, flags): both the libOS's pipes; the bytes stay in fd_in.
        d.register(.tee) { f, p throws(LinuxError) in
            let input = try p.fd(f.a0), output = try p.fd(f.a1)
            guard input.flags.canRead, output.flags.canWrite else { throw LinuxError(.EBADF) }
            guard let from = pipeOf(input), pipeOf(output) != nil, from !== pipeOf(output) else { throw LinuxError(.EINVAL) }
            let length = Int(clamping: f.a2)
            if length == 0 { return 0 }
            let nonBlocking = f.a3 & spliceNonBlock != 0
            if nonBlocking, !output.handle.readiness.contains(.writable) { throw LinuxError(.EAGAIN) }
            let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: min(length, copyChunk), alignment: 16)
            defer { chunk.deallocate() }
            let n = try fsCall { () throws(Errno) in try from.peek(into: chunk, nonBlocking: nonBlocking || input.flags.contains(.nonBlocking)) }
            if n == 0 { return 0 }
            return Int64(try fsCall { () throws(Errno) in
                try output.handle.write(from: UnsafeRawBufferPointer(rebasing: chunk[..<n]), at: 0, nonBlocking: false)
            })
        }
        d.register(.vmsplice) { f, p throws(LinuxError) in
            let file = try p.fd(f.a0)
            guard isPipe(file) else { throw LinuxError(.EBADF) }
            guard f.a3 & ~UInt64(0xf) == 0 else { throw LinuxError(.EINVAL) }
            // Reading a pipe's data into memory or writing memory into the pipe: readv or
            // writev on it (SPLICE_F_GIFT changes nothing here).
            return try vectored(f, p, write: file.flags.canWrite)
        }
    }

    /// splice(fd_in, off_in, fd_out, off_out, len, flags): one end must be a pipe.
    static func splice(_ f: SyscallFrame, _ p: LinuxProcess) throws(LinuxError) -> Int64 {
        let input = try p.fd(f.a0), output = try p.fd(f.a2)
        guard input.flags.canRead, output.flags.canWrite else { throw LinuxError(.EBADF) }
        let inPipe = isPipe(input), outPipe = isPipe(output)
        guard inPipe || outPipe else { throw LinuxError(.EINVAL) }
        if (inPipe && f.a1 != 0) || (outPipe && f.a3 != 0) { throw LinuxError(.ESPIPE) }
        if output.flags.contains(.append) { throw LinuxError(.EINVAL) }
        let length = Int(clamping: f.a4)
        if length == 0 { return 0 }
        let nonBlocking = f.a5 & spliceNonBlock != 0
        var inOff: Int64? = f.a1 == 0 ? nil : try UserMemory.load(Int64.self, at: f.a1)
        var outOff: Int64? = f.a3 == 0 ? nil : try UserMemory.load(Int64.self, at: f.a3)
        if let o = inOff, o < 0 { throw LinuxError(.EINVAL) }
        if let o = outOff, o < 0 { throw LinuxError(.EINVAL) }
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: min(length, copyChunk), alignment: 16)
        defer { chunk.deallocate() }
        // Into a pipe that cannot take the bytes without blocking: EAGAIN first.
        if outPipe, nonBlocking, !output.handle.readiness.contains(.writable) { throw LinuxError(.EAGAIN) }
        let n = try fsCall { () throws(Errno) -> Int in
            if let o = inOff { return try input.read(into: chunk, at: o) }
            if inPipe { return try input.handle.read(into: chunk, at: 0, nonBlocking: nonBlocking || input.flags.contains(.nonBlocking)) }
            return try input.read(into: chunk)
        }
        if n == 0 { return 0 }
        let data = UnsafeRawBufferPointer(rebasing: chunk[..<n])
        let w = try fsCall { () throws(Errno) -> Int in
            if let o = outOff { return try output.write(from: data, at: o) }
            if outPipe { return try output.handle.write(from: data, at: 0, nonBlocking: false) }
            return try output.write(from: data)
        }
        if let o = inOff { inOff = o + Int64(n); try UserMemory.store(inOff!, at: f.a1) }
        if let o = outOff { outOff = o + Int64(w); try UserMemory.store(outOff!, at: f.a3) }
        return Int64(w)
    }
}
