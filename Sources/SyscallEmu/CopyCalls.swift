// CopyCalls.swift: copy_file_range (coreutils' cat and cp try it first): between two
// regular files, bytes go through a libOS buffer at the given offsets or the files'
// own; anything else is EINVAL, as Linux says for pipes and sockets.
import CJunction
import FileSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension Handlers {
    // Tunables: the most one call copies (Linux caps a call near 2 GiB; a smaller chunk
    // keeps one call's buffer small).
    static let copyChunk = 1 << 20

    static func registerCopy(_ d: Dispatcher) {
        d.register(326, "copy_file_range") { f, p throws(LinuxError) in
            guard f.a5 == 0 else { throw LinuxError(.EINVAL) }
            let input = try p.fd(f.a0), output = try p.fd(f.a2)
            guard input.flags.canRead, output.flags.canWrite, !output.flags.contains(.append) else { throw LinuxError(.EBADF) }
            guard input.location.node.kind == .regular, output.location.node.kind == .regular else { throw LinuxError(.EINVAL) }
            let length = Int(min(f.a4, UInt64(copyChunk)))
            if length == 0 { return 0 }
            var inOffset: Int64? = nil, outOffset: Int64? = nil
            if f.a1 != 0 { inOffset = try UserMemory.load(Int64.self, at: f.a1) }
            if f.a3 != 0 { outOffset = try UserMemory.load(Int64.self, at: f.a3) }
            if (inOffset ?? 0) < 0 || (outOffset ?? 0) < 0 { throw LinuxError(.EINVAL) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 16)
            defer { buffer.deallocate() }
            let got = try fsCall { () throws(Errno) -> Int in
                if let o = inOffset { return try input.read(into: buffer, at: o) }
                return try input.read(into: buffer)
            }
            if got == 0 { return 0 }
            let data = UnsafeRawBufferPointer(rebasing: buffer[0..<got])
            let put = try fsCall { () throws(Errno) -> Int in
                if let o = outOffset { return try output.write(from: data, at: o) }
                return try output.write(from: data)
            }
            if let o = inOffset { try UserMemory.store(o + Int64(put), at: f.a1) }
            if let o = outOffset { try UserMemory.store(o + Int64(put), at: f.a3) }
            return Int64(put)
        }
    }
}
