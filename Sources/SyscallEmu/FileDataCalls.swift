// FileDataCalls.swift: the file calls beyond read and write: close_range, positional
// vectored I/O (preadv, pwritev, preadv2, pwritev2), copy_file_range, fallocate,
// fadvise64, readahead, sync_file_range, mknod/mknodat (FIFOs and regular files).
import CJunction
import FileSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension Handlers {
    // Tunables: the copy chunk of copy_file_range and splice.
    static let copyChunk = 1 << 16

    static func registerFileData(_ d: Dispatcher) {
        d.register(.close_range) { f, p throws(LinuxError) in
            let first = UInt32(truncatingIfNeeded: f.a0), last = UInt32(truncatingIfNeeded: f.a1)
            let unshare: UInt64 = 2, cloexec: UInt64 = 4
            guard f.a2 & ~(unshare | cloexec) == 0, first <= last else { throw LinuxError(.EINVAL) }
            for (fd, _) in p.descriptors.snapshot() where UInt32(fd) >= first && UInt32(fd) <= last {
                if f.a2 & cloexec != 0 { try? p.descriptors.setCloseOnExec(fd, true) } else { try? p.descriptors.close(fd) }
            }
            return 0
        }
        d.register(.preadv) { f, p throws(LinuxError) in
            try positionalVectored(f, p, write: false, offset: Int64(bitPattern: f.a3), flags: 0, allowCurrent: false)
        }
        d.register(.pwritev) { f, p throws(LinuxError) in
            try positionalVectored(f, p, write: true, offset: Int64(bitPattern: f.a3), flags: 0, allowCurrent: false)
        }
        d.register(.preadv2) { f, p throws(LinuxError) in
            try positionalVectored(f, p, write: false, offset: Int64(bitPattern: f.a3), flags: f.a5, allowCurrent: true)
        }
        d.register(.pwritev2) { f, p throws(LinuxError) in
            try positionalVectored(f, p, write: true, offset: Int64(bitPattern: f.a3), flags: f.a5, allowCurrent: true)
        }
        d.register(.copy_file_range) { f, p throws(LinuxError) in try copyFileRange(f, p) }
        d.register(.fallocate) { f, p throws(LinuxError) in try fallocate(f, p) }
        d.register(.fadvise64) { f, p throws(LinuxError) in
            let file = try p.fd(f.a0)
            if file.location.node.kind == .fifo || !file.handle.isSeekable { throw LinuxError(.ESPIPE) }
            guard f.a3 <= 5, Int64(bitPattern: f.a2) >= 0 else { throw LinuxError(.EINVAL) }
            if let host = file.handle.hostDescriptor, file.location.node.kind == .regular {
                return try hostCall(221, UInt64(host), f.a1, f.a2, f.a3)
            }
            return 0  // MemFS data is in memory already: advice changes nothing
        }
        d.register(.readahead) { f, p throws(LinuxError) in
            let file = try p.fd(f.a0)
            guard file.flags.canRead else { throw LinuxError(.EBADF) }
            guard file.location.node.kind == .regular else { throw LinuxError(.EINVAL) }
            if let host = file.handle.hostDescriptor { return try hostCall(187, UInt64(host), f.a1, f.a2) }
            return 0
        }
        d.register(.sync_file_range) { f, p throws(LinuxError) in
            let file = try p.fd(f.a0)
            guard f.a3 & ~UInt64(7) == 0, Int64(bitPattern: f.a1) >= 0, Int64(bitPattern: f.a2) >= 0 else { throw LinuxError(.EINVAL) }
            if file.location.node.kind == .fifo { throw LinuxError(.ESPIPE) }
            if let host = file.handle.hostDescriptor, file.location.node.kind == .regular {
                return try hostCall(277, UInt64(host), f.a1, f.a2, f.a3)
            }
            return 0
        }
        // statfs through the VFS: the host's for HostFS (by host path or descriptor),
        // a tmpfs's for MemFS and the libOS's other nodes.
        d.register(.statfs) { f, p throws(LinuxError) in
            let path = try UserMemory.string(f.a0)
            let loc = try fsCall { () throws(Errno) in try p.fs.resolve(path) }
            return try statfs(loc, hostFD: nil, out: f.a1)
        }
        d.register(.fstatfs) { f, p throws(LinuxError) in
            let file = try p.fd(f.a0)
            return try statfs(file.location, hostFD: file.handle.hostDescriptor, out: f.a1)
        }
        // fchmod/fchown of a host file go by its descriptor (it may have no name left:
        // unlinked, O_TMPFILE); the instance's credentials decide as Linux would.
        d.register(.fchmod) { f, p throws(LinuxError) in
            let file = try p.fd(f.a0)
            guard let fd = file.handle.hostDescriptor, file.location.node.kind == .regular || file.handle is MemfdHandle else {
                try fsCall { () throws(Errno) in try p.fs.changeMode(file.location, mode: UInt32(truncatingIfNeeded: f.a1) & 0o7777) }
                return 0
            }
            let cred = p.fs.credentials
            if cred.uid != 0, try status(of: file).uid != cred.uid { throw LinuxError(.EPERM) }
            return try hostCall(91, UInt64(fd), f.a1 & 0o7777)
        }
        d.register(.fchown) { f, p throws(LinuxError) in
            let file = try p.fd(f.a0)
            guard let fd = file.handle.hostDescriptor, file.location.node.kind == .regular || file.handle is MemfdHandle else {
                func owner(_ v: UInt64) -> UInt32? { UInt32(truncatingIfNeeded: v) == UInt32.max ? nil : UInt32(truncatingIfNeeded: v) }
                try fsCall { () throws(Errno) in try p.fs.changeOwner(file.location, uid: owner(f.a1), gid: owner(f.a2)) }
                return 0
            }
            guard p.fs.credentials.uid == 0 else { throw LinuxError(.EPERM) }
            return try hostCall(93, UInt64(fd), f.a1, f.a2)
        }
        d.register(.mknod) { f, p throws(LinuxError) in
            try mknod(p, base: nil, path: f.a0, mode: f.a1)
        }
        d.register(.mknodat) { f, p throws(LinuxError) in
            try mknod(p, base: try p.base(f.a0), path: f.a1, mode: f.a2)
        }
    }

    static func statfs(_ loc: Location, hostFD: Int32?, out: UInt64) throws(LinuxError) -> Int64 {
        _ = try UserMemory.pointer(out, 120, for: .write)
        if let fd = hostFD { return try hostCall(138, UInt64(fd), out) }
        if let path = loc.hostPath {
            let r = path.withPathCString { cj_host_syscall(137, UInt64(UInt(bitPattern: $0)), out, 0, 0, 0, 0) }
            if r < 0 { throw LinuxError(Errno(rawValue: Int32(-r))) }
            return r
        }
        // A tmpfs: TMPFS_MAGIC, sized by the machine's memory.
        let pages = Int64(sysconf(Int32(_SC_PHYS_PAGES))), free = Int64(sysconf(Int32(_SC_AVPHYS_PAGES)))
        let fields: [Int64] = [0x0102_1994, 4096, pages, free, free, pages, free, 0, 255, 4096, 0x400 /* ST_RELATIME */, 0, 0, 0, 0]
        for (i, v) in fields.enumerated() { try UserMemory.store(v, at: out + UInt64(8 * i)) }
        return 0
    }

    /// mknod(2): FIFOs and regular files; devices need CAP_MKNOD (EPERM here, even for
    /// root: the instance makes no device nodes); directories EPERM; other types EINVAL.
    static func mknod(_ p: LinuxProcess, base: Location?, path address: UInt64, mode: UInt64) throws(LinuxError) -> Int64 {
        let path = try UserMemory.string(address)
        let kind: NodeKind
        switch UInt32(truncatingIfNeeded: mode) & 0o170000 {
        case 0, 0o100000: kind = .regular
        case 0o010000: kind = .fifo
        case 0o020000, 0o060000, 0o140000, 0o040000: kind = .characterDevice
        default: throw LinuxError(.EINVAL)
        }
        let perms = UInt32(truncatingIfNeeded: mode) & 0o7777
        try fsCall { () throws(Errno) in
            if kind == .characterDevice {
                // Linux looks the name up first: EEXIST comes before EPERM.
                if (try? p.fs.status(path, at: base, followSymlinks: false)) != nil { throw .fileExists }
                throw .notPermitted
            }
            try p.fs.makeNode(path, kind: kind, mode: perms, at: base)
        }
        return 0
    }

    /// preadv/pwritev (offset >= 0) and the v2 forms (offset -1: the file's position;
    /// RWF_* flags: HIPRI, DSYNC, SYNC, NOWAIT, APPEND, NOAPPEND; others EOPNOTSUPP).
    static func positionalVectored(_ f: SyscallFrame, _ p: LinuxProcess, write: Bool, offset: Int64, flags: UInt64,
                                   allowCurrent: Bool) throws(LinuxError) -> Int64 {
        if allowCurrent && offset == -1 {
            guard flags & ~UInt64(0x3f) == 0 else { throw LinuxError(.EOPNOTSUPP) }
            return try vectored(f, p, write: write)
        }
        // Linux (do_preadv): the offset, the descriptor, ESPIPE, the mode, then the flags.
        let file = try positionalFile(p, f.a0, offset: UInt64(bitPattern: offset))
        try checkMode(file, write: write)
        guard flags & ~UInt64(0x3f) == 0 else { throw LinuxError(.EOPNOTSUPP) }
        var offset = offset
        if write && flags & 0x10 != 0 {  // RWF_APPEND: at the end, whatever the offset
            offset = try fsCall { () throws(Errno) in try file.handle.size() }
        }
        return try transferVector(file, iov: f.a1, count: f.a2, write: write, at: offset)  // FileCalls.swift
    }

    /// copy_file_range(2) between regular files, through the libOS (any file systems).
    static func copyFileRange(_ f: SyscallFrame, _ p: LinuxProcess) throws(LinuxError) -> Int64 {
        guard f.a5 == 0 else { throw LinuxError(.EINVAL) }
        let input = try p.fd(f.a0), output = try p.fd(f.a2)
        guard input.flags.canRead, output.flags.canWrite, !output.flags.contains(.append) else { throw LinuxError(.EBADF) }
        if input.isDirectory || output.isDirectory { throw LinuxError(.EISDIR) }
        guard input.location.node.kind == .regular, output.location.node.kind == .regular else { throw LinuxError(.EINVAL) }
        var inOff = f.a1 == 0 ? input.offset : try UserMemory.load(Int64.self, at: f.a1)
        var outOff = f.a3 == 0 ? output.offset : try UserMemory.load(Int64.self, at: f.a3)
        guard inOff >= 0, outOff >= 0 else { throw LinuxError(.EINVAL) }
        let length = Int64(clamping: f.a4)
        // The same file with overlapping ranges is EINVAL.
        if input.location.node === output.location.node && inOff < outOff + length && outOff < inOff + length {
            throw LinuxError(.EINVAL)
        }
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: copyChunk, alignment: 16)
        defer { chunk.deallocate() }
        var total: Int64 = 0
        while total < length {
            let want = Int(min(Int64(chunk.count), length - total))
            let view = UnsafeMutableRawBufferPointer(rebasing: chunk[..<want])
            let n = try fsCall { () throws(Errno) in try input.handle.read(into: view, at: inOff, nonBlocking: false) }
            if n == 0 { break }
            let w = try fsCall { () throws(Errno) in
                try output.handle.write(from: UnsafeRawBufferPointer(rebasing: view[..<n]), at: outOff, nonBlocking: false)
            }
            total += Int64(w)
            inOff += Int64(w)
            outOff += Int64(w)
            if w < n { break }
        }
        if f.a1 == 0 { _ = try? input.seek(inOff, whence: .set) } else { try UserMemory.store(inOff, at: f.a1) }
        if f.a3 == 0 { _ = try? output.seek(outOff, whence: .set) } else { try UserMemory.store(outOff, at: f.a3) }
        return total
    }

    /// fallocate(2): the host's on HostFS files (and memfds); on MemFS, mode 0 extends
    /// the file and FALLOC_FL_KEEP_SIZE changes nothing visible; other modes EOPNOTSUPP.
    static func fallocate(_ f: SyscallFrame, _ p: LinuxProcess) throws(LinuxError) -> Int64 {
        let file = try p.fd(f.a0)
        let mode = Int32(truncatingIfNeeded: f.a1)
        let offset = Int64(bitPattern: f.a2), length = Int64(bitPattern: f.a3)
        guard offset >= 0, length > 0 else { throw LinuxError(.EINVAL) }
        guard file.flags.canWrite else { throw LinuxError(.EBADF) }
        switch file.location.node.kind {
        case .fifo: throw LinuxError(.ESPIPE)
        case .directory: throw LinuxError(.EISDIR)
        case .regular: break
        default: throw LinuxError(.ENODEV)
        }
        if let host = file.handle.hostDescriptor { return try hostCall(285, UInt64(host), f.a1, f.a2, f.a3) }
        switch mode {
        case 0:
            let size = try fsCall { () throws(Errno) in try file.handle.size() }
            let (end, overflow) = offset.addingReportingOverflow(length)
            guard !overflow else { throw LinuxError(rawCode: 27) }  // EFBIG
            if end > size { try fsCall { () throws(Errno) in try file.handle.truncate(to: end) } }
            return 0
        case 1:  // FALLOC_FL_KEEP_SIZE
            return 0
        default:
            throw LinuxError(.EOPNOTSUPP)
        }
    }
}
