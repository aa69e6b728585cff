// MemfdCalls.swift: memfd_create(2) as a host memfd (so mmap, MAP_SHARED between
// mappings, seals and fstat are the host kernel's), wrapped as an open file of the
// libOS; and the fcntl commands and terminal ioctls that pass to the host descriptor
// behind a file (seals, pipe sizes, TIOC*/TC* on a host terminal).
import CJunction
import FileSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The host memfd shared by the node and the handle; closed when both are gone.
final class HostMemfd: @unchecked Sendable {
    let fd: Int32
    init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    func check(_ r: Int32) throws(Errno) { if r != 0 { throw Errno(rawValue: errno) } }
}

final class MemfdNode: Node, @unchecked Sendable {
    let memfd: HostMemfd
    init(_ memfd: HostMemfd) { self.memfd = memfd }

    var fileSystem: any FileSystemInstance { AnonymousFileSystem.shared }
    var kind: NodeKind { .regular }

    func status() throws(Errno) -> FileStatus {
        var st = stat()
        try memfd.check(fstat(memfd.fd, &st))
        var s = FileStatus()
        s.device = UInt64(st.st_dev); s.inode = UInt64(st.st_ino); s.mode = st.st_mode; s.linkCount = UInt64(st.st_nlink)
        s.uid = st.st_uid; s.gid = st.st_gid; s.rdev = UInt64(st.st_rdev); s.size = Int64(st.st_size)
        s.blockSize = Int64(st.st_blksize); s.blocks = Int64(st.st_blocks)
        s.accessTime = Timespec(seconds: Int64(st.st_atim.tv_sec), nanoseconds: Int64(st.st_atim.tv_nsec))
        s.modificationTime = Timespec(seconds: Int64(st.st_mtim.tv_sec), nanoseconds: Int64(st.st_mtim.tv_nsec))
        s.changeTime = Timespec(seconds: Int64(st.st_ctim.tv_sec), nanoseconds: Int64(st.st_ctim.tv_nsec))
        return s
    }

    func setMode(_ mode: UInt32) throws(Errno) { try memfd.check(fchmod(memfd.fd, mode_t(mode & 0o7777))) }
    func setOwner(uid: UInt32?, gid: UInt32?) throws(Errno) { try memfd.check(fchown(memfd.fd, uid ?? UInt32.max, gid ?? UInt32.max)) }
    func setTimes(access: Timespec?, modification: Timespec?) throws(Errno) {
        func ts(_ t: Timespec?) -> timespec {
            guard let t else { return timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2) }  // UTIME_OMIT
            return timespec(tv_sec: Int(t.seconds), tv_nsec: Int(t.nanoseconds))
        }
        var times = [ts(access), ts(modification)]
        try memfd.check(futimens(memfd.fd, &times))
    }
    func truncate(to size: Int64) throws(Errno) { try memfd.check(ftruncate(memfd.fd, off_t(size))) }
    func open(_ flags: OpenFlags) throws(Errno) -> any FileHandle { MemfdHandle(memfd) }
}

/// Reads and writes of a memfd: straight host calls (memory never blocks).
final class MemfdHandle: FileHandle, @unchecked Sendable {
    let memfd: HostMemfd
    init(_ memfd: HostMemfd) { self.memfd = memfd }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        let n = pread(memfd.fd, buffer.baseAddress, buffer.count, off_t(offset))
        if n < 0 { throw Errno(rawValue: errno) }
        return n
    }

    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        let at = offset < 0 ? try size() : offset  // O_APPEND
        let n = pwrite(memfd.fd, buffer.baseAddress, buffer.count, off_t(at))
        if n < 0 { throw Errno(rawValue: errno) }
        return n
    }

    func size() throws(Errno) -> Int64 {
        var st = stat()
        try memfd.check(fstat(memfd.fd, &st))
        return Int64(st.st_size)
    }

    func truncate(to size: Int64) throws(Errno) { try memfd.check(ftruncate(memfd.fd, off_t(size))) }
    var hostDescriptor: Int32? { memfd.fd }
}

extension Handlers {
    static func registerMemfd(_ d: Dispatcher) {
        d.register(.memfd_create) { f, p throws(LinuxError) in
            let name = try UserMemory.string(f.a0, limit: 4096)
            guard name.utf8.count <= 249 else { throw LinuxError(.EINVAL) }  // MFD_NAME_MAX_LEN
            let cloexec: UInt64 = 1
            // The host checks the other flags (ALLOW_SEALING, HUGETLB and its sizes, EXEC, NOEXEC_SEAL).
            let fd = try hostCall(319, f.a0, (f.a1 & ~cloexec) | cloexec)
            let memfd = HostMemfd(fd: Int32(fd))
            let node = MemfdNode(memfd)
            let file = OpenFile(location: Location(node: node, path: "/memfd:\(name) (deleted)"), handle: MemfdHandle(memfd),
                                flags: .readWrite)
            return Int64(try p.descriptors.install(file, closeOnExec: f.a1 & cloexec != 0))
        }
    }

    /// fcntl commands beyond FileCalls' own: seals (the host's, on a memfd; EINVAL
    /// elsewhere, as for files that cannot be sealed) and pipe sizes.
    static func fcntlMore(_ f: SyscallFrame, _ p: LinuxProcess, _ file: OpenFile) throws(LinuxError) -> Int64 {
        switch f.a1 {
        case 1033, 1034:  // F_ADD_SEALS, F_GET_SEALS
            guard file.handle is MemfdHandle, let fd = file.handle.hostDescriptor else { throw LinuxError(.EINVAL) }
            return try hostCall(72, UInt64(fd), f.a1, f.a2)
        case 1032:  // F_GETPIPE_SZ
            guard let pipe = pipeOf(file) else { throw LinuxError(.EBADF) }
            return Int64(pipe.capacity)
        case 1031:  // F_SETPIPE_SZ, up to /proc/sys/fs/pipe-max-size (1 MiB) unless root
            guard let pipe = pipeOf(file) else { throw LinuxError(.EBADF) }
            let requested = Int64(bitPattern: f.a2)
            guard requested >= 0, requested <= 1 << 31 else { throw LinuxError(.EINVAL) }
            if requested > 1 << 20 && !p.compat.privileged { throw LinuxError(.EPERM) }
            return Int64(try fsCall { () throws(Errno) in try pipe.resize(to: Int(requested)) })
        case 8, 9, 15, 16:  // F_SETOWN, F_GETOWN, F_SETOWN_EX, F_GETOWN_EX: no SIGIO owner
            if f.a1 == 9 { return 0 }
            if f.a1 == 16 { try UserMemory.store((Int32(0), Int32(0)), at: f.a2) }
            return 0
        case 1025, 1026:  // F_SETLEASE, F_GETLEASE
            if f.a1 == 1026 { return 2 }  // F_UNLCK: no lease
            guard file.location.node.kind == .regular else { throw LinuxError(.EINVAL) }
            throw LinuxError(.EAGAIN)
        default:
            throw LinuxError(.EINVAL)
        }
    }

    static func pipeOf(_ file: OpenFile) -> Pipe? {
        (file.handle as? PipeReadEnd)?.pipe ?? (file.handle as? PipeWriteEnd)?.pipe ?? (file.handle as? PipeBothEnds)?.pipe
    }

    /// Terminal ioctls a host terminal answers (the process's terminal is the host's):
    /// TCSETS/TCSETSW/TCSETSF, TCSBRK, TCXONC, TCFLSH, TIOCSCTTY, TIOCGPGRP, TIOCSPGRP,
    /// TIOCOUTQ, TIOCSTI, TIOCSWINSZ, TIOCNOTTY, TIOCGSID, TIOCGPTN-less ones; ENOTTY
    /// for anything that is not a host terminal.
    static let terminalRequests: Set<UInt64> = [0x5402, 0x5403, 0x5404, 0x5409, 0x540A, 0x540B, 0x540E, 0x540F, 0x5410,
                                                0x5411, 0x5414, 0x5422, 0x5429, 0x5425, 0x5419, 0x541A]

    static func terminalIoctl(_ f: SyscallFrame, _ p: LinuxProcess, _ file: OpenFile) throws(LinuxError) -> Int64? {
        if let r = try ptyIoctl(f, p, file) { return r }  // PtyCalls.swift
        guard terminalRequests.contains(f.a1) else { return nil }
        guard let host = file.handle.hostDescriptor, isatty(host) == 1 else { throw LinuxError(.ENOTTY) }
        return try hostCall(16, UInt64(host), f.a1, f.a2)
    }
}
